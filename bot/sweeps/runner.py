"""Running the scheduled sweeps. Each sweep (one module each in bot/sweeps, listed in order by `default_steps`)
asks the store "what is due now?" and acts on exactly that, so running one twice for the same minute, after a
restart or in two processes changes nothing: every message it owes has a unique outbox key, and every state
change is a conditional update.

`run_due` runs them all once, in order; `pqlbot tick` and the scheduler (bot/sweeps/scheduler.py) both call it.

Two at once: one step runs in one place at a time. On PostgreSQL each step runs while holding a
transaction-scoped advisory lock of its own (`pg_try_advisory_xact_lock`), so when two processes (two
`pqlbot serve`, or serve and a `pqlbot tick`) sweep the same minute, the second skips the steps the first
is running: some work has no key to guard it (the queue drain hands a waiting lead to a rep, and two
drains at once would hand it out twice). A skipped step is reported as 0 and the next minute's sweep
catches up on whatever is still due. On SQLite the lock is a thread lock in this process: a SQLite store
is meant for one process, so run one `pqlbot serve` (or cron `pqlbot tick` without a serve) on it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.sweeps.complaints import complaints_guardrail
from bot.sweeps.escalate import escalate
from bot.sweeps.follow_ups import follow_ups
from bot.sweeps.holds import release_holds
from bot.sweeps.queue import drain_queue
from bot.sweeps.rescore import rescore
from bot.sweeps.review_triggers import review_triggers
from bot.sweeps.slack_requests import forget_old_slack_requests
from bot.sweeps.stale_claims import stale_claims
from bot.sweeps.volume_guardrail import volume_guardrail
from bot.sweeps.wake import wake
from bot.sweeps.weekly_review import weekly_review

log = logging.getLogger(__name__)

#: (name, function(sweeps, now) -> count of things done). The name is the step's lock and its line in reports.
Step = tuple[str, Callable[["Sweeps", datetime], int]]


@dataclass
class Sweeps:
    pipeline: Pipeline
    router: Router
    settings: Settings
    #: The steps to run, in this order; empty for all of them (`default_steps`).
    steps: list[Step] = field(default_factory=list)

    def run_due(self, now: datetime | None = None) -> dict[str, int]:
        """Every sweep once, as of `now`; one failing sweep is logged and does not stop the others."""
        now = now or self.pipeline.clock()
        done = {}
        for name, step in self.steps or default_steps():
            try:
                with exclusive(self.pipeline.engine, name) as mine:
                    if not mine:
                        log.info("sweep %s is running elsewhere; skipped", name)
                        done[name] = 0
                        continue
                    done[name] = step(self, now)
            except Exception:  # noqa: BLE001 (a sweep's failure must not stop the next one)
                log.exception("sweep %s failed", name)
                done[name] = -1
        return done


_LOCAL: dict[tuple[str, str], threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def lock_key(name: str) -> int:
    """The advisory lock id of a sweep step: a stable signed 64-bit number from its name."""
    return int.from_bytes(hashlib.sha256(f"pqlbot-sweep:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: sa.Engine, name: str) -> Iterator[bool]:
    """Whether this caller may run step `name` now (True), held until the block ends; False when someone
    else is running it. See the module docstring."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, connection.begin():  # the lock ends with this transaction
            yield bool(connection.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(lock_key(name)))))
        return
    with _LOCAL_GUARD:
        lock = _LOCAL.setdefault((engine.url.render_as_string(hide_password=True), name), threading.Lock())
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def default_steps(*only: str) -> list[Step]:
    """Every sweep, in the order `run_due` runs them (one module each, beside this one); with names, only
    those, still in this order (tests run a few)."""
    steps: list[Step] = [
        ("rescore", rescore),
        ("wake", wake),  # verdicts that turn with time alone: their leads go to the queue below in the same minute
        # Abandoned checkouts, before the queue (a queued lead let go goes out in the same minute) and before the
        # clocks that a resumed lead runs again.
        ("holds", release_holds),
        ("queue", drain_queue),
        ("escalate", escalate),  # the SLA clock
        ("follow_ups", follow_ups),
        ("stale_claims", stale_claims),
        ("guardrail", volume_guardrail),
        ("complaints", complaints_guardrail),
        ("weekly_review", weekly_review),  # the week's rhythm
        ("review_triggers", review_triggers),
        ("slack_requests", forget_old_slack_requests),
    ]
    if not only:
        return steps
    unknown = set(only) - {name for name, _ in steps}
    if unknown:
        raise KeyError(f"no sweep named {', '.join(sorted(unknown))}")
    return [(name, step) for name, step in steps if name in only]
