"""`pqlbot tick [--at ISO8601]`: run every scheduled sweep once, then deliver the outbox once.

For cron-style deployments (no `pqlbot serve` running the scheduler) and for operators. It does what one
minute of the scheduler does: rescore if due, share out the queue, the SLA-clock escalations; each sweep
asks the store what is due as of `--at`, so running it twice for the same moment changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

import sqlalchemy as sa

from bot.cli.common import moment
from bot.cli.db import cannot_open
from bot.clock import utc_now
from bot.settings import Settings


def add(tick: argparse.ArgumentParser, name: str) -> None:
    tick.description = ("Run the scheduled sweeps once, as of a moment, then post what Slack is owed (when "
                        "SLACK_BOT_TOKEN is set). For cron: running it twice for the same moment changes nothing.")
    tick.add_argument("--at", type=moment, help="as of this time (ISO 8601; default now)")
    tick.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError

    from bot.services.pipeline import for_team
    from bot.store import open_store
    from bot.sweeps.runner import Sweeps

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        engine = open_store(settings.database_url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("tick", settings.database_url, exc)
    at = args.at or utc_now()
    try:
        pipeline = for_team(engine, settings, clock=lambda: at)
        done = Sweeps(pipeline, pipeline.router, settings).run_due(at)
        for name, count in done.items():
            print(f"{name}: {'FAILED (see the log above)' if count < 0 else count}")
        _deliver(pipeline, settings, at)
        _integrations(pipeline, settings, at)
    finally:
        engine.dispose()
    failed = [name for name, count in done.items() if count < 0]
    if failed:
        print(f"pqlbot tick: sweep(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _deliver(pipeline, settings: Settings, at: datetime) -> None:  # noqa: ANN001 (a Pipeline)
    from sqlmodel import select

    from bot.store.models import Notice

    if not settings.slack_bot_token:
        with pipeline.session() as session:
            waiting = session.exec(select(sa.func.count()).select_from(Notice).where(Notice.state == "pending")).one()
        print(f"outbox: Slack is off (SLACK_BOT_TOKEN is not set); {waiting} notice(s) wait")
        return
    from bot.slack.delivery import deliver_due
    from bot.slack.gateway import Gateway
    from bot.slack.runtime import Runtime

    gateway = Gateway.from_settings(settings)
    runtime = Runtime(pipeline, settings, gateway)
    # What the sweeps queued as of `at` is due then; anything older is due now.
    report = deliver_due(pipeline.engine, gateway, render_alert=runtime.render_alert,
                         render_review=runtime.render_review,
                         alerts_channel=settings.pql_alerts_channel, now=max(at, utc_now()))
    print(f"outbox: {report.sent} sent, {report.failed} failed (retried later), "
          f"{report.waiting} waiting for their alert, {report.updated} alert(s) updated")


def _integrations(pipeline, settings: Settings, at: datetime) -> None:  # noqa: ANN001 (a Pipeline)
    """The CRM's and the webhook's changes, when either is configured (bot/integrations/delivery.py)."""
    if not settings.sinks:
        return
    from bot.integrations import senders
    from bot.integrations.delivery import deliver_integrations

    report = deliver_integrations(pipeline.engine, senders(settings), now=max(at, utc_now()),
                                  manager=settings.integrations_manager)
    print(f"integrations: {report.sent} sent, {report.failed} failed (retried later), {report.held} rate-limited, "
          f"{report.gave_up} refused or given up")
