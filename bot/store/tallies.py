"""Users' running tallies (scoring/tally.py) in the store, and the accounts' group traits.

Tallies are derived data: read before a group of events is added to them, written back after, and dropped
whenever events reach the store without being added (a backfill stored unscored): the next event of such a user
builds them again from the history. On PostgreSQL, two processes adding events to one user's tallies take turns
(`hold`), so neither writes over what the other added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.bulk import BulkWriter
from bot.store.models import Group, TallyRecord, TrialUser
from bot.store.queries import rows_for

TALLIES = TallyRecord.__table__
GROUPS = Group.__table__
_USERS = TrialUser.__table__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hold(connection: sa.Connection, user_ids: Iterable[str]) -> None:
    """Take these users' turns to change their tallies until the transaction ends (PostgreSQL: an advisory lock
    per user, in one order, so two groups cannot deadlock; SQLite has one writer at a time already)."""
    if connection.dialect.name != "postgresql":
        return
    ids = sorted(set(user_ids))
    if ids:
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtextextended(u, 20261203)) FROM unnest(%b::text[]) AS u ORDER BY u",
            (ids,))


#: `read`'s question, for `rows_for` (or `rows_for_each`, asked with others), and `read_rows` its answer.
READ = f"SELECT user_id, basis, CAST(state AS TEXT) FROM {TALLIES.name}"


def read(connection: sa.Connection, user_ids: Iterable[str]) -> dict[str, tuple[str, dict]]:
    """Each user's stored tallies: user -> (basis, state)."""
    return read_rows(rows_for(connection, READ, user_ids))


def read_rows(rows: Iterable[tuple]) -> dict[str, tuple[str, dict]]:
    return {user_id: (basis, orjson.loads(state)) for user_id, basis, state in rows}


def write(connection: sa.Connection, rows: list[tuple[str, str, dict]]) -> None:
    """Upsert (user, basis, state) rows."""
    if not rows:
        return
    bulk = BulkWriter(connection)
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in ("user_id", "basis", "state"))
    tail = f" ON CONFLICT ({quote('user_id')}) DO UPDATE SET basis = excluded.basis, state = excluded.state"
    encoded = [(user, basis, orjson.dumps(state).decode()) for user, basis, state in rows]
    if bulk.stages(encoded):
        bulk.insert_staged(TALLIES, ("user_id", "basis", "state"), encoded, tail)
        return
    mark = "?" if bulk.sqlite else "%s"
    bulk.executemany(f"INSERT INTO {TALLIES.name} ({names}) VALUES ({mark}, {mark}, {mark}){tail}", encoded)


def drop(connection: sa.Connection, user_ids: Collection[str]) -> None:
    """Forget these users' tallies: events reached the store without being added to them. One statement at the
    driver's level whatever the count (as `rows_for` reads): a backfill drops 50,000 users' at every commit."""
    if not user_ids:
        return
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TALLIES.name} WHERE user_id = ANY(%b::text[])", (list(set(user_ids)),),
                           prepare=False)  # planned for these ids: see bot/store/queries.py's _any_of
        return
    # SQLite: none held at all (a first backfill) means nothing to forget, and no id need be sent. The caller's
    # transaction has written already, so no other writer can add one before it commits.
    if driver.execute(f"SELECT 1 FROM {TALLIES.name} LIMIT 1").fetchone() is None:
        return
    ids = list(set(user_ids))
    driver.execute(f"DELETE FROM {TALLIES.name} WHERE user_id IN (SELECT value FROM json_each(?))",
                   (orjson.dumps(ids).decode(),))


def basis(rules_json: str, tz_name: str, version: int) -> str:
    """What tallies are made under: the rules, the time zone and the tallies' own layout."""
    return hashlib.sha256(f"{version}|{tz_name}|{rules_json}".encode()).hexdigest()[:32]


# -- Accounts' group traits ------------------------------------------------------------------------------------

def _traits_out(stored: dict) -> dict[str, tuple[datetime, object]]:
    return {name: (datetime.fromtimestamp(us / 1e6, UTC), value) for name, (value, us) in stored.items()}


def _traits_in(traits: dict[str, tuple[datetime, object]]) -> dict:
    return {name: [value, int((sent - _EPOCH).total_seconds() * 1e6)] for name, (sent, value) in traits.items()}


def read_groups(connection: sa.Connection, group_ids: Iterable[str]) -> dict[str, dict[str, tuple[datetime, object]]]:
    """Each group's traits as the scorer reads them: field -> (when it was sent, value)."""
    select = f"SELECT group_id, CAST(traits AS TEXT) FROM {GROUPS.name}"
    return {group_id: _traits_out(orjson.loads(traits))
            for group_id, traits in rows_for(connection, select, set(group_ids), column="group_id")}


def all_groups(connection: sa.Connection) -> dict[str, dict[str, tuple[datetime, object]]]:
    return {group_id: _traits_out(traits)
            for group_id, traits in connection.execute(sa.select(GROUPS.c.group_id, GROUPS.c.traits))}


def write_groups(connection: sa.Connection, groups: dict[str, dict[str, tuple[datetime, object]]],
                 now: datetime) -> None:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    for group_id, traits in groups.items():
        insert = module.insert(GROUPS).values(group_id=group_id, traits=_traits_in(traits), updated_at=now)
        connection.execute(insert.on_conflict_do_update(index_elements=["group_id"], set_={
            "traits": insert.excluded.traits, "updated_at": insert.excluded.updated_at}))


def members(connection: sa.Connection, group_ids: Iterable[str]) -> set[str]:
    """The users whose latest group call named one of these groups."""
    rows = rows_for(connection, f"SELECT user_id FROM {_USERS.name}", set(group_ids), column="group_id")
    return {user_id for (user_id,) in rows}


class GroupsAsMet(dict):
    """Accounts' group traits, each read from the store the first time a user of it is scored (for a rescore of
    some users; everyone's at once is `all_groups`)."""

    def __init__(self, connection: sa.Connection) -> None:
        super().__init__()
        self.connection = connection

    def get(self, group_id: str, default: object = None) -> object:
        if group_id not in self:
            self[group_id] = read_groups(self.connection, [group_id]).get(group_id)
        return super().get(group_id) or default
