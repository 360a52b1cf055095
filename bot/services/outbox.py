"""The outbox: Slack messages pqlbot owes, queued in the same transaction as the change behind them.

Delivery (bot/slack/delivery.py) posts what is due afterwards and retries what failed, so a Slack
outage or a crash loses nothing, and each notice's unique `key` keeps it from being owed twice.
Alerts carry no text here: they are rendered from the store when posted, so they are never stale. The
sweeps' DMs are typed notices: their text, and a `payload` saying what to render (a view and its values),
never Block Kit, which is built from the payload when the notice is delivered.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.store.models import Notice, Pql

_NOTICES = Notice.__table__


def row(*, key: str, kind: str, now: datetime, **fields) -> dict:
    """A pending notice as a row, for callers that insert many at once (the rescore's batches)."""
    return {"key": key, "kind": kind, "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
            **fields}


def alike(rows: list[dict]) -> list[dict]:
    """Rows of different kinds given the same columns (the ones they leave out are None): an insert of many rows
    takes its columns from the first."""
    columns = {column for values in rows for column in values}
    return [{column: values.get(column) for column in columns} for values in rows]


def alert_row(pql_id: int, *, now: datetime) -> dict:
    """The lead's alert in the PQL channel: one per lead, ever."""
    return row(key=f"alert:{pql_id}", kind="alert", pql_id=pql_id, now=now)


def _queue(session: Session, *, key: str, kind: str, now: datetime, **fields) -> bool:
    return _insert(session, row(key=key, kind=kind, now=now, **fields))


def insert_row(session: Session, values: dict) -> bool:
    """Queue a notice made by `row` unless its key is taken (the integrations' notices: bot/services/tracking.py)."""
    return _insert(session, values)


def _insert(session: Session, values: dict) -> bool:
    """Queue it unless its key is taken; True when this call queued it (a sweep lists in a digest only the leads
    whose own notice it queued, so a racing sweep cannot list them twice)."""
    connection = session.connection()
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    inserted = connection.execute(module.insert(_NOTICES).values(**values)
                                  .on_conflict_do_nothing(index_elements=["key"]).returning(_NOTICES.c.id))
    return inserted.first() is not None


def alert(session: Session, pql_id: int, *, now: datetime) -> None:
    """The lead's alert in the PQL channel: one per lead, ever."""
    _insert(session, alert_row(pql_id, now=now))


def reply(session: Session, pql: Pql, key: str, text: str, *, now: datetime, blocks: list | None = None) -> bool:
    """A message in the alert's thread (waits for the alert to be posted)."""
    return _queue(session, key=key, kind="reply", pql_id=pql.id, text=text, blocks=blocks, now=now)


def dm(session: Session, user_id: str, key: str, text: str, *, now: datetime, pql: Pql | None = None,
       blocks: list | None = None, payload: dict | None = None) -> bool:
    """A direct message. `payload` makes it a typed notice: what to render, as data ({"view": "note"}), whose
    Block Kit is built when it is delivered (bot/slack/blocks/notices.py)."""
    return _queue(session, key=key, kind="dm", target=user_id, pql_id=pql.id if pql else None, text=text, blocks=blocks,
           payload=payload, now=now)


def ephemeral(session: Session, channel: str, user_id: str, key: str, text: str, *, now: datetime) -> None:
    """A message only `user_id` sees, in `channel`: a private answer to something they did there, which Slack's rate
    limit kept from being said at once (bot/slack/errors.py)."""
    _queue(session, key=key, kind="ephemeral", target=user_id, channel=channel, text=text, now=now)


def post(session: Session, channel: str, key: str, text: str, *, now: datetime, blocks: list | None = None) -> bool:
    """A message of its own in a channel (weekly review, guardrail alerts, escalation digests)."""
    return _queue(session, key=key, kind="channel", target=channel, text=text, blocks=blocks, now=now)


def folded(session: Session, pql: Pql, user_id: str, key: str, text: str, *, now: datetime,
           payload: dict | None = None) -> bool:
    """A DM said inside another one (a digest): kept as it would have been sent, its key taken so the lead is owed
    it once, but never sent on its own (state "folded": delivery sends pending notices only)."""
    return _insert(session, {**row(key=key, kind="dm", now=now, target=user_id, pql_id=pql.id, text=text,
                                   payload=payload), "state": "folded"})


def review(session: Session, channel: str, week: str, *, now: datetime, key: str | None = None) -> None:
    """The week's review in a channel: rendered (blocks and chart) when posted, once per week (and team: `key`)."""
    _queue(session, key=key or f"weekly-review:{week}", kind="review", target=channel, text=week, now=now)
