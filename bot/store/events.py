"""Storing product events: validated elsewhere, deduplicated on messageId here, then rescored.

A replayed event or batch changes nothing: the unique messageId is the idempotency key, enforced by
the database (so racing writers are safe) and counted exactly: `Stored` says how many were new, how
many were seen before, and whose events were actually stored.

SQLite, the store a backfill usually meets, is written at the driver level: one `executemany` of
plain tuples (SQLAlchemy's per-row parameter processing costs more than the insert itself).
PostgreSQL takes a call's events as one statement of column arrays: see `_store_postgresql`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain

import orjson
import sqlalchemy as sa

from bot.store.bulk import driver_value
from bot.store.models import EventRecord
from scoring import Event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENTS = EventRecord.__table__
_CHUNK = 2000  # well under SQLite's bound-parameter limit for an IN (...) list
_FETCH = 5_000  # events per round trip from PostgreSQL's cursor
_FEW_USERS = 1_000  # up to this many users (an intake group at most), PostgreSQL reads without a cursor
_ONE_US = timedelta(microseconds=1)
_SAVEPOINT = "pqlbot_store_events"
_FLOAT_EXACT_US = 2**33 * 1_000_000  # see _grouped
# PostgreSQL's reads of events: the JSON as the text it is (parsed once, in _grouped).
_PG_EVENTS = f"SELECT user_id, name, at_us, message_id, props::text FROM {_EVENTS.name}"


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(slots=True)
class Stored:
    """What one call stored: new events, replays skipped, and the users whose verdict may have moved."""

    accepted: int = 0
    duplicates: int = 0
    users: set[str] = field(default_factory=set)
    fresh: set[str] = field(default_factory=set)  # the messageIds really stored, to tell each caller of a group

    def __iadd__(self, other: Stored) -> Stored:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.users |= other.users
        self.fresh |= other.fresh
        return self


def store_events(connection: sa.Connection, events: Sequence[Event], *, now: datetime) -> Stored:
    """Insert the events not seen before (in one transaction owned by the caller)."""
    if connection.dialect.name == "sqlite":
        return _store_sqlite(connection, events, now)
    return _store_postgresql(connection, events, now)


# Arrays in, so a whole call is one statement and one round trip; RETURNING names exactly the rows this
# statement stored, so an id another writer stored a moment ago (committed or not) counts as a duplicate.
# ORDER BY the arrays' own order: ids follow it, and events at the same instant are read back in id order.
# The arrays go in binary (%b): in text, psycopg quotes and escapes every element of an array in Python, and the JSON
# of a million events' properties, each full of quotes, took 11 s of a 32 s `pqlbot ingest --no-score` (py-spy).
_PG_INSERT = (
    f"INSERT INTO {_EVENTS.name} (message_id, user_id, name, at_us, props, received_at) "
    "SELECT m, u, n, a, p::json, %s::timestamptz "
    "FROM unnest(%b::text[], %b::text[], %b::text[], %b::int8[], %b::text[]) WITH ORDINALITY AS e (m, u, n, a, p, o) "
    "ORDER BY o ON CONFLICT (message_id) DO NOTHING RETURNING message_id, user_id"
)


def _store_postgresql(connection: sa.Connection, events: Sequence[Event], now: datetime) -> Stored:
    """One INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT DO NOTHING RETURNING, with the values as
    SQLAlchemy would have written them (props as the engine's orjson text, received_at as an aware time).

    No lookup first: a lookup was a round trip of its own, and it could not see an insert racing it. Through
    `exec_driver_sql`, not the raw connection: no compiling and no per-row processing all the same, but a
    dead connection is still a SQLAlchemy error (503, retry) that invalidates the pool.
    """
    stored = Stored()
    first: dict[str, Event] = {}
    for event in events:  # the same event twice in one call: the first one counts
        first.setdefault(event.message_id, event)
    stored.duplicates = len(events) - len(first)
    if not first:
        return stored
    dumps, epoch, one_us = orjson.dumps, EPOCH, _ONE_US
    unique = first.values()
    arrays = (list(first), [e.user_id for e in unique], [e.name for e in unique],
              [(e.at - epoch) // one_us for e in unique], [dumps(e.props).decode() for e in unique])
    received = driver_value(_EVENTS.c.received_at, connection.dialect)(now)
    rows = connection.exec_driver_sql(_PG_INSERT, (received, *arrays)).all()
    stored.accepted = len(rows)
    stored.duplicates += len(first) - len(rows)
    stored.fresh.update(message_id for message_id, _ in rows)
    stored.users.update(user_id for _, user_id in rows)
    return stored


def _store_sqlite(connection: sa.Connection, events: Sequence[Event], now: datetime) -> Stored:
    """One `executemany` of tuples, as SQLAlchemy would have written them (same text for times and JSON).

    No lookup first: the insert skips what is stored already, and when its row count says it skipped
    anything, it is undone (to a savepoint) and redone without the ids the store holds. A replay pays
    twice; a new batch, the common case, pays once. The counts are exact either way.
    """
    stored = Stored()
    received = driver_value(_EVENTS.c.received_at, connection.dialect)(now)
    dumps, epoch, one_us = orjson.dumps, EPOCH, _ONE_US
    rows = [(message_id, user_id, name, (at - epoch) // one_us, dumps(props).decode(), received)
            for name, user_id, at, message_id, props, _ in events]  # Event's own field order
    if len({row[0] for row in rows}) < len(rows):  # the same event twice in one batch: the first one counts
        seen: set[str] = set()
        rows = [row for row in rows if not (row[0] in seen or seen.add(row[0]))]
        stored.duplicates += len(events) - len(rows)
    if not rows:
        return stored
    db = connection.connection.driver_connection
    insert = (f"INSERT INTO {_EVENTS.name} (message_id, user_id, name, at_us, props, received_at) "
              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING")
    if not db.in_transaction:
        db.execute("BEGIN")  # so that releasing the savepoint below cannot commit; the caller still does
    while rows:
        db.execute(f"SAVEPOINT {_SAVEPOINT}")
        inserted = db.executemany(insert, rows).rowcount
        if inserted == len(rows):
            db.execute(f"RELEASE {_SAVEPOINT}")
            break
        # Some were stored already (a replay, or another writer a moment ago): start again without them.
        db.execute(f"ROLLBACK TO {_SAVEPOINT}")
        db.execute(f"RELEASE {_SAVEPOINT}")
        held = _stored_ids(db, [row[0] for row in rows])
        stored.duplicates += len(held)
        rows = [row for row in rows if row[0] not in held]
    stored.accepted += len(rows)
    stored.users.update(row[1] for row in rows)
    stored.fresh.update(row[0] for row in rows)
    return stored


def _stored_ids(db, ids: list[str]) -> set[str]:  # noqa: ANN001 - a sqlite3 connection
    held: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        held.update(i for (i,) in db.execute(f"SELECT message_id FROM {_EVENTS.name} WHERE message_id IN ({marks})",
                                             chunk))
    return held


#: A slice of the users, by user_id: from the first (inclusive) to the second (exclusive); None leaves that end open.
Span = tuple[str | None, str | None]
EVERYONE: Span = (None, None)


def events_of(connection: sa.Connection, user_ids: Iterable[str] | None = None, *,
              span: Span = EVERYONE) -> Iterable[tuple[str, list[Event]]]:
    """Each user's events in time order, one user at a time (so memory stays flat on a full rescore).

    Everyone's when `user_ids` is None, or everyone's in `span` (how a full rescore is split between
    processes). Events at the same instant come in the order they were stored (the scorer's sort is stable).
    """
    read = _sqlite_rows if connection.dialect.name == "sqlite" else _postgresql_rows
    if user_ids is not None:
        ids = sorted(set(user_ids))
        if read is _postgresql_rows and len(ids) <= _FEW_USERS:
            read = _postgresql_few
        for start in range(0, len(ids), _CHUNK):
            yield from _grouped(read(connection, ids[start : start + _CHUNK]))
        return
    yield from _grouped(read(connection, None, span))


def _span_where(span: Span, mark: str) -> tuple[str, list[str]]:
    """The WHERE clause (or nothing) that keeps `span`'s users, and its parameters."""
    low, high = span
    tests = [test for bound, test in ((low, f"user_id >= {mark}"), (high, f"user_id < {mark}")) if bound is not None]
    return (" WHERE " + " AND ".join(tests) if tests else ""), [bound for bound in span if bound is not None]


def _sqlite_rows(connection: sa.Connection, ids: list[str] | None, span: Span = EVERYONE) -> Iterable[tuple]:
    # A plain cursor: the JSON is parsed once, below, and no Row objects are made for a million events.
    sql = f"SELECT user_id, name, at_us, message_id, props FROM {_EVENTS.name}"
    if ids is not None:
        sql += f" WHERE user_id IN ({', '.join('?' * len(ids))})"
        params = ids
    else:
        where, params = _span_where(span, "?")
        sql += where
    # Walks ix_events_user_time, whose entries end with the rowid: no sort.
    return connection.connection.driver_connection.execute(sql + " ORDER BY user_id, at_us, id", params)


def _postgresql_rows(connection: sa.Connection, ids: list[str] | None, span: Span = EVERYONE) -> Iterable[tuple]:
    return chain.from_iterable(_postgresql_batches(connection, ids, span))  # no generator to resume per row


def _postgresql_few(connection: sa.Connection, ids: list[str]) -> list[tuple]:
    # A live ingest's few users: a plain cursor answers in one round trip, where a server-side cursor takes
    # three (DECLARE, FETCH, CLOSE), and their events are few enough to hold at once. Binary, as below.
    sql = f"{_PG_EVENTS} WHERE user_id = ANY(%b::text[]) ORDER BY user_id, at_us, id"
    with connection.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(sql, (ids,), prepare=False)  # planned for these ids: see bot/store/queries.py's _any_of
        return cursor.fetchall()


def _postgresql_batches(connection: sa.Connection, ids: list[str] | None, span: Span = EVERYONE,
                        ) -> Iterable[list[tuple]]:
    # psycopg's own server-side cursor, so a full rescore holds a batch of events at a time, not a million
    # rows, and makes no SQLAlchemy Row of any. Binary: at_us comes as eight bytes, not digits to parse.
    sql = _PG_EVENTS
    if ids is not None:
        sql += " WHERE user_id = ANY(%b::text[])"  # a backfill's users, in binary: see _PG_INSERT
        params = (ids,)
    else:
        where, params = _span_where(span, "%s")
        sql += where
    with connection.connection.driver_connection.cursor(name="pqlbot_events_of", binary=True) as cursor:
        cursor.execute(sql + " ORDER BY user_id, at_us, id", params)
        yield from _prefetched(cursor, _FETCH)


def _prefetched(cursor, size: int) -> Iterable[list[tuple]]:  # noqa: ANN001 - a psycopg server-side cursor
    """The cursor's rows in batches, the next batch asked for before this one is handed out.

    The server finds a batch (an index walk over the heap: a second or two for a million events) while
    this process scores the one before, on the other core, instead of each waiting for the other. The
    batch in flight holds the connection's lock, so a write in between waits for it: the transaction is
    the same, only its statements interleave. A short first batch (a live ingest's few users) is all
    there is, and starts no thread.
    """
    batch = cursor.fetchmany(size)
    if len(batch) < size:
        yield batch
        return
    with ThreadPoolExecutor(1, thread_name_prefix="pqlbot-events") as ahead:
        while batch:
            coming = ahead.submit(cursor.fetchmany, size)
            yield batch
            batch = coming.result()


def _grouped(rows: Iterable[tuple]) -> Iterable[tuple[str, list[Event]]]:
    # tuple.__new__ is what Event._make does, without a Python frame per event. A time from a float of
    # seconds is half the cost of EPOCH + timedelta, and exact to the microsecond while the float's error
    # stays under half a microsecond: before 2^33 s (the year 2242). Later times take the exact way.
    loads, utc, stamp, new, event = orjson.loads, UTC, datetime.fromtimestamp, tuple.__new__, Event
    exact_until, epoch, delta = _FLOAT_EXACT_US, EPOCH, timedelta
    current, batch = None, []
    for user_id, name, at_us, message_id, props in rows:
        if user_id != current:
            if batch:
                yield current, batch
            current, batch = user_id, []
        at = stamp(at_us / 1e6, utc) if -exact_until < at_us < exact_until else epoch + delta(0, 0, at_us)
        batch.append(new(event, (name, user_id, at, message_id, loads(props), None)))
    if batch:
        yield current, batch
