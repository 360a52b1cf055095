"""APScheduler inside `pqlbot serve`: one job, every minute, running every sweep once (`Sweeps.run_due`:
rescore when due, the queue, the SLA clock, the week's review). Jobs keep no state of their own: each sweep asks
the store "what is due now?", so a restart, a missed run or a second process changes nothing; two processes
on one PostgreSQL store never run the same sweep at once (an advisory lock per sweep, see bot/sweeps/runner.py).

`pqlbot tick` runs the same `run_due` once, for deployments that use cron instead.
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import utc_now
from bot.sweeps.runner import Sweeps

log = logging.getLogger(__name__)
EVERY_MINUTES = 1


def run_sweeps(sweeps: Sweeps) -> dict[str, int]:
    """Every sweep once, as of now; what they did is logged (a failed sweep is logged by `run_due`)."""
    done = sweeps.run_due()
    busy = {name: count for name, count in done.items() if count}
    if busy:
        log.info("sweeps: %s", ", ".join(f"{name} {'failed' if count < 0 else count}" for name, count in busy.items()))
    return done


def start(sweeps: Sweeps, *, every_minutes: float = EVERY_MINUTES) -> BackgroundScheduler:
    """Run the sweeps once now (a restart catches up at once), then every minute. The rescore check is one
    of the sweeps (it only rescores when RESCORE_EVERY_HOURS have passed or the rules changed), so it runs
    once per minute too, never twice."""
    scheduler = BackgroundScheduler(timezone=UTC)
    # coalesce + max_instances=1: late or overlapping runs fold into one.
    scheduler.add_job(run_sweeps, "interval", minutes=every_minutes, args=[sweeps], id="sweeps", coalesce=True,
                      max_instances=1, next_run_time=utc_now())
    scheduler.start()
    return scheduler
