"""Routing a new lead as the store's history grows: `Router.route` time and statements per lead.

    .venv/bin/python bench/routing.py [--history 0,20000,200000] [--reps 10] [--leads 300] [--database-url URL]

For each history size, a fresh store (bench/.data/routing.db, or a PostgreSQL database named pqlbot_bench*,
dropped and created) gets a roster of `--reps` reps and that many past leads, each assigned to a rep at some
moment of the two years before, most of them dispositioned: what a team's store holds after a while. Then
`--leads` new leads are recorded one at a time and each is routed in its own transaction, as ingestion routes
them, on a Tuesday at 11:00 New York time with a cap that never binds (so every lead takes the round-robin
path, the one that counts every rep). Timed: `Router.route` and the commit; counted: the statements it sends.

Target: routing time does not grow with the history (p95 at the largest history within 2x of an empty store's,
and under 20 ms). Nothing here is judged by a test: the routing tests prove the choices, this the cost.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
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
CLOSED_STATES = ("dispositioned", "dispositioned", "dispositioned", "stopped_converted")
TARGET_P95_MS = 20.0


def fill(engine: sa.Engine, reps: list[str], history: int, rng: random.Random) -> None:
    """`history` past leads, users and assignments, written in bulk (not timed)."""
    from bot.store.models import Assignment, Pql, TrialUser

    start = NOW.astimezone(UTC) - timedelta(days=730)
    with engine.begin() as connection:
        for first in range(0, history, 10_000):
            users, pqls, given = [], [], []
            for n in range(first, min(history, first + 10_000)):
                at = start + timedelta(seconds=rng.randrange(730 * 86400 - 86400))
                rep = rng.choice(reps)
                user = f"past{n}"
                users.append({"user_id": user, "email": f"{user}@past{n % 997}.example.com", "status": "qualified",
                              "verdict": {}})
                state = "working" if rng.random() < 0.02 else rng.choice(CLOSED_STATES)
                pqls.append({"id": n + 1, "user_id": user, "trial_started_at": at - timedelta(days=3),
                             "state": state, "tier": rng.choice(TIERS), "score": 6, "signals": [],
                             "qualified_at": at, "created_at": at, "updated_at": at, "rep_id": rep,
                             "assigned_at": at, "version": 1, "posted_version": 1})
                given.append({"pql_id": n + 1, "rep_id": rep, "reason": "round_robin", "by": "system", "at": at})
            connection.execute(sa.insert(TrialUser.__table__), users)
            connection.execute(sa.insert(Pql.__table__), pqls)
            connection.execute(sa.insert(Assignment.__table__), given)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('pqls', 'id'), "
                                       "(SELECT coalesce(max(id), 0) + 1 FROM pqls), false)")
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def measure(url: str, history: int, reps_count: int, leads_count: int) -> tuple[list[float], list[int], dict]:
    from bot import leads
    from bot.business_time import BusinessCalendar
    from bot.routing import Router
    from bot.store import open_store, session
    from bot.store.models import Pql, TrialUser

    engine = open_store(url)
    reps = [f"U0REP{n:02d}" for n in range(reps_count)]
    with session(engine) as s, s.begin():
        leads.sync_roster(s, [(rep, None, None) for rep in reps], now=NOW - timedelta(days=800))
    fill(engine, reps, history, random.Random(history))
    router = Router(BusinessCalendar(NY), cap=leads_count, manager="U0BOSS")
    statements = itertools.count()
    counting = [False]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _count(*_args) -> None:  # noqa: ANN002
        if counting[0]:
            next(statements)

    times, counts, given = [], [], {}
    for n in range(leads_count):
        at = NOW + timedelta(seconds=n)
        with session(engine) as s:
            with s.begin():
                user = TrialUser(user_id=f"new{n}", email=f"new{n}@acme.example", status="qualified", verdict={})
                s.add(user)
                s.flush()
                pql = Pql(user_id=user.user_id, trial_started_at=at - timedelta(days=2), state="qualified",
                          tier=TIERS[n % len(TIERS)], score=6, qualified_at=at, created_at=at, updated_at=at)
                s.add(pql)
            before, counting[0] = next(statements), True
            started = time.perf_counter()
            with s.begin():
                rep = router.route(s, pql, now=at)
            times.append((time.perf_counter() - started) * 1000)
            counting[0] = False
            counts.append(next(statements) - before - 1)
            given[rep] = given.get(rep, 0) + 1
    engine.dispose()
    return times, counts, given


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", default="0,20000,200000", help="past leads, comma-separated sizes")
    parser.add_argument("--reps", type=int, default=10, help="reps on the roster (default %(default)s)")
    parser.add_argument("--leads", type=int, default=300, help="new leads routed per size (default %(default)s)")
    parser.add_argument("--database-url", help="a PostgreSQL URL whose database is named pqlbot_bench*")
    args = parser.parse_args()
    sizes = [int(size) for size in args.history.split(",")]
    store = "postgresql" if args.database_url else "sqlite"
    print(f"routing:           {args.leads} new leads per history size, {args.reps} reps, store {store}; "
          f"Python {sys.version.split()[0]}")
    p95s = {}
    for size in sizes:
        with fresh_store(args.database_url, "routing.db") as url:
            times, counts, given = measure(url, size, args.reps, args.leads)
        p95s[size] = pct(times, 95)
        spread = f"{min(given.values())}-{max(given.values())} per rep" if None not in given else "some queued!"
        print(f"history {size:>8,}: route p50 {pct(times, 50):6.2f} ms, p95 {p95s[size]:6.2f} ms, "
              f"max {max(times):6.2f} ms; {sum(counts) / len(counts):.1f} statements per lead; given {spread}")
    largest, empty = p95s[max(sizes)], p95s[min(sizes)]
    ok = largest < TARGET_P95_MS and largest <= 2 * empty
    print(f"verdict p95 at {max(sizes):,} past leads {largest:.2f} ms vs {empty:.2f} ms at {min(sizes):,} "
          f"(target < {TARGET_P95_MS:.0f} ms and within 2x): {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
