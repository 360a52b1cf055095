"""APScheduler inside `pqlbot serve`. Jobs keep no state of their own: each is a sweep over the store
asking "what is due now?", so a restart, a missed run or a second process changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot.pipeline import Pipeline

log = logging.getLogger(__name__)
CHECK_EVERY_MINUTES = 5


def rescore_sweep(pipeline: Pipeline, every_hours: float) -> None:
    """Rescore everyone when the last full rescore is older than `every_hours` or the rules changed."""
    report = pipeline.rescore_if_due(every_hours=every_hours)
    if report is not None:
        log.info("rescore sweep: %d users, %d verdicts changed, %d new PQLs, %d upgraded",
                 report.users, report.changed, len(report.triggered), len(report.upgraded))


def start(pipeline: Pipeline, *, rescore_every_hours: float) -> BackgroundScheduler:
    """Start the sweeps: once now (a restart catches up at once), then every few minutes."""
    scheduler = BackgroundScheduler(timezone=UTC)
    # coalesce + max_instances=1: late or overlapping runs fold into one.
    scheduler.add_job(rescore_sweep, "interval", minutes=CHECK_EVERY_MINUTES, args=[pipeline, rescore_every_hours],
                      id="rescore", coalesce=True, max_instances=1, next_run_time=datetime.now(UTC))
    scheduler.start()
    return scheduler
