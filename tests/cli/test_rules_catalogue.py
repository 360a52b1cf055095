"""`pqlbot rules` prints the trigger catalogue, trigger by trigger, in words a RevOps person reads; `pqlbot rules check
FILE` does it for a copy being edited."""

from __future__ import annotations

import pytest

from bot.cli import main

TRIGGERS = '''
[triggers.active_buyer]
label = "Active buyer"
family = "buying"
strength = "high"
response = 1
within = "48h"
icp_gate = true
window_multiplier = { "24h" = 1.5 }
talk_track = "billing"
evidence = "compared plans and reached for the upgrade {span}"
seed = '000 "Active buyer: pricing viewed 3+ times + upgrade-button click + plan-comparison view, within 48 hours"'
all = [
  { event = "page_view", where = { page_path = { under = "/pricing" } }, at_least = 3 },
  { event = "upgrade_clicked" },
  { event = "plan_comparison_viewed" },
]

[triggers.sso_stalled]
label = "SSO setup stalled"
family = "blocker"
strength = "high"
response = 1
within = "trial"
talk_track = "unblock"
evidence = "started single sign-on setup, not finished"
seed = '000 "SSO / SCIM configuration started, not completed | High | Enterprise rollout stuck"'
all = [{ event = "sso_config_started", not_followed_by = "sso_config_completed", for = "7d" }]

[triggers.enterprise_feature]
label = "Enterprise feature"
family = "buying"
strength = "high"
response = 1
within = "7d"
talk_track = "enterprise"
evidence = "opened {values}"
all = [{ event = "enterprise_feature_accessed", where = { feature = { in = ["sso", "audit_log", "admin_panel"] } } }]

[triggers.team_activation]
label = "Team activation"
family = "buying"
strength = "very_high"
response = 1
level = "account"
within = "14d"
talk_track = "expansion"
evidence = "{users} activated within {span}"
seed = '001 tier 1 "5+ users from same domain activate in 14 days"'
all = [{ event = "activation_complete", measure = "users", at_least = 5 }]

[triggers.multi_domain_invites]
label = "Invites across companies"
family = "buying"
strength = "medium"
response = 2
level = "account"
within = "30d"
talk_track = "expansion"
evidence = "invited people at {values}"
seed = '001 tier 2 "Account invites users from 3+ different email domains"'
all = [{ event = "invite_sent", measure = "values", field = "invitee_email", part = "domain", at_least = 3 }]

[triggers.seat_surge]
label = "Seat provisioning surge"
family = "buying"
strength = "high"
response = 1
level = "account"
within = "7d"
talk_track = "expansion"
evidence = "provisioned {total} seats"
seed = '000 "Seat provisioning surge by admin | High | Account-level expansion intent"'
all = [{ event = "seats_provisioned", measure = "total", field = "count", at_least = 10 }]

[triggers.usage_growth]
label = "Usage doubling"
family = "buying"
strength = "high"
response = 1
level = "account"
within = "3w"
talk_track = "expansion"
evidence = "usage grew week over week"
seed = '001 tier 1 "Account usage grows >100% week-over-week for 2 consecutive weeks"'
all = [{ event = "session_start", measure = "growth", at_least = 1.0, weeks = 2 }]

[triggers.pricing_no_upgrade]
label = "Pricing without an upgrade"
family = "buying"
strength = "low"
response = 3
within = "7d"
talk_track = "billing"
evidence = "looked at plans on {days} days"
seed = '001 tier 3 "User visits the pricing page but does not click any tier"'
all = [{ event = "billing_view", measure = "days", at_least = 2 }]
'''


#: The least a rules file needs besides its triggers: one signal of the points model.
MODEL = '''
name = "Catalogue under test"

[signals.invites]
label = "Teammate invites"
event = "invite_sent"
points = 3
talk_track = "invites"
evidence = "invited {count} teammate{s}"
'''


@pytest.fixture
def copy(tmp_path):
    """A rules file with a catalogue of every kind of condition."""
    path = tmp_path / "rules.toml"
    path.write_text(MODEL + TRIGGERS)
    return path


def printed(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())  # as one line, however the terminal wrapped it


