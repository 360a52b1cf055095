"""Who is sending: each process that delivers the outbox is a *holder*, with an id of its own and a lock it holds
for as long as it lives. It writes its id on each notice it claims (`notices.holder`), and any process may ask
whether the holder of a notice is gone (`Holder.gone`). A notice is released when, and only when, its holder is
gone: a live sender's claim never runs out, however long its send takes, and a dead sender's claims are free the
moment it dies, because the operating system or the database lets go of a dead process's lock by itself.

- PostgreSQL: a session-level advisory lock on the holder's id, taken on a connection of its own that lives as
  long as the holder. Asking takes the same lock in a transaction (`pg_try_advisory_xact_lock`): it can only be
  had once the holder's session has ended, and it is held until the caller's release of the notices commits.
- SQLite in a file: an exclusive lock (flock) on a file named for the holder in `<database>-holders/`, beside the
  database; asking tries the same lock. SQLite's stores live on one machine, so every process that opens one
  sees these files (`pqlbot serve`, and `pqlbot tick` when someone runs it beside it).
- SQLite in memory: one process, by definition; its live holders are a set in memory.

Within one holder, several threads may deliver at once: the notices it is sending right now are kept in memory,
and a notice it holds but is not sending (its outcome could not be saved) is its own to release (the delivery's
`release_stale`, bot/slack/delivery.py).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

try:
    import fcntl

    def _try_lock(file) -> None:  # noqa: ANN001
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
except ImportError:  # Windows
    import msvcrt

    def _try_lock(file) -> None:  # noqa: ANN001
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)

#: Mixed into PostgreSQL's hash of a holder id, so a holder's lock is not the lock of anything else.
_PG_SEED = 20261215


class Holder:
    """One process's claim on what it sends; see the module docstring. `gone` is per store kind."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self._sending: set[int] = set()
        self._turn = threading.Lock()

    # -- what this holder is sending -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def claiming(self) -> Iterator[set[int]]:
        """The set of notices this holder is sending, under its lock: a claim adds to it here, in the same turn
        as its UPDATE, so releasing the holder's own leftovers never takes a notice claimed a moment ago."""
        with self._turn:
            yield self._sending

    def done(self, notice_id: int) -> None:
        """The notice's outcome is saved (or could not be): it is no longer being sent."""
        with self._turn:
            self._sending.discard(notice_id)

    # -- whether another holder is gone ---------------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether this holder still holds its lock (PostgreSQL: its session may have been cut); it claims
        nothing while it does not."""
        return True

    def gone(self, connection: sa.Connection, holder: str) -> bool:
        """Whether the holder `holder` (another process, or another store handle in this one) has let go of its
        lock, asked on `connection` inside the caller's transaction."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the lock (the process ends, or a test plays a crash)."""


class _InMemory(Holder):
    _live: set[str] = set()
    _live_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        with self._live_lock:
            self._live.add(self.id)

    def gone(self, connection: sa.Connection, holder: str) -> bool:
        with self._live_lock:
            return holder not in self._live

    def close(self) -> None:
        with self._live_lock:
            self._live.discard(self.id)


class _LockFile(Holder):
    def __init__(self, database: Path) -> None:
        super().__init__()
        self.folder = database.with_name(database.name + "-holders")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = (self.folder / f"{self.id}.lock").open("a+b")
        _try_lock(self._file)  # a new file: nobody else holds it
        for left in self.folder.glob("*.lock"):  # the files of holders killed before anyone asked about them
            if left.stem != self.id:
                self.gone(None, left.stem)

    def gone(self, connection: sa.Connection | None, holder: str) -> bool:
        path = self.folder / f"{holder}.lock"
        try:
            probe = path.open("r+b")
        except FileNotFoundError:
            return True  # its holder is gone, and another process has already said so
        with probe:
            try:
                _try_lock(probe)
            except OSError:
                return False  # held: its process lives
        path.unlink(missing_ok=True)
        return True

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            (self.folder / f"{self.id}.lock").unlink(missing_ok=True)


class _AdvisoryLock(Holder):
    def __init__(self, url: sa.URL) -> None:
        super().__init__()
        # A connection of its own, outside the store's pool: the lock lives exactly as long as it does.
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
        self._connection: sa.Connection | None = None
        self._lock_lock = threading.Lock()
        self.alive()

    def alive(self) -> bool:
        with self._lock_lock:
            try:
                if self._connection is not None:
                    self._connection.execute(sa.text("SELECT 1")).scalar()
                    self._connection.commit()
                    return True
            except sa.exc.SQLAlchemyError:
                self._drop()
            try:  # (again) take the lock; a caller asking about us holds it a moment only
                self._connection = self._engine.connect()
                held = self._connection.execute(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:h, :s))"),
                                                {"h": self.id, "s": _PG_SEED}).scalar()
                self._connection.commit()  # the lock is the session's: it outlives this transaction
                if not held:
                    self._drop()
                return bool(held)
            except sa.exc.SQLAlchemyError:
                self._drop()
                return False

    def gone(self, connection: sa.Connection, holder: str) -> bool:
        return bool(connection.execute(sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:h, :s))"),
                                       {"h": holder, "s": _PG_SEED}).scalar())

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        with self._lock_lock:
            if self._connection is not None:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    self._connection.close()
                self._connection = None
        self._engine.dispose()


def new(engine: sa.Engine) -> Holder:
    """A holder for `engine`'s store, its lock taken."""
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine.url)
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return _InMemory()
    return _LockFile(Path(database).resolve())


_HOLDERS: weakref.WeakKeyDictionary[sa.Engine, Holder] = weakref.WeakKeyDictionary()
_HOLDERS_LOCK = threading.Lock()


def of(engine: sa.Engine) -> Holder:
    """This process's holder for `engine`: made on first use, let go of when the engine is (or the process ends)."""
    with _HOLDERS_LOCK:
        holder = _HOLDERS.get(engine)
        if holder is None:
            holder = _HOLDERS[engine] = new(engine)
            weakref.finalize(engine, holder.close)
        return holder
