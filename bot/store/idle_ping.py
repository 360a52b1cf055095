"""A pooled PostgreSQL connection is pinged on checkout only when it has sat idle in the pool a while.

Why: `pool_pre_ping` pays a round trip on every checkout, and the intake writer checks a connection out
for every group of events, dozens of times a second: a twentieth of its time went to `SELECT 1`. A
connection back from the pool a moment ago was alive a moment ago; one that sat idle may have been cut by
a server restart or a firewall since. A fresh connection, just made, is not pinged at all.

A hot connection that died all the same fails on its first statement; SQLAlchemy sees the disconnect,
drops the pool's connections, and the caller gets a store error instead of a transparent reconnect: a
lone ingestion call is answered 503 (the sender retries), a group's calls are retried one by one on
fresh connections.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy import event

IDLE_SECONDS = 2.0
_CHECKED_IN = "pqlbot_checked_in"  # in the record's info, which the pool empties when it reconnects


def ping_when_idle(engine: sa.Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:  # noqa: ANN001
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:  # noqa: ANN001
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # As pool_pre_ping does: one dead connection means the server went away, so every pooled one
            # is dropped, and the pool makes this checkout again on a new connection.
            raise sa.exc.InvalidatePoolError(f"ping after {time.monotonic() - since:.0f} s idle failed") from exc
