"""Slack's rate limits are scheduled, not slept: a 429 holds back what Slack limited until its Retry-After has
passed, and everything else goes on (bot/slack/gateway.py, bot/slack/delivery.py, bot/slack/errors.py).

The minute-long limits run on the workspace's clock, which the pipeline, the gateway and the stand-in all read,
so a test moves past them without waiting them out; a build that slept a Retry-After out would wait the real
minute. (Not freezegun: request signatures are checked on the real clock, and real worker threads run here.)
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlmodel import select

from bot.services import leads
from bot.services.routing import Router
from bot.slack.ids import Action
from bot.store.models import Notice, Pql
from tests.scoring.builders import NY, Trial
from tests.slack.conftest import ANA, BEN, CHANNEL, InlineExecutor, Workspace
from tests.standin import SlackStandIn

FRIDAY = datetime(2026, 11, 6, 15, 0, tzinfo=NY)  # in business hours: new leads are assigned, their DMs owed


def office(engine, standin, **executors) -> Workspace:
    """The team's workspace with leads routed to the reps as they qualify (so each owes its rep a DM), and one
    clock for pqlbot and Slack."""
    workspace = Workspace(engine, standin, FRIDAY, **executors)
    settings = workspace.settings
    workspace.pipeline.router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=settings.pql_manager)
    workspace.gateway.clock = lambda: workspace.now  # when Slack's limits end, for the gateway
    standin.clock = lambda: workspace.now.timestamp()  # and for Slack
    return workspace


def later(workspace: Workspace, seconds: float) -> None:
    workspace.now += timedelta(seconds=seconds)


def qualify(workspace: Workspace, *users: str) -> list[int]:
    for user in users:
        workspace.pipeline.ingest(Trial(user, email=f"{user}@{user}.example").activate(1).invite(2).integrate(2)
                                  .events, at=workspace.now)
    with workspace.pipeline.session() as session:
        return [p.id for p in session.exec(select(Pql).order_by(Pql.id))]


def alerts(standin: SlackStandIn) -> Counter:
    return Counter(m.metadata["event_payload"]["pql_id"] for m in standin.history(CHANNEL)
                   if m.thread_ts is None and m.metadata and m.metadata["event_type"] == "pql_alert")


def test_a_rate_limited_alerts_channel_holds_back_only_its_alerts_which_follow_once_each_when_it_opens(
        engine, standin):
    workspace = office(engine, standin)
    standin.limit(CHANNEL, 60)  # Slack answers 429, Retry-After: 60, to every post in the channel for a minute
    pql_ids = qualify(workspace, "ann", "bob", "cyd")
    started = time.monotonic()
    report = workspace.deliver()
    assert time.monotonic() - started < 10  # at once: no worker waited the minute out
    assert (report.sent, report.held) == (3, 3)  # the reps' three assignment DMs went; the three alerts wait
    assert sum(len(standin.history(f"D{rep}")) for rep in (ANA, BEN)) == 3
    assert [c.status for c in standin.calls_to("chat.postMessage") if c.params["channel"] == "#pql-alerts"] == [429]

    # A rep claims a lead from their DM meanwhile: stored at once; its reply will go in the alert's thread.
    owner = workspace.pql(pql_ids[0]).rep_id
    assert workspace.command(owner, "/claim", f"PQL-{pql_ids[0]}").status_code == 200
    assert workspace.pql(pql_ids[0]).claimed_by == owner

    later(workspace, 30)
    workspace.deliver()  # still limited: Slack is not asked again before the minute is up
    assert [c.status for c in standin.calls_to("chat.postMessage") if c.params["channel"] == "#pql-alerts"] == [429]
    assert alerts(standin) == Counter()

    later(workspace, 30)
    report = workspace.deliver()
    assert report.sent == 4  # the three alerts, in order, and the claim's reply in its thread
    assert alerts(standin) == Counter({pql_id: 1 for pql_id in pql_ids})
    posted = [m.metadata["event_payload"]["pql_id"] for m in standin.history(CHANNEL) if m.thread_ts is None]
    assert posted == pql_ids
    first = workspace.pql(pql_ids[0])
    assert [m.text for m in standin.thread(CHANNEL, first.alert_ts)] == [f"PQL-{pql_ids[0]} claimed by <@{owner}>."]
    with workspace.pipeline.session() as session:
        held = session.exec(select(Notice).where(Notice.kind == "alert")).all()
    assert {(n.state, n.attempts) for n in held} == {("sent", 0)}  # a rate limit is not a failed attempt


def test_refused_clicks_whose_private_answers_slack_limits_do_not_hold_up_the_after_ack_workers(
        engine, standin):
    workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="after-ack")  # as many as serve has
    workspace = office(engine, standin, executor=InlineExecutor(), after_ack=workers)
    try:
        worked, waiting = qualify(workspace, "ann", "bob")
        workspace.deliver()
        worker, claimer = workspace.pql(worked).rep_id, workspace.pql(waiting).rep_id
        with workspace.pipeline.session() as session, session.begin():
            rep = leads.actor(session, worker, manager=None)
            pql = session.get(Pql, worked)
            leads.claim(session, pql, rep, now=workspace.now, tz=NY, cap=10)
            for _ in range(3):
                leads.log_touch(session, pql, rep, channel="email", email_key="email1", note=None,
                                now=workspace.now)
        standin.limit("chat.postEphemeral", 60)
        # Four clicks on Log touch past the third touch: each is refused privately, and Slack limits the answers.
        for _ in range(4):
            assert workspace.click(worker, Action.LOG_TOUCH, worked).status_code == 200
        # A fifth click, a claim, is acked at once and stored at once, not a minute later.
        assert workspace.click(claimer, Action.CLAIM, waiting).status_code == 200
        for _ in range(200):
            if workspace.pql(waiting).claimed_by == claimer:
                break
            time.sleep(0.025)
        assert workspace.pql(waiting).claimed_by == claimer
        workers.shutdown(wait=True)
        assert not any(c.ok for c in standin.calls_to("chat.postEphemeral"))
        # The answers wait in the outbox and are said once Slack allows: once each.
        later(workspace, 60)
        workspace.deliver()
        said = [c.params["text"] for c in standin.calls_to("chat.postEphemeral") if c.ok]
        assert len(said) == 4 and all("already has 3 touches" in text for text in said)
        assert {c.params["user"] for c in standin.calls_to("chat.postEphemeral")} == {worker}
    finally:
        workers.shutdown(wait=False, cancel_futures=True)


def test_a_refused_slash_command_whose_response_url_slack_limits_is_answered_by_dm_from_the_outbox(engine, standin):
    workspace = office(engine, standin)
    [pql_id] = qualify(workspace, "ann")
    workspace.deliver()
    owner = workspace.pql(pql_id).rep_id
    other = BEN if owner == ANA else ANA
    workspace.click(owner, Action.CLAIM, pql_id)
    standin.limit("respond", 30)
    assert workspace.command(other, "/claim", f"PQL-{pql_id}").status_code == 200  # refused: the owner has it
    assert workspace.pql(pql_id).claimed_by == owner and standin.responses == []  # Slack took no answer
    workspace.deliver()
    answers = [m.text for m in standin.history(f"D{other}") if "already claimed" in m.text]
    assert answers == [f"PQL-{pql_id} is already claimed by <@{owner}>."]


def test_a_modal_slack_will_not_open_yet_asks_the_person_to_try_again_in_so_many_seconds(engine, standin, caplog):
    workspace = office(engine, standin)
    [pql_id] = qualify(workspace, "ann")
    workspace.deliver()
    standin.limit("views.open", 20)
    started = time.monotonic()
    assert workspace.click(ANA, Action.DETAILS, pql_id).status_code == 200
    assert time.monotonic() - started < 10  # the listener did not wait the limit out
    assert workspace.said()[-1] == "Slack asked pqlbot to slow down for a moment. Please try again in 20 seconds."
    assert "incident" not in caplog.text
