"""The Slack app end to end: signed requests in, Web API calls out (to the stand-in), the store in between."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from slack_sdk.models.blocks import Block

from bot.slack.ids import Action, Command, Input, View
from tests.scoring.builders import Trial, sarah
from tests.slack.conftest import ANA, BEN, BOSS, CHANNEL, EVE, Workspace

TOUCH = {Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"type": "static_select", "selected_option": {"value": "email"}}},
         Input.TOUCH_EMAIL: {Input.TOUCH_EMAIL: {"type": "static_select", "selected_option": {"value": "email1"}}},
         Input.TOUCH_NOTE: {Input.TOUCH_NOTE: {"type": "plain_text_input", "value": "Sent from Gmail"}}}


def disposition(value, reason=None):
    return {Input.DISPOSITION: {Input.DISPOSITION: {"type": "static_select", "selected_option": {"value": value}}},
            Input.DISPOSITION_REASON: {Input.DISPOSITION_REASON: {"type": "plain_text_input", "value": reason}}}


def buttons(message_blocks):
    return [e["action_id"] for b in message_blocks if b["type"] == "actions" for e in b["elements"]]


def top_level(workspace):
    return [c for c in workspace.standin.posted(CHANNEL) if not c.params.get("thread_ts")]


def latest_alert(workspace):
    """The alert as the channel shows it now: the first post, or its latest edit."""
    posted = workspace.standin.posted(CHANNEL)[0]
    edits = [c for c in workspace.standin.calls_to("chat.update") if c.ok]
    return json.loads(json.dumps(edits[-1].params if edits else posted.params))


# Requests that are not Slack's ------------------------------------------------------------------------

def test_a_forged_signature_is_refused(workspace):
    response = workspace.signed("command=%2Fclaim&user_id=U0ANA", "application/x-www-form-urlencoded",
                                secret="not-the-secret")
    assert response.status_code == 401
    assert workspace.standin.calls == []


def test_a_stale_request_is_refused_even_when_signed(workspace):
    response = workspace.command(ANA, Command.CLAIM, timestamp=time.time() - 6 * 60)
    assert response.status_code == 401


# Alerts -----------------------------------------------------------------------------------------------

def test_a_new_pql_is_alerted_in_the_channel_with_valid_complete_blocks(workspace):
    pql_id = workspace.lead()
    [post] = top_level(workspace)
    blocks = post.params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    for block in Block.parse_all(blocks):
        block.validate_json()
    text = json.dumps(blocks)
    for expected in ("Sarah", "sarah@acme.com", "Acme Corp", "800", "6/10", "invited 2 teammates", "day 5",
                     "Lead with integration setup help"):
        assert expected in text
    assert buttons(blocks) == [Action.CLAIM, Action.DETAILS]
    assert f"PQL-{pql_id}" in post.params["text"] and "http" not in post.params["text"]
    assert workspace.pql(pql_id).alert_ts == post.response["ts"]


@pytest.mark.parametrize(("size", "account"), [
    (12, ["12 people · SMB", "ACV potential ≈ $5,000"]),
    (800, ["800 people · Mid-market", "ACV potential ≈ $20,000"]),
    (5000, ["5,000 people · Enterprise", "ACV potential ≈ $50,000"]),
    (None, ["Size unknown", "No ACV estimate without a company size"]),
])
def test_a_demo_request_at_any_size_is_alerted_and_detailed_with_its_band_and_acv_potential(workspace, size, account):
    signup = workspace.now - timedelta(days=1)
    trial = Trial("dana", email="dana@globex.com", company="Globex", size=size, signup=signup)
    trial.add("demo_requested", workspace.now - timedelta(minutes=1))
    pql_id = workspace.lead("dana", trial)
    [post] = top_level(workspace)
    posted = post.params["blocks"]
    shown = json.dumps(json.loads(posted) if isinstance(posted, str) else posted, ensure_ascii=False)
    assert "⚡ Fast lane" in shown and "Requested a demo: reply within 1 hour" in shown
    assert "*Company*\\nGlobex\\n" + "\\n".join(account) in shown
    assert "None" not in shown and "None" not in post.params["text"]
    workspace.click(BEN, Action.DETAILS, pql_id)
    [opened] = workspace.standin.calls_to("views.open")
    details = json.dumps(opened.params["view"], ensure_ascii=False)
    assert " · ".join(account) in details  # at the top, and in the handoff package's company profile
    assert details.count(account[-1]) == 2


# Claiming ---------------------------------------------------------------------------------------------

def test_claiming_from_the_button_edits_the_alert_in_place(workspace):
    pql_id = workspace.lead()
    assert workspace.click(ANA, Action.CLAIM, pql_id).status_code == 200
    workspace.deliver()
    alert = latest_alert(workspace)
    assert "Claimed by <@U0ANA>" in json.dumps(alert["blocks"])
    assert Action.LOG_TOUCH in buttons(alert["blocks"]) and Action.CLAIM not in buttons(alert["blocks"])
    assert len(top_level(workspace)) == 1  # edited, not posted again


def test_the_second_clicker_is_told_privately_who_has_it(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.click(BEN, Action.CLAIM, pql_id)
    [ephemeral] = workspace.standin.calls_to("chat.postEphemeral")
    assert ephemeral.params["user"] == BEN and "already claimed by <@U0ANA>" in ephemeral.params["text"]
    assert workspace.pql(pql_id).claimed_by == ANA


def test_twenty_reps_clicking_claim_at_once_make_one_winner(engine, standin):
    workspace = Workspace(engine, standin, _now(),
                          executor=ThreadPoolExecutor(max_workers=20))
    reps = [f"U0REP{n:02d}" for n in range(20)]
    workspace.settings.pql_reps = ",".join(reps)
    from bot.services import leads

    with workspace.pipeline.session() as session, session.begin():
        leads.sync_roster(session, workspace.settings.roster, now=workspace.now)
    pql_id = workspace.lead()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda rep: workspace.click(rep, Action.CLAIM, pql_id).status_code, reps))
    deadline = time.time() + 10
    while len(workspace.standin.calls_to("chat.postEphemeral")) < 19 and time.time() < deadline:
        time.sleep(0.05)
    assert answers == [200] * 20
    winner = workspace.pql(pql_id).claimed_by
    assert winner in reps
    refused = [c.params["user"] for c in workspace.standin.calls_to("chat.postEphemeral")]
    assert sorted(refused) == sorted(set(reps) - {winner})


def _now():
    from datetime import datetime

    from tests.scoring.builders import NY

    return datetime(2026, 11, 6, 15, 0, tzinfo=NY)


@pytest.mark.parametrize("ref", ["PQL-{id}", "sarah@acme.com", "sarah"])
def test_claim_command_takes_a_lead_by_reference(workspace, ref):
    pql_id = workspace.lead()
    workspace.command(ANA, Command.CLAIM, ref.format(id=pql_id))
    assert workspace.pql(pql_id).claimed_by == ANA
    assert workspace.said() == [f"PQL-{pql_id} claimed by <@U0ANA>."]


def test_a_bare_claim_takes_the_oldest_unclaimed_lead(workspace):
    later = workspace.lead("sarah")  # qualified on day 5
    oldest = workspace.lead("tina")  # qualified on day 2
    workspace.command(BEN, Command.CLAIM)
    assert (workspace.pql(oldest).claimed_by, workspace.pql(later).claimed_by) == (BEN, None)


def test_someone_off_the_roster_cannot_claim(workspace):
    pql_id = workspace.lead()
    workspace.command(EVE, Command.CLAIM, f"PQL-{pql_id}")
    assert "Only reps on the PQL roster" in workspace.said()[0]
    assert workspace.pql(pql_id).claimed_by is None


def test_an_unknown_lead_is_answered_with_what_to_type(workspace):
    workspace.command(ANA, Command.CLAIM, "PQL-404")
    assert "Try a short id like PQL-42" in workspace.said()[0]


def test_the_manager_claims_on_a_reps_behalf_and_reassigns(workspace):
    pql_id = workspace.lead()
    workspace.command(BOSS, Command.CLAIM, f"PQL-{pql_id} <@{ANA}|ana>")
    assert workspace.pql(pql_id).claimed_by == ANA
    workspace.command(ANA, Command.PQL, f"reassign PQL-{pql_id} <@{BEN}|ben>")
    assert "Only the sales manager can reassign" in workspace.said()[-1]
    workspace.command(BOSS, Command.PQL, f"reassign PQL-{pql_id} <@{BEN}|ben>")
    assert workspace.pql(pql_id).claimed_by == BEN


# Touches and dispositions -------------------------------------------------------------------------------

def test_log_touch_opens_a_modal_and_its_submission_is_posted_in_the_thread(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.click(ANA, Action.LOG_TOUCH, pql_id)
    [opened] = workspace.standin.calls_to("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == View.LOG_TOUCH
    assert workspace.submit(ANA, View.LOG_TOUCH, pql_id, TOUCH).status_code == 200
    workspace.deliver()
    alert_ts = workspace.pql(pql_id).alert_ts
    thread = [c.params["text"] for c in workspace.standin.posted(CHANNEL) if c.params.get("thread_ts") == alert_ts]
    assert "Touch 1 of 3 by <@U0ANA>: Email (Email 1) · Sent from Gmail" in thread


def test_the_fourth_touch_is_refused(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    for _ in range(3):
        assert workspace.submit(ANA, View.LOG_TOUCH, pql_id, TOUCH).content in (b"", b"null")
    response = workspace.submit(ANA, View.LOG_TOUCH, pql_id, TOUCH)
    assert response.json()["response_action"] == "errors"
    assert "already has 3 touches" in json.dumps(response.json()["errors"])
    workspace.click(ANA, Action.LOG_TOUCH, pql_id)
    assert "already has 3 touches" in workspace.said()[-1]


def test_someone_else_cannot_work_a_claimed_lead(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.click(BEN, Action.LOG_TOUCH, pql_id)
    workspace.click(BEN, Action.SET_DISPOSITION, pql_id)
    assert all("<@U0ANA>'s lead" in text for text in workspace.said())
    response = workspace.submit(BEN, View.SET_DISPOSITION, pql_id, disposition("nurture"))
    assert "<@U0ANA>'s lead" in json.dumps(response.json()["errors"])
    assert workspace.standin.calls_to("views.open") == []


@pytest.mark.parametrize(("value", "label", "next_action"), [
    ("meeting_set", "Meeting Set", "run the meeting"),
    ("converted_self_serve", "Converted (Self-Serve)", "warm handoff to CS"),
    ("nurture", "Nurture", "nurture sequence"),
    ("no_response", "No Response", "won't be routed again"),
    ("disqualified", "Disqualified", "out of PQL routing"),
    ("routed_to_cs", "Routed to CS", "open a CS ticket"),
])
def test_each_disposition_shows_on_the_alert_with_its_next_action(workspace, value, label, next_action):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.submit(ANA, View.SET_DISPOSITION, pql_id, disposition(value, "not the buyer"))
    workspace.deliver()
    alert = latest_alert(workspace)
    assert label in json.dumps(alert["blocks"]) and buttons(alert["blocks"]) == [Action.DETAILS]
    replies = [c.params["text"] for c in workspace.standin.posted(CHANNEL) if c.params.get("thread_ts")]
    assert any(next_action in text for text in replies)


def test_disqualified_without_a_reason_keeps_the_modal_open_with_an_error(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    response = workspace.submit(ANA, View.SET_DISPOSITION, pql_id, disposition("disqualified"))
    assert response.json()["errors"][Input.DISPOSITION_REASON].startswith("Say why")
    assert workspace.pql(pql_id).disposition is None


def test_details_opens_the_handoff_package_and_the_emails(workspace):
    pql_id = workspace.lead()
    workspace.click(BEN, Action.DETAILS, pql_id)  # any rep on the roster, not only its holder
    [opened] = workspace.standin.calls_to("views.open")
    text = json.dumps(opened.params["view"])
    assert "Quick help connecting dbt to Quarry" in text and "One last thing before your trial wraps up" in text


# Product events after the alert ----------------------------------------------------------------------

@pytest.mark.parametrize(("event", "words"), [("trial_converted", "converted"), ("sales_opt_out", "do not contact")])
def test_conversion_or_opt_out_after_the_alert_updates_it_and_tells_the_rep(workspace, event, words):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    trial = sarah()
    trial.add(event, trial.on(6), plan="team", mrr=500) if event == "trial_converted" else trial.add(event, trial.on(6))
    workspace.pipeline.ingest(trial.events[-1:], at=workspace.now)
    workspace.deliver()
    alert = latest_alert(workspace)
    assert words in json.dumps(alert["blocks"]).lower() and buttons(alert["blocks"]) == [Action.DETAILS]
    dms = [c for c in workspace.standin.calls_to("chat.postMessage") if c.params["channel"].startswith("D")]
    assert len(dms) == 1 and words in dms[0].params["text"]


# Rate limits --------------------------------------------------------------------------------------------

def test_a_429_then_success_posts_one_alert_not_two(workspace):
    workspace.standin.fail_next("chat.postMessage", 1, status=429, retry_after=0)
    workspace.lead()  # the pass that met the 429 put the alert back, due when Retry-After has passed (at once)
    assert top_level(workspace) == []
    workspace.deliver()
    assert len(workspace.standin.calls_to("chat.postMessage")) == 2
    assert len(top_level(workspace)) == 1


# App Home ---------------------------------------------------------------------------------------------

def home_for(workspace, user):
    workspace.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})
    published = workspace.standin.calls_to("views.publish")[-1]
    assert published.params["user_id"] == user
    view = published.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_app_home_shows_a_rep_their_leads_cap_and_pause_switch(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    text = json.dumps(home_for(workspace, ANA))
    assert f"PQL-{pql_id}" in text and "1 of 5" in text and Action.PAUSE in text
    workspace.click(ANA, Action.PAUSE, value="pause", in_home=True)
    assert '"resume"' in json.dumps(workspace.standin.calls_to("views.publish")[-1].params["view"])
    assert workspace.standin.calls_to("chat.postEphemeral") == []


def test_app_home_shows_a_fast_lane_lead_on_the_reps_day_but_not_against_the_cap(workspace):
    ask = Trial("dana", email="dana@globex.com", signup=workspace.now - timedelta(days=1))
    pql_id = workspace.lead("dana", ask.add("demo_requested", workspace.now - timedelta(minutes=1)))
    assert workspace.pql(pql_id).tier == "fast_lane"
    workspace.click(ANA, Action.CLAIM, pql_id)
    text = json.dumps(home_for(workspace, ANA), ensure_ascii=False)
    assert "*0 of 5 new PQLs today* · ⚡ Fast lane: 1 (not capped)" in text


def test_app_home_shows_the_manager_the_queue_and_who_is_paused(workspace):
    waiting = workspace.lead()
    workspace.click(BEN, Action.PAUSE, value="pause", in_home=True)
    text = json.dumps(home_for(workspace, BOSS))
    assert f"PQL-{waiting}" in text and "Ben Okafor" in text and "paused" in text.lower()


def test_app_home_tells_an_outsider_how_to_join(workspace):
    assert "add you" in json.dumps(home_for(workspace, EVE))


# Commands -----------------------------------------------------------------------------------------------

def test_pql_help_lists_what_you_can_do(workspace):
    workspace.command(ANA, Command.PQL, "help")
    assert "/pql reassign" in workspace.said()[0]


def test_pql_review_answers_honestly_until_the_review_exists(workspace):
    assert workspace.command(BOSS, Command.REVIEW, "this").status_code == 200
    assert workspace.said()


def test_handlers_ack_at_once_while_slow_work_continues(engine, standin):
    workspace = Workspace(engine, standin, _now(), executor=ThreadPoolExecutor(max_workers=4))
    pql_id = workspace.lead()
    workspace.event({"type": "app_home_opened", "user": ANA, "tab": "home"})  # pays Bolt's one-time auth.test
    standin.latency = 1.5  # Slack is slow today: views.open takes 1.5 s
    started = time.perf_counter()
    response = workspace.click(ANA, Action.DETAILS, pql_id)
    assert response.status_code == 200 and time.perf_counter() - started < 1.0
    deadline = time.time() + 5
    while not standin.calls_to("views.open") and time.time() < deadline:
        time.sleep(0.05)
    assert standin.calls_to("views.open")


def test_the_alert_credits_the_disposition_to_whoever_set_it(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.submit(BOSS, View.SET_DISPOSITION, pql_id, disposition("nurture"))
    workspace.deliver()
    assert "Nurture* by <@U0BOSS>" in json.dumps(latest_alert(workspace)["blocks"])


def test_socket_mode_replaces_the_http_endpoint_when_an_app_token_is_set(engine):
    from bot.settings import Settings
    from bot.web import server

    settings = Settings(_env_file=None, slack_bot_token="xoxb-test", slack_app_token="xapp-test",
                        slack_signing_secret="s", pql_reps="U0ANA")
    built = server.build(settings, pipeline=Workspace.pipeline_for(engine))
    assert built.socket_mode is not None
    assert "/slack/events" not in {route.path for route in built.web.routes}
    assert {"/v1/track", "/v1/batch", "/healthz"} <= {route.path for route in built.web.routes}


def test_without_a_bot_token_slack_is_off_but_ingestion_runs(engine):
    from bot.settings import Settings
    from bot.web import server

    built = server.build(Settings(_env_file=None), pipeline=Workspace.pipeline_for(engine))
    assert "/slack/events" not in {route.path for route in built.web.routes}
    assert "/v1/track" in {route.path for route in built.web.routes}


def test_app_home_shows_when_the_next_email_is_due(workspace):
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    workspace.submit(ANA, View.LOG_TOUCH, pql_id, TOUCH)  # Email 1 on Friday 6 Nov: Email 2 due Tuesday 10 Nov
    home = json.dumps(home_for(workspace, ANA))
    assert "next touch due Tue 15:00" in home  # 2 business days after Friday 15:00


def test_the_next_touch_is_due_two_business_days_after_the_last_email():
    from datetime import datetime

    from bot.domain.business_time import BusinessCalendar
    from bot.domain.follow_ups import next_touch_due
    from bot.store.models import Touch
    from tests.scoring.builders import NY

    calendar = BusinessCalendar(NY)
    friday = datetime(2026, 11, 6, 15, 0, tzinfo=NY)
    first = Touch(pql_id=1, rep_id="U", number=1, channel="email", email_key="email1", at=friday)
    assert next_touch_due([first], calendar) == datetime(2026, 11, 10, 15, 0, tzinfo=NY)
    last = Touch(pql_id=1, rep_id="U", number=2, channel="email", email_key="email3", at=friday)
    assert next_touch_due([first, last], calendar) is None


def test_pql_why_tells_the_lead_s_trail_in_the_team_s_time_as_pqlbot_explain_does(workspace):
    pql_id = workspace.lead()
    workspace.command(BOSS, Command.CLAIM, f"PQL-{pql_id} <@{ANA}|ana>")
    workspace.command(ANA, Command.PQL, f"why PQL-{pql_id}")
    answer = workspace.said()[-1]
    lines = answer.splitlines()
    assert lines[0] == f"*PQL-{pql_id}*"
    assert lines[1] == "• Fri 06 Nov 15:00 EST: qualified as medium (6 points)"  # the team's time, not UTC
    assert lines[2:] == ["• Fri 06 Nov 15:00 EST: alert posted",
                         f"• Fri 06 Nov 15:00 EST: claimed by <@{ANA}> (by <@{BOSS}>)"]
