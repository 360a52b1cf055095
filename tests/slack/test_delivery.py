"""The outbox's delivery over real HTTP: slack_sdk talks to the local Slack stand-in, the store is real."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services import audit, leads, outbox
from bot.services.pipeline import Pipeline
from bot.slack.delivery import LEASE, MAX_ATTEMPTS, Deliverer, deliver_due
from bot.slack.gateway import Gateway
from bot.store import holders, make_engine
from bot.store import session as open_session
from bot.store.models import Notice, Pql
from tests.scoring.builders import NY, Trial, sarah
from tests.standin import ALERTS_CHANNEL_ID, SlackStandIn

ALERTS = "#pql-alerts"


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def gateway(slack):
    return Gateway.connect("xoxb-test", slack.url, max_retries=3, backoff=0.01)


def render(session, pql_id):
    pql = session.get(Pql, pql_id)
    text = f"PQL-{pql_id} {pql.tier} v{pql.version}"
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def record(engine, *trials: Trial):
    """Ingest the trials' events; returns the new PQLs' ids and a `now` just after they were recorded."""
    trials = trials or (sarah(),)
    events = sorted((e for t in trials for e in t.events), key=lambda e: e.at)
    at = events[-1].at
    triggered = Pipeline(engine, tz=NY).ingest(events, at=at).rescored.triggered
    assert len(triggered) == len(trials)
    return triggered, at + timedelta(minutes=1)


def deliver(engine, gateway, now):
    return deliver_due(engine, gateway, render_alert=render, alerts_channel=ALERTS, now=now)


def lead(engine, pql_id) -> Pql:
    with open_session(engine) as session:
        return session.get(Pql, pql_id)


def notices(engine) -> list[Notice]:
    with open_session(engine) as session:
        return list(session.exec(select(Notice).order_by(Notice.id)))


def notice(engine, key) -> Notice:
    return next(n for n in notices(engine) if n.key == key)


def queue(engine, fn, *args, now, **kwargs):
    with open_session(engine) as session, session.begin():
        fn(session, *args, now=now, **kwargs)


def reply(engine, pql_id, key, text, now):
    with open_session(engine) as session, session.begin():
        outbox.reply(session, session.get(Pql, pql_id), key, text, now=now)


def test_a_recorded_pqls_alert_is_posted_once_to_the_channel_and_its_ts_saved_on_the_lead(engine, slack, gateway):
    [pql_id], now = record(engine)
    report = deliver(engine, gateway, now)
    assert (report.sent, report.failed, report.waiting, report.updated) == (1, 0, 0, 0)
    [post] = slack.posted(ALERTS)
    assert post.params["channel"] == ALERTS and post.params["text"] == f"PQL-{pql_id} medium v1"
    assert post.params["blocks"][0]["type"] == "section" and post.token == "xoxb-test"
    pql = lead(engine, pql_id)
    assert (pql.alert_channel, pql.alert_ts) == (ALERTS_CHANNEL_ID, post.response["ts"])
    assert (pql.state, pql.version, pql.posted_version) == ("alerted", 1, 1)
    [sent] = notices(engine)
    assert (sent.state, sent.channel, sent.ts, sent.sent_at, sent.attempts) == (
        "sent", ALERTS_CHANNEL_ID, pql.alert_ts, now, 0)
    with open_session(engine) as session:
        assert [e.action for e in audit.trail(session, pql_id=pql_id)][-1] == "pql_alerted"


def test_running_delivery_again_posts_nothing_more(engine, slack, gateway):
    _, now = record(engine)
    deliver(engine, gateway, now)
    again = deliver(engine, gateway, now + timedelta(hours=1))
    assert (again.sent, again.failed, again.updated) == (0, 0, 0)
    assert len(slack.calls) == 1 and len(slack.history(ALERTS)) == 1


def test_a_rate_limit_with_retry_after_then_success_posts_exactly_one_message(engine, slack, gateway):
    _, now = record(engine)
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    report = deliver(engine, gateway, now)
    assert (report.sent, report.held) == (0, 1)  # back in the outbox, due when Retry-After has passed (now)
    assert deliver(engine, gateway, now).sent == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.posted(ALERTS)) == 1 and len(slack.history(ALERTS)) == 1
    assert notices(engine)[0].attempts == 0  # a rate limit is not a delivery attempt: Slack did nothing


def test_a_server_error_then_success_posts_one_message(engine, slack, gateway):
    _, now = record(engine)
    slack.fail_next("chat.postMessage", status=500)
    assert deliver(engine, gateway, now).sent == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 200]
    assert len(slack.history(ALERTS)) == 1


def test_a_dropped_connection_then_success_posts_one_message(engine, slack, gateway):
    _, now = record(engine)
    slack.fail_next("chat.postMessage", drop=True)
    assert deliver(engine, gateway, now).sent == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [0, 200]
    assert len(slack.posted(ALERTS)) == 1 and len(slack.history(ALERTS)) == 1


def test_slack_down_longer_than_the_clients_retries_leaves_the_notice_pending_for_a_later_pass(
        engine, slack, gateway):
    [pql_id], now = record(engine)
    slack.fail_next("chat.postMessage", times=4, status=500)  # the first try and all three retries
    report = deliver(engine, gateway, now)
    assert (report.sent, report.failed) == (0, 1)
    [waiting] = notices(engine)
    assert (waiting.state, waiting.attempts, waiting.last_error) == ("pending", 1, "internal_error")
    assert waiting.next_attempt_at > now
    assert lead(engine, pql_id).state == "qualified" and slack.history(ALERTS) == []

    assert deliver(engine, gateway, now).sent == 0  # not due yet: no call at all
    assert len(slack.calls_to("chat.postMessage")) == 4
    assert deliver(engine, gateway, waiting.next_attempt_at).sent == 1
    assert len(slack.posted(ALERTS)) == 1 and len(slack.history(ALERTS)) == 1
    assert (notices(engine)[0].state, lead(engine, pql_id).state) == ("sent", "alerted")


def test_a_connection_that_keeps_dropping_counts_as_a_failed_attempt(engine, slack, gateway):
    _, now = record(engine)
    slack.fail_next("chat.postMessage", times=4, drop=True)
    assert deliver(engine, gateway, now).failed == 1
    failed = notices(engine)[0]
    assert (failed.state, failed.attempts, failed.last_error) == ("pending", 1, "RemoteDisconnected")


def test_a_reply_waits_for_its_alert_then_goes_into_the_alerts_thread(engine, slack, gateway):
    [pql_id], now = record(engine)
    reply(engine, pql_id, f"claim:{pql_id}", "Claimed by Ana", now)
    slack.fail_next("chat.postMessage", times=4, status=500)
    report = deliver(engine, gateway, now)
    assert (report.sent, report.failed, report.waiting) == (0, 1, 1)
    held = notice(engine, f"claim:{pql_id}")
    assert (held.state, held.attempts) == ("pending", 0)  # waiting is not an attempt

    later = now + timedelta(minutes=5)
    assert deliver(engine, gateway, later).sent == 2
    alert, threaded = slack.history(ALERTS)
    assert (alert.thread_ts, threaded.thread_ts, threaded.text) == (None, alert.ts, "Claimed by Ana")
    sent = notice(engine, f"claim:{pql_id}")
    assert (sent.state, sent.channel) == ("sent", ALERTS_CHANNEL_ID) and sent.ts == threaded.ts


def test_a_dm_opens_a_conversation_and_posts_in_it(engine, slack, gateway):
    _, now = record(engine)
    queue(engine, outbox.dm, "U0ANA", "dm:hello", "Your lead converted", now=now)
    assert deliver(engine, gateway, now).sent == 2
    [opened] = slack.calls_to("conversations.open")
    assert opened.params["users"] == "U0ANA"
    [message] = slack.history("DU0ANA")
    assert message.text == "Your lead converted"
    sent = notice(engine, "dm:hello")
    assert (sent.state, sent.channel, sent.ts) == ("sent", "DU0ANA", message.ts)


def test_a_channel_notice_posts_to_its_channel(engine, slack, gateway):
    _, now = record(engine)
    queue(engine, outbox.post, "C0REVIEW", "review:2026-W45", "Weekly review", now=now,
          blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Weekly review"}}])
    deliver(engine, gateway, now)
    [message] = slack.history("C0REVIEW")
    assert message.text == "Weekly review" and message.blocks[0]["type"] == "section"


def test_a_lead_whose_version_moved_is_updated_with_chat_update_once(engine, slack, gateway):
    [pql_id], now = record(engine)
    deliver(engine, gateway, now)
    with open_session(engine) as session, session.begin():
        leads.sync_roster(session, [("U0ANA", "Ana Ruiz", None)], now=now)
        ana = leads.actor(session, "U0ANA", manager=None)
        leads.claim(session, session.get(Pql, pql_id), ana, now=now, tz=NY, cap=5)
    report = deliver(engine, gateway, now + timedelta(seconds=5))
    assert (report.sent, report.updated) == (1, 1)  # the claim's reply, and the alert edited
    [update] = slack.calls_to("chat.update")
    pql = lead(engine, pql_id)
    assert (update.params["channel"], update.params["ts"]) == (pql.alert_channel, pql.alert_ts)
    assert update.params["text"] == f"PQL-{pql_id} medium v2"
    assert (pql.version, pql.posted_version, pql.state) == (2, 2, "claimed")
    assert slack.history(ALERTS)[0].text == f"PQL-{pql_id} medium v2"

    assert deliver(engine, gateway, now + timedelta(minutes=1)).updated == 0
    assert len(slack.calls_to("chat.update")) == 1


def test_a_change_made_while_the_alert_renders_is_picked_up_by_the_next_pass(engine, slack, gateway):
    [pql_id], now = record(engine)
    deliver(engine, gateway, now)
    bump = sa.update(Pql.__table__).where(Pql.__table__.c.id == pql_id).values(version=Pql.__table__.c.version + 1)
    with engine.begin() as connection:
        connection.execute(bump)

    def render_then_change(session, rendered_id):
        rendered = render(session, rendered_id)
        if len(slack.calls_to("chat.update")) == 0:
            with engine.begin() as connection:  # someone claims the lead just as the edit is rendered
                connection.execute(bump)
        return rendered

    deliver_due(engine, gateway, render_alert=render_then_change, alerts_channel=ALERTS, now=now)
    assert (lead(engine, pql_id).version, lead(engine, pql_id).posted_version) == (3, 2)
    assert deliver(engine, gateway, now).updated == 1
    assert [c.params["text"] for c in slack.calls_to("chat.update")] == [
        f"PQL-{pql_id} medium v2", f"PQL-{pql_id} medium v3"]
    assert lead(engine, pql_id).posted_version == 3


def test_two_deliveries_racing_on_the_same_store_post_each_alert_once(engine, slack, gateway):
    trials = [Trial(f"user{i}", email=f"user{i}@acme{i}.com", company=f"Acme {i}").activate(1).invite(2).integrate(2)
              for i in range(6)]
    pql_ids, now = record(engine, *trials)
    slack.latency = 0.02  # each answer takes a moment, so the two passes overlap
    start, reports = threading.Barrier(2), []

    def run():
        start.wait()
        reports.append(deliver(engine, Gateway.connect("xoxb-test", slack.url, backoff=0.01), now))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.sent for r in reports) == len(pql_ids) and sum(r.failed for r in reports) == 0
    texts = [c.params["text"] for c in slack.posted(ALERTS)]
    assert sorted(texts) == sorted(f"PQL-{i} medium v1" for i in pql_ids)
    assert {lead(engine, i).alert_ts for i in pql_ids} == {m.ts for m in slack.history(ALERTS)}


def test_a_notice_left_sending_by_a_pqlbot_from_before_holders_is_sent_again_after_the_old_lease(
        engine, slack, gateway):
    [pql_id], now = record(engine)
    queue(engine, outbox.dm, "U0ANA", "dm:crash", "Heads up", now=now)
    notices_table = Notice.__table__
    with engine.begin() as connection:  # claimed without a holder (before revision 0009), then the worker died
        connection.execute(sa.update(notices_table).values(state="sending", next_attempt_at=now + LEASE))
    assert deliver(engine, gateway, now + timedelta(minutes=5)).sent == 0
    report = deliver(engine, gateway, now + LEASE + timedelta(seconds=1))
    assert report.sent == 2
    dm = notice(engine, "dm:crash")
    assert (dm.state, dm.attempts, dm.last_error) == ("sent", 1, None)
    assert len(slack.history(ALERTS)) == 1 and lead(engine, pql_id).state == "alerted"


def test_notices_a_process_was_sending_when_it_died_go_out_on_the_next_pass_and_never_while_it_lives(
        engine, slack, gateway):
    [pql_id], now = record(engine)
    queue(engine, outbox.dm, "U0ANA", "dm:crash", "Heads up", now=now)
    other = holders.new(engine)  # another process's deliverer, with its lock on the store
    with engine.begin() as connection:  # it claimed both and is sending them
        connection.execute(sa.update(Notice.__table__).values(state="sending", holder=other.id,
                                                              next_attempt_at=now + LEASE))
    assert deliver(engine, gateway, now + 2 * LEASE).sent == 0  # alive: however long it takes, they are its own
    assert {n.state for n in notices(engine)} == {"sending"}
    other.close()  # killed: the database (or the operating system) lets go of its lock at once
    report = deliver(engine, gateway, now + timedelta(seconds=1))
    assert report.sent == 2  # the next pass, not ten minutes later
    dm = notice(engine, "dm:crash")
    assert (dm.state, dm.attempts, dm.holder) == ("sent", 1, None)
    assert len(slack.history(ALERTS)) == 1 and lead(engine, pql_id).state == "alerted"


def test_a_send_that_outlasts_any_lease_is_never_taken_over_by_another_process(engine, slack, gateway):
    [pql_id], now = record(engine)
    second = make_engine(engine.url.render_as_string(hide_password=False))  # another process on the same store
    reached, release = threading.Event(), threading.Event()

    def slow(call):  # the first process's post is on its way to Slack, which has not acted on it yet
        if call.method == "chat.postMessage" and not reached.is_set():
            reached.set()
            release.wait(30)

    slack.before_acting = slow
    first = threading.Thread(target=deliver, args=(engine, gateway, now))
    first.start()
    try:
        assert reached.wait(10)
        for minutes in (11, 60):  # past the old ten-minute lease, and far past it
            report = deliver_due(second, Gateway.connect("xoxb-test", slack.url, backoff=0.01), render_alert=render,
                                 alerts_channel=ALERTS, now=now + timedelta(minutes=minutes))
            assert (report.sent, report.failed) == (0, 0)
        assert slack.history(ALERTS) == [] and notices(engine)[0].state == "sending"
    finally:
        release.set()
        first.join(30)
        holders.of(second).close()
        second.dispose()
    [posted] = slack.history(ALERTS)
    [sent] = notices(engine)
    assert (sent.state, sent.ts, sent.attempts) == ("sent", posted.ts, 0)
    assert lead(engine, pql_id).alert_ts == posted.ts


def test_a_notice_this_process_holds_but_no_longer_sends_goes_back_on_its_next_pass(engine, slack, gateway):
    [pql_id], now = record(engine)
    with engine.begin() as connection:  # claimed by this process, whose outcome could not be saved
        connection.execute(sa.update(Notice.__table__).values(state="sending", holder=holders.of(engine).id,
                                                              next_attempt_at=now + LEASE))
    assert deliver(engine, gateway, now).sent == 1
    assert len(slack.history(ALERTS)) == 1 and lead(engine, pql_id).state == "alerted"


def test_an_alert_already_on_its_lead_is_not_posted_again(engine, slack, gateway):
    [pql_id], now = record(engine)
    deliver(engine, gateway, now)
    with engine.begin() as connection:  # as if a slow first send outlived its lease and was released
        connection.execute(sa.update(Notice.__table__).values(state="pending", ts=None, next_attempt_at=now))
    assert deliver(engine, gateway, now).sent == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert notices(engine)[0].ts == lead(engine, pql_id).alert_ts


def test_a_notice_that_keeps_failing_is_given_up_after_eight_attempts_and_logged_without_its_text(
        engine, slack, gateway, caplog):
    _, now = record(engine)
    deliver(engine, gateway, now)
    queue(engine, outbox.post, "C0REVIEW", "review:secret", "Top secret pipeline numbers", now=now)
    with engine.begin() as connection:
        connection.execute(sa.update(Notice.__table__).where(Notice.__table__.c.key == "review:secret")
                           .values(attempts=MAX_ATTEMPTS - 1))
    slack.fail_next("chat.postMessage", times=4, status=500)
    caplog.set_level(logging.WARNING)
    report = deliver(engine, gateway, now)
    assert (report.sent, report.failed) == (0, 1)
    failed = notice(engine, "review:secret")
    assert (failed.state, failed.attempts, failed.last_error) == ("failed", MAX_ATTEMPTS, "internal_error")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "bot.slack.delivery"]
    assert len(errors) == 1 and "failed for good" in errors[0].getMessage()
    assert "secret pipeline" not in caplog.text
    assert deliver(engine, gateway, now + timedelta(days=1)).sent == 0


def test_the_deliverer_delivers_when_kicked_and_survives_a_failing_pass(engine, slack, gateway, caplog):
    _, now = record(engine)
    ticks = iter([RuntimeError("clock broke")])

    def clock():
        error = next(ticks, None)
        if error:
            raise error
        return now

    deliverer = Deliverer(engine, gateway, render_alert=render, alerts_channel=ALERTS, clock=clock, every=30)
    deliverer.start()
    try:
        deadline = time.monotonic() + 10
        while deliverer.passes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert deliverer.passes == 1 and slack.history(ALERTS) == []  # the first pass failed...
        deliverer.kick()  # ...and the thread lives on
        while not slack.history(ALERTS) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(slack.history(ALERTS)) == 1
    finally:
        deliverer.stop()
    assert not deliverer._thread.is_alive()
    assert "delivery pass failed" in caplog.text
