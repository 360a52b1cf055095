"""Forgetting old Slack requests: the records of signed requests past the replay window are deleted.

The heuristic: a record whose `forget_after` has passed goes (bot/store/slack_requests.py); by then Slack's
age check refuses the request anyway. The Slack app's `SignedRequests` (bot/slack/verify.py) records every
request it accepts, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime

from bot.store.slack_requests import forget_expired_requests
from bot.sweeps.common import SweepContext


def forget_old_slack_requests(sweeps: SweepContext, now: datetime) -> int:
    """Delete the expired records; returns how many went."""
    with sweeps.pipeline.engine.begin() as connection:
        return forget_expired_requests(connection, now)
