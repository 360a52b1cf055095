"""Questions the services ask the store often enough to name: written once, shaped so an index answers them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TypeVar

import orjson
import sqlalchemy as sa
from sqlmodel import select

from bot.domain.caps import UNCAPPED_TIERS, cap_day
from bot.domain.lifecycle import OPEN
from bot.store.models import Assignment, Pql, Touch

T = TypeVar("T")


def still_open(state: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """The lead's state is an open one: the same leads as NOT IN (closed states), but written as IN so an index
    on the state seeks the few open leads instead of reading every lead ever closed."""
    return state.in_(sorted(OPEN))


def given_today(rep: str | sa.ColumnElement, *, now: datetime, tz: tzinfo, capped: bool = True,
                uncapped: frozenset[str] = UNCAPPED_TIERS) -> sa.Select:
    """How many leads landed on a rep today, for one rep id or for a column (routing counts the whole roster at
    once): the daily cap's count, or with `capped=False` the fast-lane leads the cap leaves out (`uncapped`
    tiers), which reps still see on their day."""
    start, end = cap_day(now, tz)
    tier = Pql.tier.notin_(sorted(uncapped)) if capped else Pql.tier.in_(sorted(uncapped))
    return select(sa.func.count(sa.distinct(Assignment.pql_id))).select_from(Assignment).join(
        Pql, Pql.id == Assignment.pql_id).where(Assignment.rep_id == rep, Assignment.at >= start,
                                               Assignment.at < end, tier)


def rows_for(connection: sa.Connection, select: str, ids: Iterable[str] | Iterable[int], *, column: str = "user_id",
             numbers: bool = False) -> list[tuple]:
    """`select` (up to and including its FROM) for the rows whose `column` is one of `ids`, run by the driver.

    One statement whatever the count: the ids travel as one parameter (a PostgreSQL array; a JSON array that
    SQLite's json_each unpacks), so its plan is prepared once and cached. An ingest group asks this several
    times on every commit, and SQLAlchemy's expanding IN (a statement rendered per count), its Row objects
    and its type processing cost more than the query itself. Values come as the driver gives them: JSON
    columns as text on SQLite, datetimes as text on SQLite (`utc`). `numbers`: the ids are integers (a lead's id).
    """
    ids = list(ids)
    if not ids:
        return []
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute(_any_of(select, column, "bigint" if numbers else "text"), (ids,), prepare=False)
            return cursor.fetchall()
    return driver.execute(f"{select} WHERE {column} IN (SELECT value FROM json_each(?))",
                          (orjson.dumps(ids).decode(),)).fetchall()


def rows_for_each(connection: sa.Connection, asks: Sequence[tuple[str, Iterable[str]]]) -> list[list[tuple]]:
    """Several `rows_for` (each a `select` and its `user_id`s) at once: on PostgreSQL in one round trip (psycopg's
    pipeline mode: the statements go out together and their answers come back together), elsewhere one after another.
    An ingestion group asks several independent questions of the same users; on PostgreSQL each of them was a round
    trip the writer waited on."""
    if connection.dialect.name != "postgresql":
        return [rows_for(connection, select, ids) for select, ids in asks]
    driver = connection.connection.driver_connection
    with driver.pipeline():
        cursors = []
        for select, ids in asks:
            ids = list(ids)
            cursor = driver.cursor()
            if ids:
                cursor.execute(_any_of(select, "user_id"), (ids,), prepare=False)
            cursors.append((cursor, bool(ids)))
        try:
            return [cursor.fetchall() if asked else [] for cursor, asked in cursors]
        finally:
            for cursor, _ in cursors:
                cursor.close()


def _any_of(select: str, column: str, element: str = "text") -> str:
    """PostgreSQL: `select` for the rows whose `column` is in an array of `element` (text, bigint), the one
    parameter.

    Run with `prepare=False`: planned for each array. psycopg prepares a statement on its fifth run, and PostgreSQL
    then keeps one generic plan for it once that looks no dearer than a fresh one. Made while a table is small (a new
    store's first minute), that plan reads the whole table, and goes on doing so as it grows until autovacuum next
    analyzes it: at 100,000 rows, 1.4 s a look-up of 1,000 ids against 8 ms planned afresh. The array goes in binary
    (%b): in text, psycopg quotes and escapes each element in Python (bot/store/events.py's `_PG_INSERT`)."""
    return f"{select} WHERE {column} = ANY(%b::{element}[])"


def in_chunks(values: Sequence[T], size: int = 2000) -> list[Sequence[T]]:
    """IN lists of a bounded length (SQLite caps the parameters of one statement), in order."""
    return [values[start:start + size] for start in range(0, len(values), size)]


def utc(value: datetime | str) -> datetime:
    """A datetime column's value as `rows_for` gives it (text on SQLite, aware on PostgreSQL), as aware UTC."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def touches_by_user(session: sa.orm.Session) -> dict[str, list[datetime]]:
    """Every rep touch the store holds, as the moments each user was touched (a lead's touches are its user's):
    what a backtest reads as "contacted" (bot/calibration/backtest.py)."""
    found: dict[str, list[datetime]] = {}
    for user_id, at in session.execute(select(Pql.user_id, Touch.at).join(Touch, Touch.pql_id == Pql.id)):
        found.setdefault(user_id, []).append(utc(at))
    return found
