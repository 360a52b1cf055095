"""Slack misbehaving, the outbox delivering through it: every alert and every thread reply appears once.

A dropped connection comes in both kinds real Slack has: before Slack acted (nothing posted) and after it
acted (posted, the answer lost). The second is why alerts and replies carry message metadata and are
looked for (conversations.history / conversations.replies) before they are posted again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services import leads, outbox
from bot.services.pipeline import Pipeline
from bot.slack.delivery import LEASE, LOOKBACK, deliver_due
from bot.slack.gateway import Gateway
from bot.store import holders
from bot.store import session as open_session
from bot.store.models import Notice, Pql
from tests.scoring.builders import NY, Trial
from tests.standin import ALERTS_CHANNEL_ID, DROP, SlackStandIn

WEDNESDAY = datetime(2026, 11, 4, 11, 0, tzinfo=NY)
REPS = [("U0ANA", "Ana Ruiz", None), ("U0BEN", "Ben Okafor", None)]


class World:
    """A store, a clock the test moves, and Slack (the stand-in) stamping messages on that clock."""

    def __init__(self, engine: sa.Engine, slack: SlackStandIn, *, alerts_channel: str = ALERTS_CHANNEL_ID,
                 max_retries: int = 3):
        self.engine, self.slack, self.alerts_channel = engine, slack, alerts_channel
        self.now = WEDNESDAY
        slack.clock = lambda: self.now.timestamp()  # so `oldest` in a lookup means what it says
        self.pipeline = Pipeline(engine, tz=NY, clock=lambda: self.now)
        self.gateway = Gateway.connect("xoxb-test", slack.url, max_retries=max_retries, backoff=0.01,
                                       clock=lambda: self.now)  # Slack's rate limits pass on the test's clock
        with open_session(engine) as session, session.begin():
            leads.sync_roster(session, REPS, now=self.now)

    @staticmethod
    def render(session, pql_id):
        pql = session.get(Pql, pql_id)
        text = f"PQL-{pql_id} {pql.state} v{pql.version}"
        return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]

    def leads(self, count: int, first: int = 0) -> list[int]:
        trials = [Trial(f"user{n:02d}", email=f"user{n:02d}@company{n}.com", company=f"Company {n}")
                  .activate(1).invite(2).integrate(2) for n in range(first, first + count)]
        events = sorted((e for t in trials for e in t.events), key=lambda e: e.at)
        triggered = self.pipeline.ingest(events, at=self.now).rescored.triggered
        assert len(triggered) == count
        return sorted(triggered)

    def claim(self, pql_id: int, rep: str) -> None:
        with open_session(self.engine) as session, session.begin():
            who = leads.actor(session, rep, manager=None)
            leads.claim(session, session.get(Pql, pql_id), who, now=self.now, tz=NY, cap=100)

    def deliver(self, gateway: Gateway | None = None):
        return deliver_due(self.engine, gateway or self.gateway, render_alert=self.render,
                           alerts_channel=self.alerts_channel, now=self.now)

    def notices(self) -> list[Notice]:
        with open_session(self.engine) as session:
            return list(session.exec(select(Notice).order_by(Notice.id)))

    def pql(self, pql_id: int) -> Pql:
        with open_session(self.engine) as session:
            return session.get(Pql, pql_id)

    def alerts(self) -> Counter:
        """Top-level alert messages in the channel, per lead id (from their metadata)."""
        return Counter(m.metadata["event_payload"]["pql_id"] for m in self.slack.history(ALERTS_CHANNEL_ID)
                       if m.thread_ts is None and m.metadata and m.metadata["event_type"] == "pql_alert")

    def unfinished(self) -> bool:
        with self.engine.connect() as connection:
            waiting = connection.scalar(sa.select(sa.func.count()).select_from(Notice.__table__).where(
                Notice.__table__.c.state.in_(("pending", "sending"))))
            stale = connection.scalar(sa.select(sa.func.count()).select_from(Pql.__table__).where(
                Pql.__table__.c.alert_ts.is_not(None), Pql.__table__.c.version > Pql.__table__.c.posted_version))
        return bool(waiting or stale)

    def next_due(self) -> datetime:
        """When the next pending notice is due (or a second from now): how far the clock jumps."""
        with self.engine.connect() as connection:
            due = connection.scalar(sa.select(sa.func.min(Notice.__table__.c.next_attempt_at)).where(
                Notice.__table__.c.state == "pending"))
        return max(self.now + timedelta(seconds=1), due or self.now)


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


# -- the scenario ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_thirty_percent_of_slack_calls_failing_every_way_still_posts_each_alert_and_reply_once(engine, slack):
    # One retry per call (production has three): more attempts fail outright, so the outbox's own retries,
    # which look before posting again, are exercised too.
    world = World(engine, slack, max_retries=1)
    pql_ids = world.leads(40)
    early = pql_ids[::2]  # claimed before their alert is up: the reply waits for it
    for n, pql_id in enumerate(early):
        world.claim(pql_id, REPS[n % 2][0])
    # The very first post reaches Slack and its answer is lost; then 30% of all calls fail: 429 (Retry-After
    # 0 or 1), 500, a connection dropped before Slack acts, or after it acted.
    slack.fail_next("chat.postMessage", drop=True, after=True)
    slack.fail_ratio(0.3, seed=2026, retry_after=1)
    started, passes = time.monotonic(), 0
    while world.unfinished():
        assert passes < 60 and time.monotonic() - started < 120, "the outbox did not drain"
        world.deliver()
        passes += 1
        if passes == 1:
            for n, pql_id in enumerate(pql_ids[1::2]):  # claimed once their alert is (maybe) up: edits too
                world.claim(pql_id, REPS[n % 2][0])
        world.now = world.next_due()  # past the backoffs
    slack.heal()

    # Exactly one alert per lead in the channel, and nothing else at the top level; the lead points at it
    # and it shows the lead as it is now.
    assert world.alerts() == Counter({pql_id: 1 for pql_id in pql_ids})
    top = [m for m in slack.history(ALERTS_CHANNEL_ID) if m.thread_ts is None]
    assert len(top) == len(pql_ids)
    by_ts = {m.ts: m for m in top}
    for pql_id in pql_ids:
        pql = world.pql(pql_id)
        assert pql.alert_ts in by_ts and by_ts[pql.alert_ts].metadata["event_payload"]["pql_id"] == pql_id
        assert (pql.state, pql.posted_version) == ("claimed", pql.version)
        assert by_ts[pql.alert_ts].text == f"PQL-{pql_id} claimed v{pql.version}"
        # Exactly one reply in its thread: the claim's.
        [reply] = slack.thread(ALERTS_CHANNEL_ID, pql.alert_ts)
        assert reply.metadata == {"event_type": "pql_reply", "event_payload": {"key": f"claim:{pql_id}"}}
    assert {(n.kind, n.state) for n in world.notices()} == {("alert", "sent"), ("reply", "sent")}
    retried = [n for n in world.notices() if n.attempts]
    assert retried  # some failed a whole attempt and were posted by a later pass, after looking

    # Every kind of fault happened, answers to posts Slack had acted on were lost, and alerts were looked
    # up (which kinds of post lost answers depends on the seed; each is also tested on its own below).
    statuses = Counter(c.status for c in slack.calls)
    assert statuses[429] and statuses[500] and statuses[DROP] and statuses[200]
    assert any(c.status == DROP and not c.processed for c in slack.calls)
    lost = [c for c in slack.calls_to("chat.postMessage") if c.status == DROP and c.processed]
    assert "pql_alert" in {c.params["metadata"]["event_type"] for c in lost}
    assert slack.calls_to("conversations.history")
    print(f"\n{len(slack.calls)} Slack calls over {passes} passes: {dict(statuses)}, "
          f"{len(lost)} posts acted on and their answer lost, {len(retried)} notices retried by the outbox; "
          f"{time.monotonic() - started:.1f} s")


# -- each path on its own ----------------------------------------------------------------------------------------

def test_an_alert_whose_answer_was_lost_is_found_in_the_channel_and_not_posted_again(engine, slack):
    world = World(engine, slack)
    [pql_id] = world.leads(1)
    slack.fail_next("chat.postMessage", drop=True, after=True)
    report = world.deliver()
    assert (report.sent, report.failed) == (1, 0)
    assert world.alerts() == Counter({pql_id: 1})
    [message] = slack.history(ALERTS_CHANNEL_ID)
    assert message.metadata == {"event_type": "pql_alert", "event_payload": {"pql_id": pql_id, "version": 1}}
    [lookup] = slack.calls_to("conversations.history")
    created = world.notices()[0].created_at
    assert lookup.params["channel"] == ALERTS_CHANNEL_ID and lookup.params["include_all_metadata"] in ("1", "true")
    assert float(lookup.params["oldest"]) == pytest.approx((created - LOOKBACK).timestamp())
    pql = world.pql(pql_id)
    assert (pql.alert_ts, pql.state, pql.posted_version) == (message.ts, "alerted", 1)
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [DROP]


@pytest.mark.parametrize("behind", [120, 290])
def test_with_slacks_clock_minutes_behind_an_alert_and_a_reply_whose_answers_were_lost_are_found_not_posted_twice(
        engine, slack, behind):
    world = World(engine, slack)
    slack.skew = -behind  # Slack stamps messages `behind` seconds earlier than our clock says
    [pql_id] = world.leads(1)
    world.now += timedelta(seconds=3)  # the deliverer gets to it a moment after it was queued
    slack.fail_next("chat.postMessage", drop=True, after=True)  # posted; the connection drops before the answer
    assert world.deliver().sent == 1
    assert world.alerts() == Counter({pql_id: 1})
    [alert] = slack.history(ALERTS_CHANNEL_ID)
    assert world.pql(pql_id).alert_ts == alert.ts
    world.claim(pql_id, "U0ANA")
    world.now += timedelta(seconds=3)
    slack.fail_next("chat.postMessage", drop=True, after=True)
    assert world.deliver().sent == 1
    [reply] = slack.thread(ALERTS_CHANNEL_ID, alert.ts)
    assert reply.metadata["event_payload"] == {"key": f"claim:{pql_id}"}
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [DROP, DROP]  # found both times, never reposted


def test_an_alert_posted_by_a_process_that_died_before_recording_it_is_adopted_by_the_next_pass(engine, slack):
    world = World(engine, slack)
    [pql_id] = world.leads(1)
    # The dead process: it claimed the notice, Slack posted its alert, and it died before the commit.
    dead = holders.new(engine)
    with engine.begin() as connection:
        connection.execute(sa.update(Notice.__table__).values(state="sending", holder=dead.id,
                                                              next_attempt_at=world.now + LEASE))
    world.now += timedelta(seconds=2)
    world.gateway.client.chat_postMessage(
        channel=ALERTS_CHANNEL_ID, text=f"PQL-{pql_id} qualified v1",
        metadata={"event_type": "pql_alert", "event_payload": {"pql_id": pql_id, "version": 1}})
    world.claim(pql_id, "U0ANA")  # the lead moves on meanwhile: the adopted alert must be edited
    dead.close()  # its lock goes with it
    world.now += timedelta(seconds=1)
    report = world.deliver()
    assert (report.sent, report.updated) == (2, 1)  # the alert (adopted) and the claim's reply; one edit
    [alert] = [m for m in slack.history(ALERTS_CHANNEL_ID) if m.thread_ts is None]
    pql = world.pql(pql_id)
    assert (pql.alert_ts, pql.posted_version, pql.version) == (alert.ts, 2, 2)
    assert alert.text == f"PQL-{pql_id} claimed v2"
    assert len(slack.calls_to("chat.postMessage")) == 2  # the dead process's alert, and the reply
    assert [n.attempts for n in world.notices()] == [1, 0]


def test_a_reply_whose_answer_was_lost_is_found_in_the_thread_and_not_posted_again(engine, slack):
    world = World(engine, slack)
    [pql_id] = world.leads(1)
    world.deliver()
    world.claim(pql_id, "U0BEN")
    slack.fail_next("chat.postMessage", drop=True, after=True)
    world.now += timedelta(seconds=5)
    assert world.deliver().sent == 1
    pql = world.pql(pql_id)
    [reply] = slack.thread(ALERTS_CHANNEL_ID, pql.alert_ts)
    assert reply.metadata["event_payload"] == {"key": f"claim:{pql_id}"}
    [lookup] = slack.calls_to("conversations.replies")
    assert (lookup.params["channel"], lookup.params["ts"]) == (ALERTS_CHANNEL_ID, pql.alert_ts)
    sent = next(n for n in world.notices() if n.kind == "reply")
    assert (sent.state, sent.ts) == ("sent", reply.ts)


def test_a_failure_slack_did_nothing_about_is_retried_without_looking(engine, slack):
    world = World(engine, slack)
    world.leads(1)
    slack.fail_next("chat.postMessage", status=429, retry_after=3)
    assert world.deliver().held == 1  # back in the outbox until Retry-After has passed: not an attempt
    world.now += timedelta(seconds=3)
    assert world.deliver().sent == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.calls_to("conversations.history") == []


def test_a_lookup_slack_refuses_still_posts_the_alert_at_least_once(engine, slack, caplog):
    world = World(engine, slack)
    [pql_id] = world.leads(1)
    slack.fail_next("chat.postMessage", drop=True)  # dropped before Slack acted
    slack.fail_next("conversations.history", error="missing_scope")  # an install without channels:history
    caplog.set_level(logging.WARNING, "bot.slack.delivery")
    assert world.deliver().sent == 1
    assert world.alerts() == Counter({pql_id: 1})
    assert "missing_scope" in caplog.text


def test_an_alerts_channel_named_by_name_is_looked_up_by_the_id_slack_answered_with(engine, slack):
    world = World(engine, slack, alerts_channel="#pql-alerts")
    first, second = world.leads(2)
    slack.fail_next("chat.postMessage", drop=True, after=True)  # the first alert ever: no id known yet
    world.deliver()
    assert world.alerts() == Counter({first: 2, second: 1})  # so it could not be looked for: at least once
    assert slack.calls_to("conversations.history") == []
    # A later process knows the id from the store: the next lost answer is found, not posted twice.
    [third] = world.leads(1, first=2)
    slack.fail_next("chat.postMessage", drop=True, after=True)
    world.deliver(Gateway.connect("xoxb-test", slack.url, max_retries=3, backoff=0.01))
    assert world.alerts()[third] == 1
    [lookup] = slack.calls_to("conversations.history")
    assert lookup.params["channel"] == ALERTS_CHANNEL_ID


def test_dms_stay_at_least_once(engine, slack):
    """DMs are not looked up (that would need im:history): a lost answer can repeat one, never lose it."""
    world = World(engine, slack)
    with open_session(engine) as session, session.begin():
        outbox.dm(session, "U0ANA", "dm:hello", "Heads up", now=world.now)
    slack.fail_next("chat.postMessage", drop=True, after=True)
    assert world.deliver().sent == 1
    assert [m.text for m in slack.history("DU0ANA")] == ["Heads up", "Heads up"]