@pytest.mark.parametrize("command", [["rules", "check"], ["rules"]])
def test_rules_check_prints_each_trigger_with_its_level_family_strength_tier_window_conditions_and_seed(
        copy, capsys, command):
    assert main([*command, str(copy)]) == 0
    out = printed(capsys)
    assert ("Triggers: 8 (4 on one user, 4 on an account's users). Tiers of response (seed 001): tier 1 same day, "
            "tier 2 within 72 h, tier 3 automated nurture only (recorded, never routed to a person).") in out
    assert ("Active buyer (active_buyer) user level (one user's events) · buying · strength high · tier 1, same day · "
            "window: 48 h · ICP gate applies "
            "when: 3+ page views under /pricing, an upgrade click and a plan-comparison view within 48 h "
            "window multiplier: ×1.5 when its events fall within 24 h "
            'seed: 000 "Active buyer: pricing viewed 3+ times + upgrade-button click + plan-comparison view, within '
            '48 hours"') in out
    assert ("SSO setup stalled (sso_stalled) user level (one user's events) · blocker · strength high · tier 1, same "
            "day · window: the trial when: an SSO/SCIM configuration started, not followed by an SSO/SCIM "
            "configuration completed within 7 days during the trial") in out
    assert "when: an enterprise feature opened (feature in sso, audit_log, admin_panel) within 7 days" in out
    assert "seed: (none cited)" in out  # the enterprise feature trigger cites no seed row


@pytest.mark.parametrize("trigger, words", [
    ("team_activation", "account level (its users' events together) · buying · strength very high · tier 1, same "
                        "day · window: 14 days when: activations by 5+ users within 14 days seed: 001 tier 1"),
    ("multi_domain_invites", "tier 2, within 72 h · window: 30 days when: invites with 3+ different invitee_email "
                             "domains within 30 days"),
    ("seat_surge", "when: seat provisionings adding up to 10+ (their count) within 7 days"),
    # A lone condition that holds at a moment lies inside any window ending then: the window goes unsaid.
    ("usage_growth", "when: sessions growing 100 %+ week over week for 2 weeks seed:"),
    ("pricing_no_upgrade", "strength low · tier 3, automated nurture only · window: 7 days when: billing or pricing "
                           "page views on 2+ days within 7 days"),
])
def test_every_kind_of_condition_reads_in_words(copy, capsys, trigger, words):
    assert main(["rules", "check", str(copy)]) == 0
    out = printed(capsys)
    assert f"({trigger})" in out
    assert words in out.split(f"({trigger})", 1)[1]


def test_a_points_model_alone_says_it_has_no_triggers(tmp_path, capsys):
    bare = tmp_path / "bare.toml"
    bare.write_text(MODEL)
    assert main(["rules", "check", str(bare)]) == 0
    assert "Triggers: none (the points model and the fast lane only)." in printed(capsys)


def test_rules_check_refuses_a_broken_trigger_with_the_file_the_setting_and_the_reason(copy, capsys):
    copy.write_text(copy.read_text().replace('for = "7d"', 'for = "a week"'))
    assert main(["rules", "check", str(copy)]) == 2
    err = capsys.readouterr().err
    assert str(copy) in err and "triggers.sso_stalled" in err and "is not a duration" in err


def test_rules_check_takes_one_file(copy, capsys):
    assert main(["rules", "check", str(copy), str(copy)]) == 2
    assert "give one rules FILE" in capsys.readouterr().err


def test_the_shipped_waits_say_their_wait_once_and_a_window_only_where_it_binds_other_conditions(capsys):
    assert main(["rules", "check", "scoring/default_rules.toml"]) == 0
    out = printed(capsys)
    # A lone "not completed within" wait: its 7-day window holds any moment the wait runs out, so it goes unsaid.
    assert ("when: an SSO/SCIM configuration started, not followed by an SSO/SCIM configuration completed within "
            "7 days seed:") in out
    # With other conditions the window binds them all: said apart from the wait.
    assert ("a security or compliance document download and a signup, not followed by an activation within 7 days, "
            "within 2 weeks seed:") in out
    assert "within 7 days within" not in out


def test_rules_check_points_at_an_event_name_no_call_arrives_under(tmp_path, capsys):
    # A trigger reading "seat_provisioned" (for seats_provisioned), or a name the aliases rename, never fired: silently.
    # The catalogue's other names (upgrade_clicked, sso_config_started, ...) are the product's own: not pointed at.
    rules = tmp_path / "rules.toml"
    rules.write_text(MODEL.replace('event = "invite_sent"', 'event = "Invite Sent"')
                     + TRIGGERS.replace('event = "seats_provisioned"', 'event = "seat_provisioned"')
                     + '\n[events.aliases]\n"Invite Sent" = "invite_sent"\n')
    assert main(["rules", "check", str(rules)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Look at")]
    assert lines == [
        "Look at signals.invites: it reads 'Invite Sent', which the aliases rename to 'invite_sent' before anything "
        "reads it: read 'invite_sent'",
        "Look at triggers.seat_surge: it reads 'seat_provisioned', a name pqlbot does not know: did you mean "
        "'seats_provisioned'? (fine if your product sends 'seat_provisioned' itself)",
    ]
    assert main(["rules", "check", "scoring/default_rules.toml"]) == 0
    assert "Look at" not in capsys.readouterr().out  # the shipped rules read only names calls arrive under
