"""SQLite writers in one process take turns in the order they asked, instead of polling for the lock.

Why: SQLite lets one connection write at a time, and a connection that finds the database locked polls for
it with growing sleeps (1 ms up to 100 ms). Under a stream of ingestion the intake commits a group and at
once begins the next, so a waiting writer (the deliverer marking an alert sent, a rep's claim) kept waking
to find the lock taken again: single writes waited up to a second at 1,000 events/s, and alerts fell
behind. Here a connection about to write first takes a turn in a first-come queue shared by the process's
connections to that file, and hands it to the next in line when its transaction ends.

- Only writing takes a turn (pysqlite begins a transaction at the first INSERT/UPDATE/DELETE, and so does
  the lock); reads never wait, as WAL intends.
- A thread that holds the turn may write through a second connection (SQLite itself then decides, as
  before); a writer that waits longer than the connection's timeout gets SQLite's own "database is locked".
- A writer on the path of an answer someone is waiting for (recording a Slack request before its ack) may
  go first in line (`first_in_line`): it still waits for the transaction under way, never for the writers
  queued behind it (claims being run after their ack, the deliverer, the next ingestion group).
- Other processes writing the same file still meet SQLite's locking; PostgreSQL is the store for several.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections import deque

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|BEGIN\s+(IMMEDIATE|EXCLUSIVE))\b",
                    re.IGNORECASE)


class Turns:
    """A first-come, first-served lock, handed straight to the next waiter (no barging), that the thread
    holding it may take again. Waiters `first_in_line` are served before the others, first-come among
    themselves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: deque[tuple[int, threading.Event]] = deque()
        self._waiting: deque[tuple[int, threading.Event]] = deque()
        self._owner: int | None = None
        self._depth = 0

    def take(self, timeout: float, *, first_in_line: bool = False) -> None:
        me = threading.get_ident()
        line = self._first if first_in_line else self._waiting
        with self._lock:
            if self._owner == me or (self._owner is None and not self._first and not self._waiting):
                self._owner, self._depth = me, self._depth + 1
                return
            entry = (me, threading.Event())
            line.append(entry)
        if entry[1].wait(timeout):
            return  # give_back made this thread the owner
        with self._lock:
            if entry[1].is_set():
                return
            line.remove(entry)
        raise sqlite3.OperationalError(f"database is locked (no turn to write within {timeout:g} s)")

    def give_back(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            if line := self._first or self._waiting:
                self._owner, handed = line.popleft()
                self._depth = 1
                handed.set()
            else:
                self._owner = None


_BY_FILE: dict[str, Turns] = {}
_BY_FILE_LOCK = threading.Lock()


def turns_for(path: str) -> Turns:
    key = os.path.realpath(path)
    with _BY_FILE_LOCK:
        return _BY_FILE.setdefault(key, Turns())


class TurnTakingConnection(sqlite3.Connection):
    """What `sqlite3.connect(..., factory=TurnTakingConnection)` returns for a database file."""

    first_in_line = False

    def __init__(self, database: str, *args, timeout: float = 5.0, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(database, *args, timeout=timeout, **kwargs)
        self._turns = turns_for(os.fsdecode(database))
        self._timeout = timeout
        self._holding = False

    def _before(self, sql: object) -> None:
        if not self._holding and isinstance(sql, str) and _WRITE.match(sql):
            self._turns.take(self._timeout, first_in_line=self.first_in_line)
            self._holding = True

    def _after(self) -> None:
        if self._holding and not self.in_transaction:  # a statement that committed itself, or failed to begin
            self._give_back()

    def _give_back(self) -> None:
        if self._holding:
            self._holding = False
            self._turns.give_back()

    def cursor(self, factory: type[sqlite3.Cursor] | None = None) -> sqlite3.Cursor:
        return super().cursor(factory or _Cursor)

    def _run(self, sql: str, run, args: tuple):  # noqa: ANN001, ANN202
        self._before(sql)
        try:
            return run(sql, *args)
        finally:
            self._after()

    def execute(self, sql: str, *args):  # noqa: ANN002, ANN201 - sqlite3's own signature
        return self._run(sql, super().execute, args)

    def executemany(self, sql: str, *args):  # noqa: ANN002, ANN201
        return self._run(sql, super().executemany, args)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._after()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._after()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()


class FirstInLineConnection(TurnTakingConnection):
    """A connection whose writes go before the other writers waiting for a turn (see the module docstring)."""

    first_in_line = True


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, *args):  # noqa: ANN002, ANN201
        return self.connection._run(sql, super().execute, args)

    def executemany(self, sql: str, *args):  # noqa: ANN002, ANN201
        return self.connection._run(sql, super().executemany, args)
