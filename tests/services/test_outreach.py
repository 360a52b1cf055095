"""Outreach: the talk track and emails a rep gets for a lead, from real scored events."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import templates
from bot.services import outreach
from bot.services.outreach import EMAIL_KEYS, LeadContext, email, suggest_slots, talk_track, variant_for
from scoring import Event, load_rules, parse_event, score_user

RULES = load_rules()
SIGNUP_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
SCORED_AT = SIGNUP_AT + timedelta(days=5)  # trial day 6 of 14
SLOTS = {"slot_a": "Monday at 10:00", "slot_b": "Tuesday at 14:00"}
_ids = itertools.count()


def event(name: str, day: int, **props) -> Event:
    """One product event on trial day `day`, through the same parser the bot uses."""
    return parse_event({
        "event": name,
        "userId": "u-1",
        "timestamp": (SIGNUP_AT + timedelta(days=day - 1, hours=1)).isoformat(),
        "messageId": f"m-{next(_ids)}",
        "properties": props,
    }, RULES)


def signup(first_name: str | None = "Sarah") -> Event:
    props = {"email": "sarah@initech.com", "company_name": "Initech", "company_size": 800}
    if first_name:
        props["first_name"] = first_name
    return parse_event({
        "event": "signup_complete", "userId": "u-1", "timestamp": SIGNUP_AT.isoformat(),
        "messageId": f"m-{next(_ids)}", "properties": props,
    }, RULES)


# What each lead did after signing up, chosen so the named signal is the strongest one.
LEADS = {
    "integration": lambda: [
        event("activation_complete", 1),
        event("integration_connected", 2, integration_type="Snowflake"),
        event("integration_connected", 3, integration_type="dbt"),
        event("invite_sent", 3, invitee_email="sam@initech.com"),
    ],
    "invites": lambda: [
        event("activation_complete", 1),
        event("invite_sent", 2, invitee_email="sam@initech.com"),
        event("session_start", 3),
    ],
    "billing": lambda: [
        event("activation_complete", 1),
        event("page_view", 2, page_path="/pricing"),
        event("page_view", 3, page_path="/billing"),
    ],
    "multi_day": lambda: [
        event("activation_complete", 1),
        event("session_start", 2),
        event("session_start", 3),
    ],
    "fast_lane": lambda: [
        event("activation_complete", 1),
        event("demo_requested", 2),
    ],
    None: lambda: [],
}


def lead(kind: str | None, *, first_name: str | None = "Sarah", **ctx) -> LeadContext:
    result = score_user([signup(first_name), *LEADS[kind]()], RULES, SCORED_AT)
    assert result.talk_track == kind  # the scenario really has that strongest signal
    return LeadContext.from_result(result, product_name="Quarry", **(SLOTS | ctx))


# Words that reveal watching the user rather than helping them (seed 002: "Approved signals only").
FORBIDDEN = [
    r"\blog(?:ged|s)?[\s-]?in", r"\blogins?\b", r"\bsessions?\b", r"\bvisit(?:ed|s|ing)?\b",
    r"\bviewed\b", r"\bpage[\s-]?views?\b", r"\bpricing page\b", r"\bbilling page\b",
    r"\bscor(?:e|es|ed|ing)\b", r"\bpoints?\b", r"\bPQLs?\b", r"\btrack(?:ed|ing)\b",
    r"\b\d+\s+times\b", r"\b\d+\s+days in a row\b", r"\b(?:minutes|hours)\s+spent\b",
]


def surveillance_in(text: str) -> list[str]:
    return [m.group(0) for p in FORBIDDEN for m in re.finditer(p, text, re.IGNORECASE)]


def test_integration_lead_gets_variant_a_naming_the_integrations_and_their_use_case():
    ctx = lead("integration")
    first = email(ctx, "email1")
    assert variant_for(ctx) == "A"
    assert first.subject == "Quick help connecting Snowflake and dbt to Quarry"
    assert "Hi Sarah," in first.body
    assert "connecting Snowflake and dbt -- nice choice for syncing your warehouse data" in first.body
    assert "Would Monday at 10:00 or Tuesday at 14:00 work?" in first.body


def test_integration_names_given_explicitly_win_over_the_scored_ones():
    ctx = lead("integration", integrations=["dbt Cloud"])
    assert ctx.integrations == ("dbt Cloud",)
    assert "keeping your transformations versioned and tested" in email(ctx, "email1").body


def test_an_unknown_integration_gets_a_sensible_default_use_case():
    body = email(lead("integration", integrations=["Hex"]), "email1").body
    assert "connecting Hex -- nice choice for getting your data workflows into production" in body


def test_invite_lead_gets_variant_b_about_bringing_teammates_in():
    ctx = lead("invites")
    first = email(ctx, "email1")
    assert variant_for(ctx) == "B"
    assert first.subject == "Getting your team up and running on Quarry"
    assert "bringing teammates into Quarry" in first.body
    assert "permissions, shared workspaces, naming conventions" in first.body


def test_billing_lead_gets_variant_c_about_choosing_a_plan():
    ctx = lead("billing")
    first = email(ctx, "email1")
    assert variant_for(ctx) == "C"
    assert first.subject == "Questions about plans for Quarry?"
    assert "figure out the right plan on Quarry" in first.body


def test_explicit_ask_gets_the_short_fast_lane_email_proposing_two_times():
    ctx = lead("fast_lane")
    first = email(ctx, "email1")
    assert variant_for(ctx) == "F"
    assert first.body.startswith("Hi Sarah,\n\nThanks for reaching out")
    assert "Would Monday at 10:00 or Tuesday at 14:00 work?" in first.body
    assert len(first.body.split()) < 90


@pytest.mark.parametrize("kind", ["multi_day", None])
def test_a_lead_without_a_standout_signal_gets_variant_b_without_claiming_invites(kind):
    ctx = lead(kind)
    first = email(ctx, "email1")
    assert variant_for(ctx) == "B"
    assert first.subject == "Getting your team up and running on Quarry"
    assert "teammates" not in first.body


@pytest.mark.parametrize("kind", list(LEADS))
def test_email2_subject_is_re_the_email1_subject(kind):
    ctx = lead(kind)
    assert email(ctx, "email2").subject == "Re: " + email(ctx, "email1").subject


@pytest.mark.parametrize(("kind", "topic"), [
    ("integration", "integration best practices"),
    ("invites", "team collaboration setup"),
    ("billing", "choosing the right plan"),
    ("multi_day", "team collaboration setup"),
])
def test_email2_offers_the_guide_for_the_strongest_signal(kind, topic):
    assert f"covers {topic}." in email(lead(kind), "email2").body


def test_email3_says_how_many_trial_days_are_left():
    ctx = lead("integration")
    third = email(ctx, "email3")
    assert ctx.days_left == 9
    assert third.subject == "One last thing before your trial wraps up"
    assert "Your trial is winding down in 9 days." in third.body


def test_a_lead_without_a_first_name_is_greeted_as_there():
    ctx = lead("integration", first_name=None)
    for which in EMAIL_KEYS:
        assert email(ctx, which).body.startswith("Hi there,\n")
    assert "None" not in talk_track(ctx)


def test_unknown_links_and_rep_show_as_bracketed_placeholders():
    ctx = lead("fast_lane")
    assert "[your scheduling link]" in email(ctx, "email1").body
    assert "Here's the link: [link to the setup guide]" in email(ctx, "email2").body
    assert "grab a slot: [your scheduling link]" in email(ctx, "email3").body
    assert email(ctx, "email3").body.endswith("Best,\n[your name]")


def test_given_links_and_rep_name_replace_the_placeholders():
    ctx = lead("fast_lane", rep_name="Priya", resource_url="https://quarry.example/guide",
               scheduling_url="https://cal.example/priya")
    texts = [email(ctx, which).body for which in EMAIL_KEYS]
    assert "https://cal.example/priya" in texts[0]
    assert "Here's the link: https://quarry.example/guide" in texts[1]
    assert "grab a slot: https://cal.example/priya" in texts[2]
    assert all(t.endswith("Best,\nPriya") and "[" not in t for t in texts)


@pytest.mark.parametrize("kind", list(LEADS))
def test_every_email_and_talk_track_is_free_of_surveillance_language(kind):
    ctx = lead(kind, rep_name="Priya")
    texts = [talk_track(ctx)] + [f"{e.subject}\n{e.body}" for e in (email(ctx, w) for w in EMAIL_KEYS)]
    assert surveillance_in("\n".join(texts)) == []


@pytest.mark.parametrize("kind", list(LEADS))
def test_every_template_rendered_for_any_lead_is_free_of_surveillance_language(kind):
    ctx = lead(kind)
    # Every variant and every talk track, not only the ones this lead would be sent.
    for name in templates.ENV.list_templates(filter_func=lambda n: n.startswith(("emails/", "talk_tracks/"))):
        text = templates.ENV.get_template(name).render(ctx.template_vars() | {"original_subject": "x"})
        assert surveillance_in(text) == [], name


def test_the_surveillance_check_catches_what_it_is_meant_to():
    text = "We noticed you viewed the pricing page 3 times, logged in 5 days in a row, score 9 points."
    assert len(surveillance_in(text)) >= 6


@pytest.mark.parametrize(("kind", "expected"), [
    ("integration",
     "Lead with integration setup help: Sarah at Initech (800 people) connected Snowflake and dbt"),
    ("invites", "Lead with team setup: Sarah at Initech (800 people) is bringing teammates into Quarry"),
    ("billing", "Lead with plan fit: help Sarah choose the right plan for Initech (800 people)"),
    ("multi_day", "Lead with their goals: Sarah at Initech (800 people)"),
    ("fast_lane", "Fast lane: Sarah at Initech (800 people) asked to talk with us"),
    (None, "Lead with their goals:"),
])
def test_talk_track_is_one_line_led_by_the_strongest_signal(kind, expected):
    text = talk_track(lead(kind))
    assert text.startswith(expected)
    assert "\n" not in text and text == text.strip()


def test_every_talk_track_key_and_email_has_a_template():
    names = set(templates.ENV.list_templates())
    assert {f"talk_tracks/{k}.txt.j2" for k in outreach.TALK_TRACKS} <= names
    emails = {f"emails/email1_{v}.txt.j2" for v in "abcf"} | {"emails/email2.txt.j2", "emails/email3.txt.j2"}
    assert emails <= names


def test_an_unknown_email_is_refused():
    with pytest.raises(ValueError, match="email4"):
        email(lead("invites"), "email4")


def test_suggested_slots_from_a_friday_skip_the_weekend():
    friday = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
    assert suggest_slots(friday, UTC) == ("Monday at 10:00", "Tuesday at 14:00")


def test_suggested_slots_from_a_thursday_straddle_the_weekend():
    thursday = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)
    assert suggest_slots(thursday, UTC) == ("Friday at 10:00", "Monday at 14:00")


def test_suggested_slots_count_days_in_the_team_timezone():
    # Thursday evening in UTC is already Friday in Tokyo, so Tokyo's next weekdays are Monday and Tuesday.
    thursday_night = datetime(2026, 11, 5, 20, 0, tzinfo=UTC)
    assert suggest_slots(thursday_night, ZoneInfo("Asia/Tokyo")) == ("Monday at 10:00", "Tuesday at 14:00")


def test_slots_default_to_the_next_weekdays_after_the_given_moment():
    result = score_user([signup(), *LEADS["invites"]()], RULES, SCORED_AT)
    ctx = LeadContext.from_result(result, product_name="Quarry", at=datetime(2026, 11, 6, 9, 0, tzinfo=UTC))
    assert (ctx.slot_a, ctx.slot_b) == ("Monday at 10:00", "Tuesday at 14:00")


def test_suggested_slots_need_an_aware_moment():
    with pytest.raises(ValueError, match="timezone-aware"):
        suggest_slots(datetime(2026, 11, 6, 9, 0), UTC)


# The trigger catalogue's talk tracks: enterprise, expansion, unblock (seeds 000 and 001) -----------------------------

def context(track: str | None, family: str | None = None) -> LeadContext:
    return LeadContext(product_name="Quarry", first_name="Sarah", company_name="Initech", company_size=800,
                       integrations=(), track=track, trial_day=6, days_left=8, rep_name="Priya", family=family,
                       **SLOTS)


@pytest.mark.parametrize(("track", "letter", "opening", "subject"), [
    ("enterprise", "E", "Lead with enterprise readiness: Sarah at Initech (800 people) is looking at what a "
     "company-wide rollout of Quarry needs", "Rolling Quarry out across Initech"),
    ("expansion", "G", "Lead with room to grow: Sarah at Initech (800 people) is bringing more people",
     "Making room for your team on Quarry"),
    ("unblock", "U", "Help, don't pitch: Sarah at Initech (800 people) looks stuck on a setup step",
     "A hand with your Quarry setup"),
])
def test_the_catalogues_talk_tracks_each_have_their_opening_and_email_1(track, letter, opening, subject):
    ctx = context(track, "blocker" if track == "unblock" else "buying")
    assert talk_track(ctx).startswith(opening)
    assert (variant_for(ctx), email(ctx, "email1").subject) == (letter, subject)
    assert email(ctx, "email2").subject == f"Re: {subject}"
    texts = [talk_track(ctx)] + [f"{e.subject}\n{e.body}" for e in (email(ctx, w) for w in EMAIL_KEYS)]
    assert surveillance_in("\n".join(texts)) == []


@pytest.mark.parametrize("track", ["billing", "invites", "integration", "enterprise", "expansion", "fast_lane", None])
def test_a_blocker_lead_is_offered_help_never_a_pitch_whatever_its_strongest_signal(track):
    ctx = context(track, "blocker")
    assert talk_track(ctx).startswith("Help, don't pitch")
    assert variant_for(ctx) == "U"
    words = " ".join(f"{e.subject} {e.body}" for e in (email(ctx, w) for w in EMAIL_KEYS)).lower()
    for pitch in ("plan", "pricing", "upgrade", "enterprise tier", "overpaying"):
        assert pitch not in words, pitch


def test_a_buying_lead_keeps_the_track_of_its_strongest_signal():
    assert talk_track(context("billing", "buying")).startswith("Lead with plan fit")
    assert variant_for(context("billing", "buying")) == "C"


def test_the_catalogues_emails_have_templates():
    names = set(templates.ENV.list_templates())
    assert {f"emails/email1_{v}.txt.j2" for v in "egu"} <= names
