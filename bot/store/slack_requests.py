"""The store's record of signed Slack requests already served (`slack_requests_seen`), so a replay is refused by
every process on the store: what is recorded, and when a record may go."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.store.models import SlackRequestSeen

SEEN = SlackRequestSeen.__table__


def forget_expired_requests(connection: sa.Connection, now: datetime) -> int:
    """Delete the request records whose time is past (the age check refuses those requests anyway)."""
    return connection.execute(sa.delete(SEEN).where(SEEN.c.forget_after < now)).rowcount
