"""The scheduled sweeps. Each asks the store "what is due now?" and acts on exactly that, so running
one twice for the same minute, after a restart or in two processes changes nothing: every message it
owes has a unique outbox key, and every state change is a conditional update.

`run_due` runs them all once, in order; `pqlbot tick` and the scheduler both call it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.pipeline import Pipeline
from bot.routing import Router
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Sweeps:
    pipeline: Pipeline
    router: Router
    settings: Settings
    #: (name, function(sweeps, now) -> count of things done), run in this order.
    steps: list[tuple[str, Callable[[Sweeps, datetime], int]]] = field(default_factory=list)

    def run_due(self, now: datetime | None = None) -> dict[str, int]:
        """Every sweep once, as of `now`; one failing sweep is logged and does not stop the others."""
        now = now or self.pipeline.clock()
        done = {}
        for name, step in self.steps or default_steps():
            try:
                done[name] = step(self, now)
            except Exception:  # noqa: BLE001 (a sweep's failure must not stop the next one)
                log.exception("sweep %s failed", name)
                done[name] = -1
        return done


def rescore(sweeps: Sweeps, now: datetime) -> int:
    report = sweeps.pipeline.rescore_if_due(at=now, every_hours=sweeps.settings.rescore_every_hours)
    return 0 if report is None else report.users


def drain_queue(sweeps: Sweeps, now: datetime) -> int:
    with sweeps.pipeline.session() as session, session.begin():
        return len(sweeps.router.drain(session, now=now))


def default_steps() -> list[tuple[str, Callable[[Sweeps, datetime], int]]]:
    from bot import escalations, weekly  # the SLA-clock sweeps, and the Friday review with its triggers

    return [("rescore", rescore), ("queue", drain_queue), *escalations.STEPS, *weekly.STEPS]
