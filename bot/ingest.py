"""Storing product events: validated elsewhere, deduplicated on messageId here, then rescored.

A replayed event or batch changes nothing: the unique messageId is the idempotency key, checked
before the insert (to count duplicates) and enforced by the database (so racing writers are safe).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import EventRecord
from scoring import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENTS = EventRecord.__table__
_CHUNK = 2000  # well under SQLite's bound-parameter limit for the IN (...) check


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass(slots=True)
class Stored:
    """What one call stored: new events, replays skipped, and the users whose verdict may have moved."""

    accepted: int = 0
    duplicates: int = 0
    users: set[str] = field(default_factory=set)

    def __iadd__(self, other: Stored) -> Stored:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.users |= other.users
        return self


def _insert(dialect: str, table: sa.Table) -> sa.Insert:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def store_events(connection: sa.Connection, events: Sequence[Event], *, now: datetime) -> Stored:
    """Insert the events not seen before (in one transaction owned by the caller)."""
    stored = Stored()
    dialect = connection.dialect.name
    for start in range(0, len(events), _CHUNK):
        chunk = events[start : start + _CHUNK]
        ids = [e.message_id for e in chunk]
        seen = set(connection.scalars(sa.select(_EVENTS.c.message_id).where(_EVENTS.c.message_id.in_(ids))))
        rows = []
        for event in chunk:
            if event.message_id in seen:
                stored.duplicates += 1
                continue
            seen.add(event.message_id)
            rows.append({
                "message_id": event.message_id,
                "user_id": event.user_id,
                "name": event.name,
                "at_us": to_us(event.at),
                "props": event.props,
                "received_at": now,
            })
            stored.users.add(event.user_id)
        if rows:
            insert = _insert(dialect, _EVENTS).on_conflict_do_nothing(index_elements=["message_id"])
            connection.execute(insert, rows)
            stored.accepted += len(rows)
    return stored


def events_of(connection: sa.Connection, user_ids: Iterable[str] | None = None) -> Iterable[tuple[str, list[Event]]]:
    """Each user's events in time order, one user at a time (so memory stays flat on a full rescore)."""
    query = sa.select(_EVENTS.c.user_id, _EVENTS.c.name, _EVENTS.c.at_us, _EVENTS.c.message_id, _EVENTS.c.props)
    if user_ids is not None:
        ids = sorted(set(user_ids))
        for start in range(0, len(ids), _CHUNK):
            yield from _grouped(connection, query.where(_EVENTS.c.user_id.in_(ids[start : start + _CHUNK])))
        return
    yield from _grouped(connection, query)


def _grouped(connection: sa.Connection, query: sa.Select) -> Iterable[tuple[str, list[Event]]]:
    # Streamed, so a full rescore holds one user's events at a time, not a million rows.
    rows = connection.execute(
        query.order_by(_EVENTS.c.user_id, _EVENTS.c.at_us, _EVENTS.c.message_id),
        execution_options={"stream_results": True, "yield_per": 20_000},
    )
    current, batch = None, []
    for user_id, name, at_us, message_id, props in rows:
        if user_id != current:
            if batch:
                yield current, batch
            current, batch = user_id, []
        batch.append(Event(name, user_id, from_us(at_us), message_id, props))
    if batch:
        yield current, batch
