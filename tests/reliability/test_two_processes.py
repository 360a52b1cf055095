"""Two processes on one store: each scheduled step runs in one of them at a time, and each lead is alerted
and assigned once.

The sweeps test runs on every backend; PostgreSQL is the one that matters (an advisory lock per step, held
by each sweeper on its own connection pool, as two processes would). The end-to-end test runs two real
`pqlbot serve` processes on a PostgreSQL database of its own, and is skipped without one. The slow-send test runs
two real processes on each store: one's send outlasts the old lease, and the other never takes it over.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services import leads
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.store import make_engine, migrate
from bot.store import session as open_session
from bot.store.models import Assignment, AuditEntry, Notice, Pql
from bot.sweeps.runner import Sweeps
from tests.reliability.conftest import (
    MANAGER,
    REPS,
    alert_posts,
    check_store_and_slack,
    drained,
    kick,
    send_batch,
    team_zone,
    trial_batch,
    wait_until,
)
from tests.scoring.builders import NY, Trial

FRIDAY_EARLY = datetime(2026, 11, 13, 7, 0, tzinfo=NY)  # before business opens: new leads wait in the queue
FRIDAY_SWEEP = datetime(2026, 11, 13, 10, 30, tzinfo=NY)  # open, the week's review due, the @here owed


def sweeper(engine: sa.Engine, settings: Settings) -> Sweeps:
    router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=settings.pql_manager)
    return Sweeps(Pipeline(engine, tz=NY, router=router), router, settings)


def test_two_sweepers_at_once_run_each_scheduled_step_once(engine):
    settings = Settings(_env_file=None, pql_manager=MANAGER, pql_timezone="America/New_York", pql_daily_cap=50,
                        pql_reps=",".join(f"{rep}:{name}" for rep, name in REPS.items()),
                        pql_alerts_channel="C0ALERTS")
    first = sweeper(engine, settings)
    with open_session(engine) as session, session.begin():
        leads.sync_roster(session, settings.roster, now=FRIDAY_EARLY)
    trials = [Trial(f"q{n:02d}", email=f"q{n:02d}@company{n}.com", company=f"Company {n}",
                    signup=FRIDAY_EARLY - timedelta(days=4)).activate(1).invite(2).integrate(2) for n in range(24)]
    events = sorted((e for t in trials for e in t.events), key=lambda e: e.at)
    queued = first.pipeline.ingest(events, at=FRIDAY_EARLY).rescored.triggered
    with open_session(engine) as session:
        assert {p.state for p in session.exec(select(Pql))} == {"queued"} and len(queued) == 24

    # A second process: its own engine (connection pool) on the same store, its own pipeline and sweeps.
    other_engine = make_engine(engine.url.render_as_string(hide_password=False))
    second = sweeper(other_engine, settings)
    start, done, errors = threading.Barrier(2), [], []

    def sweep(sweeps: Sweeps) -> None:
        try:
            start.wait(10)
            done.append(sweeps.run_due(FRIDAY_SWEEP))
        except Exception as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in (first, second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(t.is_alive() for t in threads) and errors == []
    finally:
        other_engine.dispose()
    assert all(-1 not in d.values() for d in done), done
    total = Counter()
    for each in done:
        total.update(each)

    with open_session(engine) as session:
        pqls = list(session.exec(select(Pql)))
        assignments = list(session.exec(select(Assignment)))
        assigned_audit = list(session.exec(select(AuditEntry).where(AuditEntry.action == "pql_assigned")))
        notices = list(session.exec(select(Notice)))
    # The queue was shared out once: one assignment (and one audit entry, one DM) per lead.
    assert Counter(a.pql_id for a in assignments) == Counter({p.id: 1 for p in pqls})
    assert {a.reason for a in assignments} == {"queue"} and total["queue"] == 24
    assert Counter(e.pql_id for e in assigned_audit) == Counter({p.id: 1 for p in pqls})
    assert {p.state for p in pqls} == {"assigned"}
    assert {a.pql_id: a.rep_id for a in assignments} == {p.id: p.rep_id for p in pqls}
    assert sum(n.kind == "dm" and n.key.startswith("assigned:") for n in notices) == 24
    # Everyone rescored once, the week's review queued once, each lead's @here once: one reply in each thread, and
    # one <!here> in the channel listing the 24.
    assert total["rescore"] == 24
    assert [n.key for n in notices if n.kind == "review"] == ["weekly-review:2026-W46"]
    assert total["weekly_review"] == 1
    here = [n.key for n in notices if n.key.startswith("esc-here:")]
    digests = [n.key for n in notices if n.key.startswith("digest-here:")]
    assert sorted(here) == sorted(f"esc-here:{p.id}" for p in pqls) and len(digests) == 1
    assert total["escalate"] == len(here) + len(digests)


@pytest.mark.slow
def test_two_serve_processes_on_one_postgresql_alert_and_assign_each_lead_once(fault_postgres_url, slack, serves):
    started = time.monotonic()
    zone, business_open = team_zone()
    users = [f"pair{n:02d}" for n in range(60)]
    now = datetime.now(UTC)
    batches = {user: trial_batch(user, now=now, run="pair") for user in users}
    slack.clock = time.time
    engine = make_engine(fault_postgres_url)
    try:
        migrate(engine)  # once, up front: two processes migrating an empty database at once would race
        one = serves("one", database_url=fault_postgres_url, slack=slack, zone=zone).start()
        one.ready()  # (their roster sync at startup would race too)
        two = serves("two", database_url=fault_postgres_url, slack=slack, zone=zone).start().ready()
        # The burst split across both, each user sent to both at once: the second copy is a replay the other
        # process is storing at that very moment.
        with ThreadPoolExecutor(max_workers=8) as senders:
            sent = [senders.submit(send_batch, port, batches[user], retries=5)
                    for user in users for port in (one.port, two.port)]
            statuses = [future.result(timeout=60) for future in sent]
        assert set(statuses) == {200}
        kick(one.port, slack)
        kick(two.port, slack)
        wait_until(lambda: drained(engine, len(users)), timeout=60, every=0.25,
                   what="every lead alerted and the outbox drained")
        report = check_store_and_slack(engine, slack, users, business_open=business_open)
        assert report["dm_repeats"] == 0
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM events")) == 4 * len(users)
        for serve in (one, two):
            serve.stop()
            log = serve.log()
            assert "Traceback" not in log and " failed" not in log, log[-3000:]
    finally:
        engine.dispose()
    print(f"\nzone {zone} (business open: {business_open}); {report}; {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_an_alert_whose_send_outlasts_the_old_lease_is_posted_once_by_two_serve_processes(
        database_url, slack, serves):
    zone, business_open = team_zone()
    slack.clock = time.time
    engine = make_engine(database_url)
    try:
        migrate(engine)  # once, up front, as two processes starting together would race on it
        one = serves("one", database_url=database_url, slack=slack, zone=zone).start().ready()
        two = serves("two", database_url=database_url, slack=slack, zone=zone).start().ready()
        # The alert's post is on its way to Slack, which has not acted on it yet (a slow network, a long 429
        # slept out by an older pqlbot: from the store, a send that takes longer than any lease).
        reached, release, arrived = threading.Event(), threading.Event(), []

        def slow(call):
            metadata = call.params.get("metadata") or {}
            if call.method == "chat.postMessage" and metadata.get("event_type") == "pql_alert":
                arrived.append(call)
                if not reached.is_set():
                    reached.set()
                    release.wait(30)

        slack.before_acting = slow
        try:
            batch = trial_batch("slow01", now=datetime.now(UTC), run="slow")
            assert send_batch(one.port, batch) == 200
            kick(one.port, slack)
            assert reached.wait(30), "no process posted the alert"
            with engine.begin() as connection:  # twenty minutes on, by the store: the old lease is long over
                connection.execute(sa.update(Notice.__table__).where(Notice.__table__.c.state == "sending")
                                   .values(next_attempt_at=datetime.now(UTC) - timedelta(minutes=20)))
            for _ in range(3):  # both processes run passes meanwhile (the sender's own thread is busy sending)
                kick(one.port, slack)
                kick(two.port, slack)
                time.sleep(0.7)
            assert len(arrived) == 1  # nobody else posted it meanwhile
            # nor even looked for it, to post it (a look-up reads from `oldest`; serve's start-up check that the
            # bot is in the channel reads one message, and is not one)
            assert [c for c in slack.calls_to("conversations.history") if "oldest" in c.params] == []
        finally:
            release.set()
            slack.before_acting = None
        wait_until(lambda: drained(engine, 1), timeout=30, every=0.1, what="the alert recorded")
        check_store_and_slack(engine, slack, ["slow01"], business_open=business_open)
        assert sum(alert_posts(slack).values()) == 1
        for serve in (one, two):
            serve.stop()
            assert "Traceback" not in serve.log(), serve.log()[-3000:]
    finally:
        engine.dispose()
