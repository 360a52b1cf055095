"""The Block Kit module: what people see, as plain data, checked against Slack's limits by slack_sdk's models."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View as SlackView

from bot.domain.kit import DISPOSITION_LABELS
from bot.domain.lifecycle import PqlState
from bot.services import outreach
from bot.services.lead_view import HandoffPackage, LeadView, TouchView
from bot.services.outreach import RenderedEmail
from bot.slack import blocks
from bot.slack.blocks import HomeLead, HomeRep, HomeTeam
from bot.slack.ids import Action, Input, LeadRef, View

TZ = ZoneInfo("America/New_York")
NOW = datetime(2025, 3, 11, 15, 0, tzinfo=UTC)  # Tuesday 11:00 in New York
REP, OTHER_REP = "U0REP1", "U0REP2"


def lead(**changes) -> LeadView:
    view = LeadView(
        pql_id=5, ref="PQL-5", state=PqlState.ASSIGNED, tier="high", score=8, max_score=10, user_id="usr_raj",
        name="Raj Malhotra", email="raj@cobaltfreight.com", title="Data Engineer", company_name="Cobalt Freight",
        company_size=450, domain="cobaltfreight.com", plan="Team", signup_at=NOW - timedelta(days=5), trial_day=6,
        days_left=8, signal_summary="activated (day 1); invited 2 teammates (day 4); connected Snowflake (day 5)",
        talk_track="Lead with integration setup help: Raj at Cobalt Freight (450 people) connected Snowflake.",
        qualified_at=NOW - timedelta(hours=1), history=[], assigned_rep=REP, claimed_by=None, claimed_at=None,
        touches=[], disposition=None, disposition_reason=None, disposition_by=None, stopped_reason=None,
        sla_due_at=NOW + timedelta(hours=1, minutes=20),
        emails={
            "email1": RenderedEmail("Quick help connecting Snowflake to Acme", "Hi Raj,\n\nI work with data teams."),
            "email2": RenderedEmail("Re: Quick help connecting Snowflake to Acme", "Hi Raj,\n\nFollowing up."),
            "email3": RenderedEmail("One last thing before your trial wraps up", "Hi Raj,\n\nLast one."),
        },
        handoff=HandoffPackage(
            usage_summary=["Activated (day 1)", "Connected Snowflake (day 5)"],
            company_profile=["Cobalt Freight, 450 people", "Domain: cobaltfreight.com", "Plan: Team"],
            contact_map=["Li Wei, Analytics Engineer (li@cobaltfreight.com)"],
            recommended_opening="Lead with integration setup help.",
            upgrade_blockers=[],
        ),
    )
    return dataclasses.replace(view, **changes)


def touch(number: int, *, channel: str = "email", note: str | None = None, at: datetime | None = None) -> TouchView:
    return TouchView(number, channel, f"email{number}" if channel == "email" else None, note, REP,
                     at or NOW - timedelta(days=1, hours=number))


def claimed(**changes) -> LeadView:
    values = dict(state=PqlState.CLAIMED, claimed_by=REP, claimed_at=datetime(2025, 3, 11, 14, 42, tzinfo=UTC))
    return lead(**values | changes)


def three_touches() -> list[TouchView]:
    return [touch(1), touch(2, channel="call", note="Left a voicemail"), touch(3)]


def monster() -> LeadView:
    """Everything as long as a careless import could make it."""
    long = "Extraordinarily-long-words-and-names " * 300
    return claimed(
        name=long, title=long, company_name=long, email="x" * 300 + "@example.com", plan=long, domain=long,
        signal_summary="; ".join(f"connected {long} (day {d})" for d in range(1, 20)), talk_track=long * 3,
        history=[long] * 30, state=PqlState.WORKING, touches=[touch(n, note=long) for n in (1, 2, 3)],
        emails={k: RenderedEmail(long, long * 5) for k in ("email1", "email2", "email3")},
        handoff=HandoffPackage([long] * 20, [long] * 20, [long] * 40, long * 5, [long] * 20),
        disposition_reason=long, ref="PQL-" + "9" * 40, company_size=2**31 - 1, band="enterprise",
        acv_potential=10**15,
    )


# Checking against Slack's limits ------------------------------------------------------------------------------

def texts(payload, kind: str) -> list[str]:
    """Every text of a block or element type ("section", "header", "button") anywhere in the payload."""
    found = []
    if isinstance(payload, dict):
        if payload.get("type") == kind and isinstance(payload.get("text"), dict):
            found.append(payload["text"]["text"])
        for value in payload.values():
            found += texts(value, kind)
    elif isinstance(payload, list):
        for value in payload:
            found += texts(value, kind)
    return found


def assert_within_limits(payload) -> None:
    assert all(len(t) <= 3000 for t in texts(payload, "section"))
    assert all(len(t) <= 150 for t in texts(payload, "header"))
    assert all(len(t) <= 75 for t in texts(payload, "button"))
    sections = [b for b in (payload if isinstance(payload, list) else payload["blocks"]) if b["type"] == "section"]
    assert all(len(f["text"]) <= 2000 for s in sections for f in s.get("fields", []))


def assert_valid_message(message_blocks: list[dict]) -> None:
    assert 0 < len(message_blocks) <= 50
    parsed = Block.parse_all(message_blocks)
    for block in parsed:
        block.validate_json()
    assert [b.to_dict() for b in parsed] == message_blocks  # to_dict validates every nested element too
    assert_within_limits(message_blocks)


def assert_valid_view(view: dict) -> None:
    model = SlackView(**view)
    model.validate_json()
    assert model.to_dict() == view
    assert len(view["blocks"]) <= 100
    assert_within_limits(view)


def buttons(message_blocks: list[dict]) -> dict[str, dict]:
    return {e["action_id"]: e for b in message_blocks if b["type"] == "actions" for e in b["elements"]}


def all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


# The alert -----------------------------------------------------------------------------------------------------

def test_an_unclaimed_alert_offers_claim_as_the_primary_button_and_details():
    _, message = blocks.alert(lead(), now=NOW, tz=TZ)
    assert list(buttons(message)) == [Action.CLAIM, Action.DETAILS]
    assert buttons(message)[Action.CLAIM]["style"] == "primary"
    assert_valid_message(message)


def test_a_claimed_alert_says_who_claimed_it_when_and_offers_log_touch_set_disposition_and_details():
    _, message = blocks.alert(claimed(), now=NOW, tz=TZ)
    assert list(buttons(message)) == [Action.LOG_TOUCH, Action.SET_DISPOSITION, Action.DETAILS]
    assert f"Claimed by <@{REP}> at 10:42" in all_text(message)
    assert_valid_message(message)


def test_touches_so_far_are_listed_briefly_in_the_team_timezone():
    view = claimed(state=PqlState.WORKING, touches=[touch(1, at=datetime(2025, 3, 10, 14, 50, tzinfo=UTC))])
    _, message = blocks.alert(view, now=NOW, tz=TZ)
    assert "Touch 1: Email 1 · Mon 10:50" in all_text(message)
    assert "Touches: 1 of 3" in all_text(message)


def test_after_three_touches_the_alert_offers_no_log_touch_but_asks_for_a_disposition():
    _, message = blocks.alert(claimed(state=PqlState.WORKING, touches=three_touches()), now=NOW, tz=TZ)
    assert list(buttons(message)) == [Action.SET_DISPOSITION, Action.DETAILS]
    assert "Touch 2: Call" in all_text(message) and "Left a voicemail" in all_text(message)
    assert "set a disposition" in all_text(message)
    assert_valid_message(message)


def test_a_dispositioned_alert_shows_the_disposition_and_reason_and_only_details():
    view = claimed(state=PqlState.DISPOSITIONED, disposition="meeting_set", disposition_reason="Demo Thursday",
                   touches=[touch(1)])
    _, message = blocks.alert(view, now=NOW, tz=TZ)
    assert list(buttons(message)) == [Action.DETAILS]
    assert f"Disposition: *Meeting Set* by <@{REP}> · Demo Thursday" in all_text(message)
    assert_valid_message(message)


@pytest.mark.parametrize("state, reason", [
    (PqlState.STOPPED_CONVERTED, "converted to paid: sequence stopped"),
    (PqlState.STOPPED_OPT_OUT, "opted out of sales contact: do not contact"),
])
@pytest.mark.parametrize("claimed_by", [None, REP])
def test_a_stopped_alert_says_why_right_under_the_header_and_offers_only_details(state, reason, claimed_by):
    view = lead(state=state, stopped_reason=reason, claimed_by=claimed_by, claimed_at=NOW if claimed_by else None)
    _, message = blocks.alert(view, now=NOW, tz=TZ)
    assert list(buttons(message)) == [Action.DETAILS]
    assert message[1]["type"] == "section" and reason in message[1]["text"]["text"]
    assert_valid_message(message)


@pytest.mark.parametrize("view", [lead(), claimed(), claimed(touches=three_touches()), lead(pql_id=123456)])
def test_every_button_value_decodes_to_the_lead(view):
    _, message = blocks.alert(view, now=NOW, tz=TZ)
    assert buttons(message)
    assert all(LeadRef.decode(b["value"]).pql_id == view.pql_id for b in buttons(message).values())


def test_the_alert_shows_who_trial_score_signals_talk_track_history_and_rep():
    view = lead(history=["PQL-2, 03 Feb: No Response", "Open support ticket: resolve it before reaching out"])
    shown = all_text(blocks.alert(view, now=NOW, tz=TZ)[1])
    for expected in ("Raj Malhotra", "raj@cobaltfreight.com", "Data Engineer", "Cobalt Freight", "450 people",
                     "Signed up Thu 6 Mar", "Day 6 · 8 days left", "Plan: Team", "8/10", "🔥 High",
                     "Activated (day 1); invited 2 teammates (day 4)", "Lead with integration setup help",
                     "• PQL-2, 03 Feb: No Response", "• Open support ticket", f"Assigned to <@{REP}>",
                     "SLA: 1 h 20 min left"):
        assert expected in shown, expected


def test_the_alert_shows_the_size_band_and_acv_potential_under_the_company():
    company = blocks.alert(lead(band="mid_market", acv_potential=25000), now=NOW, tz=TZ)[1][1]["fields"][1]["text"]
    assert company == "*Company*\nCobalt Freight\n450 people · Mid-market\nACV potential ≈ $25,000"


def test_a_fast_lane_lead_of_unknown_size_says_so_and_that_there_is_no_acv_estimate():
    view = lead(tier="fast_lane", company_size=None, band="unknown", acv_potential=None, ask="requested a demo",
                signal_summary="requested a demo (day 2)")
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    assert message[2]["fields"][1]["text"] == ("*Company*\nCobalt Freight\nSize unknown\n"
                                               "No ACV estimate without a company size")
    assert text.startswith("⚡ Fast-lane PQL-5: Raj Malhotra (Data Engineer, Cobalt Freight) requested a demo")
    assert "None" not in text + all_text(message)
    assert_valid_message(message)


def test_a_lead_whose_verdict_predates_bands_shows_its_size_alone():
    company = blocks.alert(lead(band=None), now=NOW, tz=TZ)[1][1]["fields"][1]["text"]
    assert company == "*Company*\nCobalt Freight\n450 people"


def test_the_details_modal_leads_with_the_band_and_acv_potential():
    view = lead(band="enterprise", company_size=5000, acv_potential=50000)
    context = blocks.details_modal(view, now=NOW, tz=TZ)["blocks"][1]["elements"][0]["text"]
    assert context.startswith("🔥 High · 8/10 · 5,000 people · Enterprise · ACV potential ≈ $50,000 · ")


def test_an_alert_without_history_says_there_is_none():
    assert "No earlier PQLs, touches or tickets" in all_text(blocks.alert(lead(), now=NOW, tz=TZ)[1])


def test_a_lead_not_yet_assigned_names_a_suggested_rep_or_the_queue():
    suggested = all_text(blocks.alert(lead(state=PqlState.ALERTED), now=NOW, tz=TZ)[1])
    queued = all_text(blocks.alert(lead(state=PqlState.QUEUED, assigned_rep=None), now=NOW, tz=TZ)[1])
    assert f"Suggested rep: <@{REP}>" in suggested
    assert "Queued" in queued


@pytest.mark.parametrize("tier, target", [("high", "within 2 business hours"), ("medium", "within 4 business hours")])
def test_without_an_sla_clock_yet_the_alert_gives_the_seeds_first_touch_target(tier, target):
    assert target in all_text(blocks.alert(lead(tier=tier, sla_due_at=None), now=NOW, tz=TZ)[1])


@pytest.mark.parametrize("view, expected", [
    (lead(), "🔥 High PQL-5 · Raj Malhotra, Data Engineer at Cobalt Freight (450 people) · 8/10"),
    (lead(tier="fast_lane", ref="PQL-4", title=None, signal_summary="activated (day 1); requested a demo (day 3)",
          ask="requested a demo"),
     "⚡ Fast-lane PQL-4: Raj Malhotra (Cobalt Freight, 450 people) requested a demo"),
    (lead(tier="medium"), "Medium PQL-5 · Raj Malhotra"),
])
def test_the_fallback_text_leads_with_tier_ref_name_and_company(view, expected):
    text, _ = blocks.alert(view, now=NOW, tz=TZ)
    assert text.startswith(expected)
    assert "Cobalt Freight" in text


def test_the_fallback_text_has_no_links_even_when_the_data_does():
    view = lead(talk_track="See https://evil.example/x first", signal_summary="connected http://x.example (day 2)")
    text, _ = blocks.alert(view, now=NOW, tz=TZ)
    assert "http" not in text


@pytest.mark.parametrize("tier, mark", [("fast_lane", "⚡ Fast lane"), ("high", "🔥 High")])
def test_fast_lane_and_high_leads_stand_out_in_the_header(tier, mark):
    _, message = blocks.alert(lead(tier=tier), now=NOW, tz=TZ)
    assert message[0]["type"] == "header" and message[0]["text"]["text"].startswith(mark)


def test_a_medium_lead_has_no_alarm_emoji():
    text, message = blocks.alert(lead(tier="medium"), now=NOW, tz=TZ)
    assert "⚡" not in text + message[0]["text"]["text"] and "🔥" not in text + message[0]["text"]["text"]


def test_a_fast_lane_ask_is_called_out_before_anything_else():
    view = lead(tier="fast_lane", signal_summary="activated (day 1); requested a demo (day 3)", ask="requested a demo")
    _, message = blocks.alert(view, now=NOW, tz=TZ)
    assert "Requested a demo: reply within 1 hour" in message[1]["text"]["text"]


def mrkdwn(payload) -> list[str]:
    if isinstance(payload, dict):
        own = [payload["text"]] if payload.get("type") == "mrkdwn" else []
        return own + [t for value in payload.values() for t in mrkdwn(value)]
    return [t for value in payload for t in mrkdwn(value)] if isinstance(payload, list) else []


def test_names_cannot_ping_the_channel_or_break_the_markup():
    view = lead(name="<!channel> Raj & co", company_name="<https://evil.example|Cobalt>")
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    for shown in [text, *mrkdwn(message), *mrkdwn(blocks.details_modal(view, now=NOW, tz=TZ))]:
        assert "<!channel>" not in shown and "<https" not in shown
    assert "&lt;!channel&gt; Raj &amp; co" in all_text(message)


@pytest.mark.parametrize("view", [lead(), claimed(touches=three_touches()), monster()])
def test_the_alert_says_nothing_about_logins_sessions_or_time_spent(view):
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    words = text + all_text(message)
    for pattern in (r"\blog(?:ged|s)?[\s-]?ins?\b", r"\bsessions?\b", r"\bvisit", r"\bpage[\s-]?views?\b",
                    r"\b\d+\s+times\b", r"\b(?:minutes|hours)\s+spent\b"):
        assert not re.search(pattern, words, re.IGNORECASE), pattern


def test_a_lead_with_very_long_texts_and_three_touches_stays_within_block_kit_limits():
    view = monster()
    text, message = blocks.alert(view, now=NOW, tz=TZ)
    assert_valid_message(message)
    assert len(text) <= 3000
    assert_valid_view(blocks.details_modal(view, now=NOW, tz=TZ))
    assert_valid_view(blocks.touch_modal(view))
    assert_valid_view(blocks.disposition_modal(view))
    for state in (PqlState.DISPOSITIONED, PqlState.STOPPED_CONVERTED):
        closed = dataclasses.replace(view, state=state, disposition="nurture", stopped_reason=view.title
                                     if state is PqlState.STOPPED_CONVERTED else None)
        assert_valid_message(blocks.alert(closed, now=NOW, tz=TZ)[1])


def test_clipping_never_leaves_half_an_entity_or_mention():
    assert blocks.clip("ab &amp; cd", 5) == "ab…"
    assert blocks.clip("hi <@U123456>", 8) == "hi…"
    assert blocks.clip("ab &amp; cd", 9) == "ab &amp;…"
    assert blocks.clip("short", 5) == "short"


# The modals ----------------------------------------------------------------------------------------------------

def test_the_details_modal_carries_the_lead_and_the_full_handoff_package():
    view = claimed(touches=[touch(1)])
    modal = blocks.details_modal(view, now=NOW, tz=TZ)
    assert modal["callback_id"] == View.DETAILS
    assert LeadRef.decode(modal["private_metadata"]).pql_id == view.pql_id
    shown = all_text(modal)
    for expected in ("Usage summary", "• Connected Snowflake (day 5)", "Company profile", "• Domain: cobaltfreight.com",
                     "Contact map", "Li Wei, Analytics Engineer", "Recommended opening", "Upgrade blockers*\\nnone"):
        assert expected in shown, expected
    assert_valid_view(modal)


def test_the_details_modal_shows_the_three_emails_and_which_one_was_sent():
    shown = all_text(blocks.details_modal(claimed(touches=[touch(1)]), now=NOW, tz=TZ))
    assert "*Email 1 (variant A)* · sent Mon 10:00 (touch 1)" in shown
    assert "*Subject:* Re: Quick help connecting Snowflake to Acme" in shown
    assert "*Email 3*" in shown and "Last one." in shown


def test_the_details_modal_says_none_where_the_package_is_empty():
    view = lead(handoff=HandoffPackage([], [], [], "", []), emails={})
    shown = all_text(blocks.details_modal(view, now=NOW, tz=TZ))
    assert shown.count("\\nnone") == 6  # five package parts and the emails


@pytest.mark.parametrize("track, letter", [
    ("integration", "A"), ("invites", "B"), ("billing", "C"), ("fast_lane", "F"),
])
def test_email_1_is_labelled_with_the_variant_its_template_wrote(track, letter):
    ctx = outreach.LeadContext(product_name="Acme", first_name="Raj", company_name="Cobalt Freight",
                               company_size=450, integrations=("Snowflake",), track=track, trial_day=6, days_left=8,
                               rep_name=None, slot_a="Wednesday at 10:00", slot_b="Thursday at 14:00")
    emails = {key: outreach.email(ctx, key) for key in outreach.EMAIL_KEYS}
    shown = all_text(blocks.details_modal(lead(emails=emails), now=NOW, tz=TZ))
    assert f"*Email 1 (variant {letter})*" in shown


def test_email_1_of_unknown_wording_is_just_email_1():
    emails = {"email1": RenderedEmail("Something else entirely", "Hi")}
    assert "*Email 1*\\n" in all_text(blocks.details_modal(lead(emails=emails), now=NOW, tz=TZ))


@pytest.mark.parametrize("done, expected_title, expected_email", [
    (0, "Log touch 1 of 3", "email1"), (1, "Log touch 2 of 3", "email2"), (2, "Log touch 3 of 3", "email3"),
    (3, "Log touch 3 of 3", "email3"),
])
def test_the_touch_modal_is_numbered_and_preselects_the_next_email(done, expected_title, expected_email):
    view = claimed(touches=three_touches()[:done])
    modal = blocks.touch_modal(view)
    assert modal["callback_id"] == View.LOG_TOUCH
    assert LeadRef.decode(modal["private_metadata"]).pql_id == view.pql_id
    assert modal["title"]["text"] == expected_title
    email = next(b for b in modal["blocks"] if b.get("block_id") == Input.TOUCH_EMAIL)
    assert email["element"]["initial_option"]["value"] == expected_email
    assert_valid_view(modal)


def test_the_touch_modal_asks_for_a_channel_and_optionally_the_email_and_a_note():
    inputs = {b["block_id"]: b for b in blocks.touch_modal(claimed())["blocks"] if b["type"] == "input"}
    assert list(inputs) == [Input.TOUCH_CHANNEL, Input.TOUCH_EMAIL, Input.TOUCH_NOTE, Input.TOUCH_REPLIED]
    channel, email, note, replied = inputs.values()
    assert replied["optional"] and replied["element"]["type"] == "checkboxes"
    assert [o["value"] for o in channel["element"]["options"]] == ["email", "call", "linkedin"]
    assert [o["text"]["text"] for o in channel["element"]["options"]] == ["Email", "Call", "LinkedIn"]
    assert not channel["optional"] and email["optional"] and note["optional"]
    assert [o["text"]["text"] for o in email["element"]["options"]] == ["Email 1", "Email 2", "Email 3"]
    assert note["element"]["type"] == "plain_text_input" and note["element"]["multiline"]
    assert all(b["element"]["action_id"] == b["block_id"] for b in inputs.values())


def test_the_disposition_modal_offers_the_six_dispositions_and_an_optional_reason():
    modal = blocks.disposition_modal(claimed())
    assert modal["callback_id"] == View.SET_DISPOSITION
    assert LeadRef.decode(modal["private_metadata"]).pql_id == 5
    inputs = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    picker, reason = inputs[Input.DISPOSITION], inputs[Input.DISPOSITION_REASON]
    assert [o["value"] for o in picker["element"]["options"]] == list(DISPOSITION_LABELS)
    assert [o["text"]["text"] for o in picker["element"]["options"]] == list(DISPOSITION_LABELS.values())
    assert reason["optional"] and "Disqualified" in reason["hint"]["text"]
    assert picker["element"]["action_id"] == Input.DISPOSITION
    assert reason["element"]["action_id"] == Input.DISPOSITION_REASON
    assert_valid_view(modal)


def selected(value):
    return {"type": "static_select", "selected_option": None if value is None else {
        "text": {"type": "plain_text", "text": value.title(), "emoji": True}, "value": value}}


def typed(value):
    return {"type": "plain_text_input", "value": value}


def test_parse_touch_reads_a_view_submission():
    values = {"touch-channel": {"touch-channel": selected("email")},
              "touch-email": {"touch-email": selected("email2")},
              "touch-note": {"touch-note": typed("  Sent the setup guide  ")}}
    assert blocks.parse_touch(values) == {"channel": "email", "email_key": "email2", "note": "Sent the setup guide",
                                          "replied": False}


def test_parse_touch_gives_none_for_what_was_left_out():
    values = {"touch-channel": {"touch-channel": selected("call")},
              "touch-email": {"touch-email": selected(None)},
              "touch-note": {"touch-note": typed(None)}}
    assert blocks.parse_touch(values) == {"channel": "call", "email_key": None, "note": None, "replied": False}
    assert blocks.parse_touch({}) == {"channel": None, "email_key": None, "note": None, "replied": False}
    ticked = {Input.TOUCH_REPLIED: {Input.TOUCH_REPLIED: {"type": "checkboxes",
                                                          "selected_options": [{"value": "replied"}]}}}
    assert blocks.parse_touch(ticked)["replied"] is True


def test_parse_disposition_reads_a_view_submission():
    values = {"disposition": {"disposition": selected("disqualified")},
              "disposition-reason": {"disposition-reason": typed("Student project, not a team")}}
    assert blocks.parse_disposition(values) == {"disposition": "disqualified", "reason": "Student project, not a team"}


def test_parse_disposition_treats_a_blank_reason_as_none():
    values = {"disposition": {"disposition": selected("nurture")},
              "disposition-reason": {"disposition-reason": typed("   ")}}
    assert blocks.parse_disposition(values) == {"disposition": "nurture", "reason": None}


# App Home ------------------------------------------------------------------------------------------------------

def home_lead(pql_id: int = 7, **changes) -> HomeLead:
    values = dict(ref=f"PQL-{pql_id}", pql_id=pql_id, who="Sarah Chen", company="Initech", tier="high",
                  state="assigned", sla_due_at=NOW + timedelta(hours=1, minutes=20), touches=0, next_touch_due_at=None)
    return HomeLead(**values | changes)


def home(**changes) -> dict:
    values = dict(rep_id=REP, is_manager=False, paused=False, leads=[home_lead()], today_count=3, cap=5, queue=[],
                  paused_reps=[], reps=[], now=NOW, tz=TZ)
    return blocks.home(**values | changes)


def pause_button(view: dict) -> dict | None:
    found = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == Action.PAUSE]
    return found[0] if found else None


def test_a_reps_home_lists_open_leads_with_sla_touches_and_todays_count():
    view = home(leads=[
        home_lead(7),
        home_lead(8, sla_due_at=NOW - timedelta(minutes=35), tier="fast_lane"),
        home_lead(9, sla_due_at=None, tier="medium"),
        home_lead(10, state="working", touches=1, next_touch_due_at=datetime(2025, 3, 13, 14, 0, tzinfo=UTC)),
        home_lead(11, state="working", touches=3),
    ])
    assert view["type"] == "home"
    shown = all_text(view)
    for expected in ("3 of 5 new PQLs today", "*PQL-7* · 🔥 High · Sarah Chen, Initech", "SLA: 1 h 20 min left",
                     "SLA missed 35 min ago", "no SLA clock yet", "touches 1 of 3 · next touch due Thu 10:00",
                     "touches 3 of 3 · set a disposition"):
        assert expected in shown, expected
    details = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == Action.DETAILS]
    assert [LeadRef.decode(d["value"]).pql_id for d in details] == [7, 8, 9, 10, 11]
    assert_valid_view(view)


@pytest.mark.parametrize("paused, value, text", [
    (False, "pause", "Pause my assignments"), (True, "resume", "Resume my assignments"),
])
def test_the_pause_switch_flips_with_paused_and_says_what_pausing_does(paused, value, text):
    view = home(paused=paused)
    button = pause_button(view)
    assert button["value"] == value and button["text"]["text"] == text
    assert ("no new pqls are routed" if paused else "pausing stops new pqls") in all_text(view).lower()
    assert_valid_view(view)


def test_a_reps_fast_lane_leads_show_on_their_day_beside_the_cap_they_do_not_use_up():
    shown = all_text(home(today_count=5, fast_lane_today=2))
    assert "*5 of 5 new PQLs today* · ⚡ Fast lane: 2 (not capped)" in shown
    reps = [HomeRep(REP, "Ana Ruiz", False, 7, 5, 2), HomeRep(OTHER_REP, "Ben Ito", False, 5, 5)]
    shown = all_text(home(is_manager=True, reps=reps))
    assert "taking leads · 7 active · 5 of 5 new today · ⚡ Fast lane: 2 (not capped)" in shown
    assert "taking leads · 5 active · 5 of 5 new today" in shown and shown.count("Fast lane: ") == 1
    assert "Fast lane" not in all_text(home(today_count=3))


def test_a_rep_without_open_leads_is_told_where_they_will_appear():
    assert "No open leads" in all_text(home(leads=[]))


def test_the_managers_home_adds_the_queue_and_the_reps_with_who_is_paused():
    reps = [HomeRep(REP, "Ana Ruiz", False, 4, 2), HomeRep(OTHER_REP, "Ben Ito", True, 1, 0)]
    view = home(is_manager=True, queue=[home_lead(12, state="queued", sla_due_at=None)], paused_reps=[OTHER_REP],
                reps=reps)
    shown = all_text(view)
    for expected in ("Queue (1)", "*PQL-12*", "queued for a rep", f"paused: <@{OTHER_REP}>",
                     f"*Ana Ruiz* <@{REP}>", "taking leads · 4 active · 2 of 5 new today",
                     f"*Ben Ito* <@{OTHER_REP}>", "⏸ paused · 1 active · 0 of 5 new today"):
        assert expected in shown, expected
    assert pause_button(view) is not None  # the manager is on the roster too here
    assert_valid_view(view)


def lead_refs(view: dict) -> list[int]:
    details = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == Action.DETAILS]
    return [LeadRef.decode(d["value"]).pql_id for d in details]


def test_the_managers_queue_is_most_urgent_first_fast_lane_then_least_sla_time_left():
    queue = [
        home_lead(1, tier="medium", sla_due_at=NOW + timedelta(hours=3)),
        home_lead(2, tier="high", sla_due_at=NOW + timedelta(hours=1)),
        home_lead(3, tier="medium", sla_due_at=None, state="queued"),
        home_lead(4, tier="fast_lane", sla_due_at=NOW + timedelta(minutes=50)),
        home_lead(5, tier="high", sla_due_at=NOW - timedelta(minutes=20)),
        home_lead(6, tier="fast_lane", sla_due_at=NOW + timedelta(minutes=10)),
    ]
    view = home(rep_id=None, is_manager=True, leads=[], queue=queue)
    assert lead_refs(view) == [6, 4, 5, 2, 1, 3]  # fast lane first; then missed, 1 h, 3 h left; no clock last
    assert "Queue (6)*, most urgent first" in all_text(view)


def test_waiting_for_a_rep_counts_only_leads_nobody_has_been_given():
    queue = [home_lead(1, state="queued", rep_id=None), home_lead(2, state="queued", rep_id=None),
             home_lead(3, state="assigned", rep_id=REP)]
    shown = all_text(home(rep_id=None, is_manager=True, leads=[], queue=queue))
    assert "2 waiting for a rep · 1 assigned, not claimed" in shown
    assert f"<@{REP}>" in shown  # whom the unclaimed one waits on


def test_with_teams_the_manager_sees_each_team_with_its_own_cap_and_waiting_leads():
    teams = [HomeTeam("SDR pool", 5, [HomeRep(REP, "Ana Ruiz", False, 4, 2)], waiting=2, unclaimed=1),
             HomeTeam("EMEA desk", 2, [HomeRep(OTHER_REP, "Noor Haddad", True, 1, 2)], waiting=0)]
    queue = [home_lead(1, state="queued", rep_id=None, team="SDR pool")]
    view = home(rep_id=None, is_manager=True, leads=[], queue=queue, teams=teams)
    shown = all_text(view)
    for expected in ("*SDR pool* · 2 waiting for a rep · 1 assigned, not claimed · cap 5 a day",
                     "taking leads · 4 active · 2 of 5 new today",
                     "*EMEA desk* · 0 waiting for a rep · 0 assigned, not claimed · cap 2 a day",
                     "⏸ paused · 1 active · 2 of 2 new today", "queued for a rep · SDR pool"):
        assert expected in shown, expected
    assert "*Reps*" not in shown
    assert_valid_view(view)


def test_a_manager_who_is_not_a_rep_sees_the_team_but_no_pause_switch():
    view = home(rep_id=None, is_manager=True, leads=[], reps=[])
    assert pause_button(view) is None
    assert "Queue (0)" in all_text(view) and "PQL_REPS" in all_text(view)
    assert_valid_view(view)


def test_someone_not_on_the_roster_learns_what_pqlbot_is_and_how_to_get_added():
    view = home(rep_id=None, is_manager=False, leads=[])
    shown = all_text(view)
    assert "pqlbot" in shown and "ask your sales manager" in shown.lower()
    assert pause_button(view) is None
    assert_valid_view(view)


def test_a_crowded_home_stays_within_the_view_limits():
    many = [home_lead(n, who="N" * 3000, company="C" * 3000) for n in range(200)]
    reps = [HomeRep(f"U{n:05d}", "R" * 3000, n % 2 == 0, n, n) for n in range(60)]
    view = home(is_manager=True, leads=many, queue=many, reps=reps, paused_reps=[r.rep_id for r in reps])
    assert "…and 180 more" in all_text(view)
    assert_valid_view(view)


@pytest.mark.parametrize("due, expected", [
    (NOW + timedelta(hours=1, minutes=20), "SLA: 1 h 20 min left"),
    (NOW + timedelta(minutes=5), "SLA: 5 min left"),
    (NOW - timedelta(minutes=35), "SLA missed 35 min ago"),
    (NOW - timedelta(days=1, hours=3), "SLA missed 1 d 3 h ago"),
    (None, "no SLA clock yet"),
])
def test_sla_time_is_said_in_hours_and_minutes(due, expected):
    assert blocks.sla_text(due, now=NOW) == expected


@pytest.mark.parametrize("at, expected", [
    (datetime(2025, 3, 11, 14, 42, tzinfo=UTC), "10:42"), (datetime(2025, 3, 10, 14, 50, tzinfo=UTC), "Mon 10:50"),
    (datetime(2025, 2, 3, 15, 0, tzinfo=UTC), "3 Feb 10:00"),
])
def test_times_are_local_and_short(at, expected):
    assert blocks.clock(at, now=NOW, tz=TZ) == expected


def test_an_ephemeral_reply_is_one_valid_section():
    reply = blocks.ephemeral(f"PQL-5 is already claimed by <@{REP}>.")
    assert len(reply) == 1 and reply[0]["text"]["text"].endswith(f"<@{REP}>.")
    assert_valid_message(reply)
