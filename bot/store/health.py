"""Whether the store can be written now: what `/healthz` answers, and what `pqlbot serve` checks before it starts.

Why: ingestion answers 503 when the store cannot take a write (its disk is full, its file system or database
is read-only), while `/healthz` only read (`SELECT 1`) and stayed 200, so a load balancer kept sending traffic
to a server that could store none of it. And `serve` on such a store started anyway, or died with a traceback.

- The probe writes, as ingestion does: it upserts one row of `sweep_runs`, named `healthz` (the last time a
  probe wrote), in a transaction of its own. On SQLite it also reads the free space where the store's file is:
  a small write can still fit in the write-ahead log's pages already on disk while the next group of events
  does not, so below `MIN_FREE_BYTES` the store counts as full.
- A probe writes at most once every `PROBE_EVERY` seconds (`WriteProbe`); between, the last answer is given
  again, so a load balancer polling every second costs one small write every few seconds.
- A probe waits at most `PROBE_WAIT` seconds for its answer. A store busy for longer (SQLite's one writer in a
  long transaction) is not a broken one: the last answer is given again, and the probe's own answer is kept
  for the next check once it comes.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitedTooLong
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql, sqlite

from bot.clock import utc_now
from bot.store import make_engine, migrate
from bot.store.models import SweepRun

log = logging.getLogger(__name__)
#: How often, at most, a probe really writes, in seconds.
PROBE_EVERY = 5.0
#: How long `/healthz` waits for a probe's answer, in seconds: load balancers give a health check a few.
PROBE_WAIT = 2.0
#: The least free space where a SQLite store's file is for it to count as writable. Ingestion writes a group of
#: up to 1,000 events in one transaction: about 450 KiB with 200-byte properties, a few MiB for the biggest
#: calls (1 MiB each, stored with their indexes), and the write-ahead log's checkpoint copies up to 64 MiB of
#: pages into the file. Below this, the next groups may fail while a probe's one row still fits.
MIN_FREE_BYTES = 16 * 1024 * 1024
#: The row of `sweep_runs` a probe writes.
PROBE_ROW = "healthz"
#: PostgreSQL's codes for a read-only transaction and a full disk (SQLSTATE).
_READ_ONLY_CODES, _FULL_CODES = {"25006"}, {"53100"}
#: What SQLite says when the file system stops it opening or writing its files (read-only, or no permission).
_SQLITE_CANNOT = ("unable to open database file", "disk I/O error")

_SWEEP_RUNS = SweepRun.__table__


@dataclass(frozen=True, slots=True)
class Health:
    """`reason` says, in one line, why the store cannot be used now; None when it can."""

    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


class StoreUnusable(Exception):
    """The store cannot be opened or written; `str()` says why, in one line."""


def why(error: BaseException) -> str:
    """What went wrong, in words and in one line: read-only, a full disk, or the driver's first line. Only the
    driver's own message is quoted, never SQLAlchemy's, which would quote the statement."""
    if isinstance(error, StoreUnusable):
        return str(error)
    cause = getattr(error, "orig", None) or error
    said = str(cause).strip().splitlines()
    text = said[0][:200] if said else type(cause).__name__
    lowered = text.lower()
    code = getattr(cause, "sqlstate", None)
    number = getattr(cause, "errno", None)
    if code in _READ_ONLY_CODES or number == errno.EROFS or "readonly" in lowered or "read-only" in lowered:
        return f"it is read-only ({text})"
    if code in _FULL_CODES or number == errno.ENOSPC or "disk is full" in lowered or "no space left" in lowered:
        return f"its disk is full ({text})"
    return text


def _file_system_says(engine: sa.Engine) -> str | None:
    """Why a SQLite store's file cannot be written, read from the file system: read-only, or its disk (nearly)
    full. SQLite itself often says only "unable to open database file" or "disk I/O error" (it could not
    create or grow the write-ahead log's files beside the store)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    path = Path(database).resolve()
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return None
    if stat.f_flag & os.ST_RDONLY:
        return f"it is read-only (the file system holding {path.parent} is mounted read-only)"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"it is read-only (no permission to write {path} or its folder)"
    free = stat.f_bavail * stat.f_frsize
    if free < MIN_FREE_BYTES:
        return (f"its disk is full ({free // 1024} KiB free in {path.parent}, under the "
                f"{MIN_FREE_BYTES // 2**20} MiB ingestion may need)")
    return None


def _explained(engine: sa.Engine, error: BaseException) -> str:
    """`why`, with the file system's reason when SQLite could not open or write its file."""
    said = why(error)
    if said.startswith("it is read-only") or any(words in said for words in _SQLITE_CANNOT):
        return _file_system_says(engine) or said
    return said


def _busy(error: BaseException) -> bool:
    """SQLite's one writer kept this one waiting (bot/store/turns.py): the store works, it is just in use."""
    return "database is locked" in str(getattr(error, "orig", None) or error)


def probe(engine: sa.Engine) -> Health | None:
    """One real write, now (see the module docstring); None when the store was too busy to say."""
    try:
        connection = engine.connect()
    except sa.exc.SQLAlchemyError as error:
        if cannot := _file_system_says(engine):  # a SQLite file opens for writing, even to be read
            return Health(f"the store cannot be written: {cannot}")
        return Health(f"database unreachable ({type(error).__name__}: {why(error)})")
    now = utc_now()
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    try:
        with connection, connection.begin():
            connection.execute(dialect.insert(_SWEEP_RUNS).values(name=PROBE_ROW, last_run_at=now)
                               .on_conflict_do_update(index_elements=["name"], set_={"last_run_at": now}))
    except (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as error:
        if _busy(error):
            return None
        return Health(f"the store cannot be written: {_explained(engine, error)}")
    cannot = _file_system_says(engine)  # the row fitted; would the next group of events?
    return Health(f"the store cannot be written: {cannot}" if cannot else None)


class WriteProbe:
    """`probe`, at most once every `every` seconds, its answer kept between (see the module docstring)."""

    def __init__(self, engine: sa.Engine, *, every: float | None = None, wait: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.clock = engine, clock
        self.every = PROBE_EVERY if every is None else every
        self.wait = PROBE_WAIT if wait is None else wait
        self._lock = threading.Lock()
        self._last, self._at = Health(), float("-inf")
        self._running: Future[Health] | None = None

    def check(self) -> Health:
        with self._lock:
            if self._running is None and self.clock() - self._at >= self.every:
                self._running = Future()
                threading.Thread(target=self._probe, args=(self._running,), name="pqlbot-write-probe",
                                 daemon=True).start()
            running, last = self._running, self._last
        if running is None:
            return last
        try:
            return running.result(timeout=self.wait)
        except WaitedTooLong:
            return last

    def _probe(self, running: Future[Health]) -> None:
        try:
            verdict = probe(self.engine)
        except Exception as error:  # noqa: BLE001 (a health check must answer, whatever the store did)
            verdict = Health(f"the store cannot be written: {why(error)}")
        with self._lock:
            verdict = self._last if verdict is None else verdict
            if verdict != self._last:
                log.log(logging.INFO if verdict.ok else logging.WARNING, "/healthz: %s",
                        "the store can be written again" if verdict.ok else verdict.reason)
            self._last, self._at, self._running = verdict, self.clock(), None
        running.set_result(verdict)


def open_writable(url: str) -> sa.Engine:
    """The store `pqlbot serve` runs on, migrated, once a probe has written to it; StoreUnusable otherwise."""
    try:
        engine = make_engine(url)
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise StoreUnusable(f"the store cannot be opened: {why(error)}") from None
    try:
        migrate(engine)
    except (sa.exc.SQLAlchemyError, OSError, CommandError) as error:
        engine.dispose()
        raise StoreUnusable(f"the store cannot be opened: {_explained(engine, error)}") from None
    verdict = probe(engine)
    if verdict is not None and not verdict.ok:
        engine.dispose()
        raise StoreUnusable(verdict.reason)
    return engine
