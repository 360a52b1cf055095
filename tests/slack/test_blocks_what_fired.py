"""What fired, as the alert, its notification text and the Details modal show it: the lead's family in the rep's words
(seed 000), each trigger with its tier of response (seed 001), and an account lead's contact map (seed 004)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.services import alert_text, outreach
from bot.services.lead_view import ContactView, FiredTrigger, HandoffPackage, contact_line
from bot.slack import blocks
from scoring import ScoreResult, Status, Tier
from scoring.result import Account, SignalMet, TriggerMet
from tests.slack.test_blocks import NOW, TZ, all_text, assert_valid_message, assert_valid_view, lead, monster

ACTIVE_BUYER = FiredTrigger("active_buyer", "Active buyer", "buying", 1,
                            "compared plans and reached for the upgrade within 31 h")
BILLING = FiredTrigger("plan_comparison_and_billing", "Plan comparison and billing", "buying", 2,
                       "compared plans and opened billing")
SSO_STALLED = FiredTrigger("sso_stalled", "SSO setup stalled", "blocker", 1,
                           "started single sign-on setup, not finished within 7 days")
NURTURE = FiredTrigger("pricing_no_upgrade", "Pricing without an upgrade", "buying", 3, "looked at plans")

BUYING_WORDS = ("Buying signal", "help them buy", "Help them buy", "evaluating")


def buyer(**changes):
    return lead(**{"family": "buying", "fired": [ACTIVE_BUYER, BILLING]} | changes)


def blocked(**changes):
    return lead(family="blocker", fired=[SSO_STALLED], **changes)


def people(count: int) -> list[ContactView]:
    return [ContactView(f"u{n}", f"Person {n:02d}", f"p{n}@acme.com", "Engineer", NOW - timedelta(days=n),
                        ["activated", "connected Snowflake"]) for n in range(count)]


def account(count: int, **changes):
    contacts = people(count)
    package = HandoffPackage(["Activated (day 1)"], ["Acme Corp, 800 people"],
                             [contact_line(c, tz=TZ) for c in contacts], "Lead with room to grow.", [],
                             "Buying signal: they are evaluating, help them buy.", [ACTIVE_BUYER.line])
    return lead(level="account", account_name="Acme Corp", family="buying", fired=[ACTIVE_BUYER],
                contacts=contacts, handoff=package, **changes)


def test_a_buying_lead_reads_as_a_buying_signal_with_each_trigger_its_tier_and_evidence():
    text, message = blocks.alert(buyer(), now=NOW, tz=TZ)
    shown = all_text(message)
    assert "💰 *Buying signal*: they are evaluating. Help them buy" in shown
    assert ("• Active buyer (tier 1, same day): compared plans and reached for the upgrade within 31 h\\n"
            "• Plan comparison and billing (tier 2, within 72 h): compared plans and opened billing") in shown
    assert "Buying signal: they are evaluating, help them buy." in text
    assert "What fired: Active buyer (tier 1, same day): compared plans" in text
    assert_valid_message(message)


def test_a_blocker_lead_is_told_to_help_not_pitch_and_never_reads_as_a_buying_signal():
    text, message = blocks.alert(blocked(), now=NOW, tz=TZ)
    modal = blocks.details_modal(blocked(), now=NOW, tz=TZ)
    for shown in (text, all_text(message), all_text(modal)):
        assert "unblock, not a pitch" in shown
        assert "SSO setup stalled (tier 1, same day): started single sign-on setup" in shown
        assert not [w for w in BUYING_WORDS if w in shown]


def test_nurture_only_triggers_are_in_details_and_never_in_the_alert():
    view = buyer(fired=[ACTIVE_BUYER, NURTURE])
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    assert "Pricing without an upgrade" not in text + all_text(message)
    assert "Active buyer (tier 1, same day)" in text and "Active buyer (tier 1, same day)" in all_text(message)
    shown = all_text(blocks.details_modal(view, now=NOW, tz=TZ))
    assert "Pricing without an upgrade (tier 3, automated nurture only): looked at plans" in shown
    # A points lead with a nurture-only trigger besides: its lock-screen text is as it was.
    assert len(blocks.alert(lead(family="buying", fired=[NURTURE]), now=NOW, tz=TZ)[0].splitlines()) == 3


def test_a_lead_judged_before_triggers_shows_no_family_and_nothing_fired():
    text, message = blocks.alert(lead(), now=NOW, tz=TZ)
    shown = text + all_text(message) + all_text(blocks.details_modal(lead(), now=NOW, tz=TZ))
    assert "What fired" not in shown and "Buying signal" not in shown and "Adoption blocker" not in shown


def test_a_user_leads_alert_has_no_contact_map():
    assert "Contact map" not in all_text(blocks.alert(buyer(), now=NOW, tz=TZ)[1])


def test_an_account_lead_names_the_account_and_lists_its_first_ten_users_then_counts_the_rest():
    text, message = blocks.alert(account(23), now=NOW, tz=TZ)
    assert message[0]["text"]["text"] == "🔥 High · PQL-5 · Acme Corp (account)"
    [contacts] = [b["text"]["text"] for b in message if "Contact map" in b.get("text", {}).get("text", "")]
    lines = contacts.split("\n")
    assert lines[0] == "*Contact map* · Account lead: Acme Corp, 23 users"
    # The most recently active first: name, title, email, last active (team timezone), what each did.
    assert lines[1] == "• Person 00, Engineer · p0@acme.com · last active Tue 11 Mar · activated; connected Snowflake"
    assert [line.split(",")[0] for line in lines[1:11]] == [f"• Person {n:02d}" for n in range(10)]
    assert lines[11:] == ["…and 13 more users: see Details"]
    assert text.startswith("🔥 High PQL-5") and "Account lead: Acme Corp, 23 users" in text
    assert_valid_message(message)


def test_an_account_leads_details_modal_lists_every_user_up_to_twenty_five_and_carries_the_family():
    shown = all_text(blocks.details_modal(account(23), now=NOW, tz=TZ))
    assert "*Contact map* (23)" in shown and all(f"Person {n:02d}" in shown for n in range(23))
    assert "Buying signal" in shown and "Active buyer (tier 1, same day)" in shown
    crowded = blocks.details_modal(account(60), now=NOW, tz=TZ)
    assert "Person 24" in all_text(crowded) and "Person 25" not in all_text(crowded)
    assert "and 35 more" in all_text(crowded)
    assert_valid_view(crowded)


def test_an_account_lead_with_everything_as_long_as_it_gets_stays_within_block_kit_limits():
    big = monster()
    long = big.title
    contacts = [dataclasses.replace(c, name=long, title=long, did=[long] * 10) for c in people(300)]
    view = dataclasses.replace(
        big, level="account", account_name=long, family="blocker", contacts=contacts,
        fired=[FiredTrigger(f"t{n}", long, "blocker", 1, long) for n in range(40)],
        handoff=dataclasses.replace(big.handoff, contact_map=[contact_line(c, tz=TZ) for c in contacts]),
    )
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    assert_valid_message(message)
    assert len(text) <= 3000
    assert "and 30 more" in all_text(message)  # forty triggers: ten shown
    assert_valid_view(blocks.details_modal(view, now=NOW, tz=TZ))


@pytest.mark.parametrize(("track", "letter"), [("enterprise", "E"), ("expansion", "G"), ("unblock", "U")])
def test_email_1_of_the_catalogues_tracks_is_labelled_with_its_variant(track, letter):
    ctx = outreach.LeadContext(product_name="Acme", first_name="Raj", company_name="Cobalt Freight",
                               company_size=450, integrations=(), track=track, trial_day=6, days_left=8,
                               rep_name=None, slot_a="Wednesday at 10:00", slot_b="Thursday at 14:00")
    view = lead(emails={"email1": outreach.email(ctx, "email1")})
    assert f"*Email 1 (variant {letter})*" in all_text(blocks.details_modal(view, now=NOW, tz=TZ))


def test_the_demos_plain_alert_of_a_verdict_says_the_family_and_what_fired_once():
    at = NOW
    trigger = TriggerMet("sso_stalled", "SSO setup stalled", "blocker", "high", 1, "user", at,
                         "started single sign-on setup, not finished within 7 days", 3.0, "unblock")
    result = ScoreResult(
        user_id="raj", email="raj@cobaltfreight.com", account=Account("Cobalt Freight", "cobaltfreight.com"),
        company_size=450, score=3, max_score=10, tier=Tier.HIGH, status=Status.QUALIFIED,
        signals=(SignalMet("integration", "Integration setup", 3, 2, at, "connected Snowflake", "integration"),
                 SignalMet("sso_stalled", "SSO setup stalled", 0, 9, at, trigger.evidence, "unblock")),
        reasons=(), strongest_signal="sso_stalled", trial_day=9, days_left=5, level="user", family="blocker",
        triggers=(trigger,))
    text = alert_text.alert_text("PQL-5", result, talk_track="Help, don't pitch.")
    assert "Adoption blocker: help them unblock, not a pitch." in text
    assert "What fired: SSO setup stalled (tier 1, same day): started single sign-on setup" in text
    assert "Trial day 9, 5 days left · Connected Snowflake (day 2)\n" in text  # the trigger is not a signal again


def test_the_lock_screen_text_of_a_points_only_buying_lead_stays_three_lines():
    text = blocks.alert(lead(family="buying"), now=NOW, tz=TZ)[0]
    assert len(text.splitlines()) == 3 and "Buying signal" not in text
    assert "Adoption blocker: help them unblock, not a pitch." in blocks.alert(lead(family="blocker"), now=NOW,
                                                                                tz=TZ)[0]
