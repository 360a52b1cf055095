"""What a store's history costs the work done per lead and per minute: routing a new lead, rendering its alert,
an idle delivery pass and the minute's sweeps, in a new store and in one holding years of leads.

    .venv/bin/python bench/history.py [--history 2000,20000,200000] [--reps 10] [--leads 300] [--queue 10000]
                                      [--cap 5] [--database-url URL]

For each history size, a fresh store (bench/.data/history.db, or a PostgreSQL database named pqlbot_bench*,
dropped and created) gets a roster of `--reps` reps and that many past leads at 50 a day (10 reps at the cap of
5), so a bigger history reaches further back (20,000 leads: 13 months; 200,000: 11 years) while a week holds
as many leads in every store. Each lead was assigned to a rep and has what working it left behind: 1-3
touches, a disposition, the alert and the assignment DM sent. 100 of them, from the last 10 days, are still
being worked (one touch, no disposition), and `--cap` of those per rep were given this morning: the cap binds (every
rep is at it). `--queue` leads (10,000) wait in the queue, recorded in the last half hour. The team's current work
is the same in every store, only the history grows. Written in bulk, not timed. Then, on a Tuesday at 11:00 New
York time:
- route: `--leads` new leads are recorded one at a time and each is routed in its own transaction, as
  ingestion routes them (`Router.route_all` with the one lead its transaction raised): the capped ones join the
  queue behind the 10,000 (its count read once), the fast lane's go to a rep at once (never capped, round-robin
  over everyone). Timed: `Router.route_all` and the commit; counted: the statements it sends;
- render: each new lead's alert, as the deliverer renders it (`Runtime.render_alert`);
- delivery pass: `deliver_due` with nothing owed (what `serve` runs every 15 s and after each new lead);
- sweeps: each of the minute's sweeps (`Sweeps.run_due`'s steps but the rescore), 5 times.

Target: none of these grows with the history: the median at the largest history within 2x of the one at the
smallest history that has any (a new store's last week is empty, so its review costs nothing), or under
10 ms. Nothing here is judged by a test: the routing and sweep tests prove what is done, this what it costs.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
for _path in (str(BENCH), str(BENCH.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from latency import fresh_store, pct, verdict  # noqa: E402

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 17, 11, 0, tzinfo=NY)  # a Tuesday, business open
TIERS = ("medium", "medium", "medium", "high", "fast_lane")
DISPOSITIONS = ("nurture", "disqualified", "no_response", "sales_accepted")
SMALL_MS = 10.0
PER_DAY = 50  # past leads a day: 10 reps at the cap of 5
OPEN_LEADS = 100  # of the past leads, how many are still being worked (whatever the history's size)
SWEEP_RUNS = 20


def fill(engine: sa.Engine, reps: list[str], history: int, rng: random.Random, *, queue: int = 0,
         cap: int = 0) -> None:
    """`history` past leads with their users, assignments, touches, dispositions and sent notices (`cap` of them per
    rep given this morning), and `queue` leads waiting in the queue."""
    from bot.store.models import Assignment, DispositionRecord, Notice, Pql, Touch, TrialUser

    days = max(30, history // PER_DAY)  # a team's pace, whatever the history: it reaches further back
    start = NOW.astimezone(UTC) - timedelta(days=days)
    with engine.begin() as connection:
        for first in range(0, history, 10_000):
            rows: dict[type, list[dict]] = {model: [] for model in (TrialUser, Pql, Assignment, Touch,
                                                                    DispositionRecord, Notice)}
            for n in range(first, min(history, first + 10_000)):
                working = n < OPEN_LEADS  # the team's current work: recent, and the same in every store
                this_morning = n < cap * len(reps)  # given today, before 11:00: every rep at the cap
                at = (NOW.astimezone(UTC) - timedelta(seconds=rng.randrange(3600, 7200)) if this_morning
                      else NOW.astimezone(UTC) - timedelta(seconds=rng.randrange(10 * 86400)) if working
                      else start + timedelta(seconds=rng.randrange((days - 1) * 86400)))
                rep, user, pql_id = (reps[n % len(reps)] if this_morning else rng.choice(reps)), f"past{n}", n + 1
                rows[TrialUser].append({"user_id": user, "email": f"{user}@past{n % 997}.example.com",
                                        "domain": f"past{n % 997}.example.com", "status": "qualified",
                                        "verdict": {}})
                rows[Pql].append({
                    "id": pql_id, "user_id": user, "trial_started_at": at - timedelta(days=3),
                    "state": "working" if working else "dispositioned",
                    "tier": "medium" if this_morning else rng.choice(TIERS), "score": 6,
                    "signals": [], "qualified_at": at, "created_at": at, "updated_at": at, "rep_id": rep,
                    "assigned_at": at, "claimed_by": rep, "claimed_at": at + timedelta(minutes=20),
                    "disposition": None if working else rng.choice(DISPOSITIONS),
                    "alert_channel": "C0ALERTS", "alert_ts": f"{at.timestamp():.6f}", "version": 4,
                    "posted_version": 4})
                rows[Assignment].append({"pql_id": pql_id, "rep_id": rep, "reason": "round_robin", "by": "system",
                                         "at": at})
                for number in range(1, 2 if working else rng.randint(2, 4)):
                    rows[Touch].append({"pql_id": pql_id, "rep_id": rep, "number": number, "channel": "email",
                                        "replied": False, "at": at + timedelta(days=2 * number - 1)})
                if not working:
                    rows[DispositionRecord].append({"pql_id": pql_id, "user_id": user, "rep_id": rep,
                                                    "disposition": rng.choice(DISPOSITIONS),
                                                    "at": at + timedelta(days=6)})
                for kind, key in (("alert", f"alert:{pql_id}"), ("dm", f"assigned:{pql_id}:{rep}")):
                    rows[Notice].append({"key": key, "kind": kind, "pql_id": pql_id, "target": rep, "state": "sent",
                                         "attempts": 1, "next_attempt_at": at, "channel": "C0ALERTS",
                                         "ts": f"{at.timestamp():.6f}", "created_at": at, "sent_at": at})
            for model, values in rows.items():
                if values:
                    connection.execute(sa.insert(model.__table__), values)
        for first in range(0, queue, 10_000):
            users, waiting = [], []
            for n in range(first, min(queue, first + 10_000)):
                at = NOW.astimezone(UTC) - timedelta(seconds=rng.randrange(1800))  # no escalation due yet
                user = f"queued{n}"
                users.append({"user_id": user, "email": f"{user}@q{n % 997}.example.com",
                              "domain": f"q{n % 997}.example.com", "status": "qualified", "verdict": {}})
                waiting.append({"id": history + n + 1, "user_id": user, "trial_started_at": at - timedelta(days=3),
                                "state": "queued", "tier": rng.choice(("medium", "medium", "high")), "score": 6,
                                "signals": [], "qualified_at": at, "created_at": at, "updated_at": at,
                                "sla_due_at": at + timedelta(days=1), "alert_channel": "C0ALERTS",
                                "alert_ts": f"{at.timestamp():.6f}", "version": 2, "posted_version": 2})
            connection.execute(sa.insert(TrialUser.__table__), users)
            connection.execute(sa.insert(Pql.__table__), waiting)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('pqls', 'id'), "
                                       "(SELECT coalesce(max(id), 0) + 1 FROM pqls), false)")
            connection.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does for a store that grew slowly
    # SQLite: no ANALYZE, as pqlbot never runs one. (With its statistics, SQLite reads `state` as a column of a
    # few values and scans the leads for the few open ones.)


class QuietGateway:
    """Slack for the delivery pass: nothing is owed, so nothing may be sent."""

    def __getattr__(self, name: str):  # noqa: ANN204
        raise AssertionError(f"an idle delivery pass called Slack ({name})")


def timed(work) -> float:  # noqa: ANN001
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def measure(url: str, history: int, reps_count: int, leads_count: int, queue: int = 0,
            cap: int = 5) -> tuple[dict[str, list[float]], list[int], Counter]:
    """({figure: times in ms}, statements per routing, new leads per rep (None: queued))."""
    from bot.services import leads
    from bot.services.pipeline import Pipeline
    from bot.services.routing import Router
    from bot.settings import Settings
    from bot.slack.delivery import deliver_due
    from bot.slack.runtime import Runtime
    from bot.store import open_store, session
    from bot.store.models import Pql, TrialUser
    from bot.sweeps.runner import Sweeps, default_steps

    engine = open_store(url)
    reps = [f"U0REP{n:02d}" for n in range(reps_count)]
    with session(engine) as s, s.begin():
        leads.sync_roster(s, [(rep, None, None) for rep in reps], now=NOW - timedelta(days=800))
    fill(engine, reps, history, random.Random(history), queue=queue, cap=cap)
    settings = Settings(_env_file=None, database_url=url, pql_reps=",".join(reps), pql_manager="U0BOSS",
                        pql_daily_cap=cap, pql_alerts_channel="C0ALERTS")
    router = Router(settings.calendar, cap=cap, manager="U0BOSS")
    pipeline = Pipeline(engine, tz=NY, router=router, clock=lambda: NOW)
    runtime = Runtime(pipeline, settings, gateway=QuietGateway())
    statements, counting = itertools.count(), [False]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _count(*_args) -> None:  # noqa: ANN002
        if counting[0]:
            next(statements)

    figures: dict[str, list[float]] = {"route": [], "render": [], "delivery pass": []}
    statements_per_routing: list[int] = []
    given: Counter = Counter()
    for n in range(leads_count):
        at = NOW + timedelta(seconds=n)
        with session(engine) as s:
            with s.begin():
                user = TrialUser(user_id=f"new{n}", email=f"new{n}@past{n % 997}.example.com",
                                 domain=f"past{n % 997}.example.com", status="qualified", verdict={})
                s.add(user)
                s.flush()
                pql = Pql(user_id=user.user_id, trial_started_at=at - timedelta(days=2), state="qualified",
                          tier=TIERS[n % len(TIERS)], score=6, qualified_at=at, created_at=at, updated_at=at)
                s.add(pql)
            before, counting[0] = next(statements), True
            with s.begin():
                figures["route"].append(timed(lambda: router.route_all(s, [pql.id], now=at)))
            counting[0] = False
            statements_per_routing.append(next(statements) - before - 1)
            given[pql.rep_id] += 1
        with session(engine) as s:
            figures["render"].append(timed(lambda: runtime.render_alert(s, pql.id)))
    with engine.begin() as connection:  # the new leads' alerts and DMs are posted: nothing is owed
        connection.exec_driver_sql("UPDATE notices SET state = 'sent' WHERE state = 'pending'")
        connection.exec_driver_sql("UPDATE pqls SET alert_ts = '1.0', posted_version = version "
                                   "WHERE alert_ts IS NULL OR posted_version < version")
    for _ in range(50):
        figures["delivery pass"].append(timed(lambda: deliver_due(
            engine, runtime.gateway, render_alert=runtime.render_alert, alerts_channel="C0ALERTS", now=NOW)))
    sweeps = Sweeps(pipeline, router, settings)
    for name, step in default_steps():
        if name == "rescore":
            continue  # the backfill's cost: bench/rescore.py
        figures[f"sweep {name}"] = [timed(lambda step=step: step(sweeps, NOW)) for _ in range(SWEEP_RUNS)]
    engine.dispose()
    return figures, statements_per_routing, given


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", default="2000,20000,200000", help="past leads, comma-separated sizes")
    parser.add_argument("--reps", type=int, default=10, help="reps on the roster (default %(default)s)")
    parser.add_argument("--leads", type=int, default=300, help="new leads routed per size (default %(default)s)")
    parser.add_argument("--queue", type=int, default=10_000, help="leads waiting in the queue (default %(default)s)")
    parser.add_argument("--cap", type=int, default=5, help="the daily cap, which every rep has reached (default "
                        "%(default)s)")
    parser.add_argument("--database-url", help="a PostgreSQL URL whose database is named pqlbot_bench*")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.history.split(","))
    store = "postgresql" if args.database_url else "sqlite"
    print(f"history:           {args.leads} new leads per history size, {args.reps} reps at the cap of {args.cap}, "
          f"{args.queue:,} leads in the queue, store {store}; "
          f"Python {sys.version.split()[0]}")
    medians: dict[str, dict[int, float]] = {}
    for size in sizes:
        with fresh_store(args.database_url, "history.db") as url:
            figures, statements, given = measure(url, size, args.reps, args.leads, args.queue, args.cap)
        per_rep = [count for rep, count in given.items() if rep is not None]
        print(f"{size:,} past leads: {sum(statements) / len(statements):.1f} statements per routing; "
              f"given {min(per_rep)}-{max(per_rep)} per rep, {given[None]} queued")
        for name, times in figures.items():
            medians.setdefault(name, {})[size] = pct(times, 50)
            print(f"  {name:<22} p50 {pct(times, 50):8.2f} ms   p95 {pct(times, 95):8.2f} ms   "
                  f"max {max(times):8.2f} ms   ({len(times)} runs)")
    ok, base = True, next((size for size in sizes[:-1] if size > 0), sizes[0])
    for name, by_size in medians.items():
        largest, smallest = by_size[sizes[-1]], by_size[base]
        fine = largest <= max(2 * smallest, SMALL_MS)
        ok &= fine
        print(f"verdict {name:<22} p50 {smallest:8.2f} ms at {base:,} -> {largest:8.2f} ms at {sizes[-1]:,} "
              f"past leads (target: within 2x, or under {SMALL_MS:.0f} ms): {verdict(fine)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
