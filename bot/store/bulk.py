"""Writing many rows in one transaction, at the driver's level: what a full rescore's verdicts, PQLs, audit entries
and alerts go through.

On PostgreSQL a batch of `STAGE_FROM` rows or more is copied (binary COPY) into a temporary table and inserted (or
updated) from there in one statement, ON CONFLICT clause and all: the server plans one statement, not one per row,
and psycopg encodes the values in C, not SQLAlchemy in Python. Below that, or on SQLite, rows go by `executemany`.
"""

from __future__ import annotations

import zlib
from functools import cache

import orjson
import sqlalchemy as sa

# Rows from which PostgreSQL gets them through a temporary table: below, the table costs more than it
# saves (on a 2-core VM, 1 row: 0.5 ms by executemany, 2 ms staged; 5,000 rows: 127 ms against 87 ms).
STAGE_FROM = 200


def driver_value(column: sa.Column, dialect: sa.Dialect):  # noqa: ANN202
    """What SQLAlchemy sends the driver for `column`'s values on `dialect` (e.g. the text of a time on SQLite)."""
    column_type = column.type.dialect_impl(dialect)
    return column_type.bind_processor(dialect) or (lambda value: value)


@cache
def copy_types(table: sa.Table, columns: tuple[str, ...]) -> list[str]:
    """The types psycopg writes `columns` as in a binary COPY. JSON goes as the text it already is (json's
    binary form is its text), so nothing is encoded twice."""
    types = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, sa.TypeDecorator):
            column_type = column_type.impl
        if isinstance(column_type, sa.BigInteger):
            types.append("int8")
        elif isinstance(column_type, sa.Integer):
            types.append("int4")
        elif isinstance(column_type, sa.DateTime) and column_type.timezone:
            types.append("timestamptz")
        elif isinstance(column_type, sa.String | sa.JSON):
            types.append("text")
        else:
            raise TypeError(f"no binary COPY type for {table.name}.{name} ({column_type!r})")
    return types


def as_tuples(table: sa.Table, rows: list[dict]) -> tuple[tuple[str, ...], list[tuple]]:
    """Rows as SQLAlchemy takes them (dicts, all with the same keys) as COPY takes them: tuples, with JSON
    as the text the engine's serializer would have written."""
    columns = tuple(rows[0])
    encoded = [isinstance(table.c[name].type, sa.JSON) for name in columns]
    dumps = orjson.dumps
    return columns, [tuple(dumps(value).decode() if is_json else value
                           for value, is_json in zip(row.values(), encoded, strict=True)) for row in rows]


class BulkWriter:
    """One transaction's bulk writes on `connection` (see the module docstring)."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.quote = connection.dialect.identifier_preparer.quote
        self.staged: set[str] = set()  # the temporary tables made in this transaction

    def stages(self, rows: list) -> bool:
        """Whether `rows` go through a temporary table (PostgreSQL, and enough of them)."""
        return not self.sqlite and len(rows) >= STAGE_FROM

    def insert_staged(self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple], tail: str) -> list[tuple]:
        """INSERT INTO `table` (`columns`) the `rows`, ending with `tail` (ON CONFLICT, RETURNING), through a
        temporary table with those columns and none of the constraints. It goes when the transaction ends,
        however it ends; what it returns, if anything, is returned."""
        names = ", ".join(self.quote(c) for c in columns)
        with self.connection.connection.driver_connection.cursor() as cursor:
            stage = self._stage(cursor, table, columns, rows)
            cursor.execute(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} {tail}", prepare=False)
            return cursor.fetchall() if cursor.description else []

    def update_staged(self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple], sets: str, where: str) -> int:
        """UPDATE `table` from `rows` (`columns` of each) copied into a temporary table: one statement, `sets` its SET
        clause and `where` its condition, both reading the staged row as `s` (e.g. "team = s.team",
        "pqls.id = s.id"). Returns how many rows it changed."""
        with self.connection.connection.driver_connection.cursor() as cursor:
            stage = self._stage(cursor, table, columns, rows)
            cursor.execute(f"UPDATE {table.name} SET {sets} FROM {stage} AS s WHERE {where}", prepare=False)
            return cursor.rowcount

    def _stage(self, cursor, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> str:  # noqa: ANN001
        """The rows copied into this transaction's temporary table for `table`'s `columns` (one per column set: two
        writes of one table with other columns each have their own), emptied first; its name."""
        stage = f"pqlbot_staged_{table.name}_{zlib.crc32(' '.join(columns).encode()):08x}"
        if stage not in self.staged:
            names = ", ".join(self.quote(c) for c in columns)
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
                           f"SELECT {names} FROM {table.name} WITH NO DATA", prepare=False)
            self.staged.add(stage)
        cursor.execute(f"TRUNCATE {stage}", prepare=False)
        self._copy(cursor, stage, table, columns, rows)
        return stage

    def copy_into(self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """COPY the rows straight into `table` (nothing there can conflict with them)."""
        with self.connection.connection.driver_connection.cursor() as cursor:
            self._copy(cursor, table.name, table, columns, rows)

    def append(self, table: sa.Table, rows: list[dict]) -> None:
        """INSERT the rows (dicts by column name) into `table`, where nothing can conflict with them (audit entries,
        assignments): copied straight in when there are enough of them (`stages`), else one SQLAlchemy insert."""
        if rows and self.stages(rows):
            self.copy_into(table, *as_tuples(table, rows))
        elif rows:
            self.connection.execute(sa.insert(table), rows)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        """`sql` (with the driver's own placeholders) for each row, at the driver's level."""
        driver = self.connection.connection.driver_connection
        if self.sqlite:
            driver.executemany(sql, rows)
            return
        with driver.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _copy(self, cursor, into: str, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:  # noqa: ANN001
        names = ", ".join(self.quote(c) for c in columns)
        with cursor.copy(f"COPY {into} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(copy_types(table, columns))
            for row in rows:
                copy.write_row(row)
