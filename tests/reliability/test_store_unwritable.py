"""A store that cannot be written: `/healthz` answers 503 with the reason, as ingestion does, so a load balancer stops
sending traffic; `pqlbot serve` on a store it cannot open or write exits 1 with one line saying why.

A full disk is a small tmpfs filled up, and a read-only store a tmpfs remounted read-only, where this machine lets
the tests mount one (as root); else a read-only store is a file and folder without write permission (which root
ignores: those tests are then skipped, and so is the full disk).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.services.pipeline import Pipeline
from bot.store import open_store
from bot.store.health import MIN_FREE_BYTES, WriteProbe
from bot.web.ingest import create_app
from tests.reliability.conftest import INGEST_TOKEN, PQLBOT, trial_batch
from tests.scoring.builders import NY

BEARER = {"Authorization": f"Bearer {INGEST_TOKEN}"}


class Disk:
    """A folder for a store: a tmpfs of its own when the machine allows mounting one, else a plain folder."""

    def __init__(self, path: Path, size_mib: int) -> None:
        self.path = path
        path.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
                                 capture_output=True, check=False)
        self.mounted = mounted.returncode == 0
        self._locked: list[tuple[Path, int]] = []

    @property
    def store(self) -> str:
        return f"sqlite:///{self.path / 'pqlbot.db'}"

    def read_only(self, read_only: bool = True) -> None:
        """The file system remounted read-only (or writable again); without a tmpfs, the folder and its files
        without write permission. Every connection to the store must be closed first (a file open for writing
        keeps a file system from being remounted read-only)."""
        if self.mounted:
            subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(self.path)], check=True)
        elif read_only:
            if os.geteuid() == 0:
                pytest.skip("root writes whatever the permissions say, and this machine does not allow a tmpfs")
            for path in [*self.path.iterdir(), self.path]:
                self._locked.append((path, path.stat().st_mode))
                path.chmod(0o555 if path.is_dir() else 0o444)
        else:
            self.unlock()

    def unlock(self) -> None:
        while self._locked:
            path, mode = self._locked.pop()
            path.chmod(mode)

    def fill(self) -> Path:
        """Fills the disk to the last byte; returns the file that does it."""
        if not self.mounted:
            pytest.skip("a full disk needs a small tmpfs (mount -t tmpfs), which this machine does not allow")
        filler = self.path / "filler"
        # Unbuffered: a buffered file keeps the bytes the last short write left and fails again when closed.
        with filler.open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
            except OSError:
                pass
        return filler

    def remove(self) -> None:
        self.unlock()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def disk(tmp_path) -> Iterator[Disk]:
    made = Disk(tmp_path / "disk", size_mib=MIN_FREE_BYTES // 2**20 + 48)
    yield made
    made.remove()


def health_of(engine: sa.Engine) -> TestClient:
    """The ingestion app on `engine`, whose write probe writes on every check (no interval to wait out)."""
    pipeline = Pipeline(engine, tz=NY)
    return TestClient(create_app(pipeline, INGEST_TOKEN, health=WriteProbe(engine, every=0)))


def a_batch() -> dict:
    return trial_batch("dana", now=datetime.now(UTC), run=f"unwritable-{datetime.now(UTC).timestamp()}")


# /healthz ------------------------------------------------------------------------------------------------------

def test_healthz_answers_503_naming_a_read_only_store_and_200_again_once_it_can_be_written(disk):
    """Before: /healthz read `SELECT 1` and stayed 200 while ingestion answered 503."""
    engine = open_store(disk.store)
    client = health_of(engine)
    try:
        assert client.get("/healthz").status_code == 200
        engine.dispose()
        disk.read_only()
        response = client.get("/healthz")
        assert response.status_code == 503, response.text
        assert response.json()["status"] == "unavailable"
        assert "cannot be written" in response.json()["reason"] and "read-only" in response.json()["reason"]
        assert client.post("/v1/batch", json=a_batch(), headers=BEARER).status_code == 503  # as ingestion says
        engine.dispose()
        disk.read_only(False)
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.post("/v1/batch", json=a_batch(), headers=BEARER).status_code == 200
    finally:
        engine.dispose()


def test_healthz_answers_503_naming_a_full_disk_and_200_again_once_space_is_freed(disk):
    engine = open_store(disk.store)
    client = health_of(engine)
    try:
        assert client.get("/healthz").status_code == 200
        filler = disk.fill()
        response = client.get("/healthz")
        assert response.status_code == 503, response.text
        assert "cannot be written" in response.json()["reason"] and "disk is full" in response.json()["reason"]
        assert client.post("/v1/batch", json=a_batch(), headers=BEARER).status_code == 503  # as ingestion says
        filler.unlink()
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.post("/v1/batch", json=a_batch(), headers=BEARER).status_code == 200
    finally:
        engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_healthz_writes_to_the_store_at_most_once_per_interval_and_repeats_its_answer_between(engine):
    """A load balancer polling every second costs one small write every PROBE_EVERY seconds, not one a poll."""
    writes = []

    @sa.event.listens_for(engine, "after_cursor_execute")
    def count(conn, cursor, statement, *_):  # noqa: ANN001, ANN002
        if "sweep_runs" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    clock = Clock()
    client = TestClient(create_app(Pipeline(engine, tz=NY), INGEST_TOKEN, health=WriteProbe(engine, every=5,
                                                                                             clock=clock)))
    try:
        for _ in range(20):
            assert client.get("/healthz").json() == {"status": "ok"}
            clock.now += 0.2
        assert len(writes) == 1
        clock.now += 1.1
        assert client.get("/healthz").status_code == 200
        assert len(writes) == 2
    finally:
        sa.event.remove(engine, "after_cursor_execute", count)


def test_healthz_answers_503_when_the_postgresql_database_is_read_only(fault_postgres_url):
    engine = open_store(fault_postgres_url)
    name = engine.url.database
    admin = sa.create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    client = health_of(engine)
    try:
        assert client.get("/healthz").status_code == 200
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        engine.dispose()  # the setting holds for sessions begun after it
        response = client.get("/healthz")
        assert response.status_code == 503, response.text
        assert "cannot be written" in response.json()["reason"] and "read-only" in response.json()["reason"]
        assert client.post("/v1/batch", json=a_batch(), headers=BEARER).status_code == 503  # as ingestion says
        assert one_line_from_serve(fault_postgres_url, "read-only")
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        engine.dispose()
        assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        engine.dispose()
        admin.dispose()


# `pqlbot serve` at start ----------------------------------------------------------------------------------------

def one_line_from_serve(database_url: str, *words: str) -> str:
    """Runs `pqlbot serve` on the store; it must exit 1 having written one line, naming the store and `words`."""
    if not PQLBOT.exists():
        pytest.skip(f"{PQLBOT} is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PQL_", "SLACK_", "DATABASE_URL", "INGEST"))}
    env |= {"DATABASE_URL": database_url, "INGEST_TOKEN": INGEST_TOKEN}
    done = subprocess.run([str(PQLBOT), "serve", "--host", "127.0.0.1", "--port", "1"], env=env, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)
    said = (done.stdout + done.stderr).strip().splitlines()
    assert (done.returncode, len(said)) == (1, 1), done.stdout + done.stderr
    [line] = said
    shown = sa.make_url(database_url).render_as_string(hide_password=True)
    assert line.startswith(f"pqlbot serve: {shown}: ") and all(word in line for word in words), line
    return line


def test_serve_on_a_read_only_store_exits_1_with_one_line_saying_so(disk):
    """Before: it started, or died with a traceback from the first write."""
    open_store(disk.store).dispose()
    disk.read_only()
    one_line_from_serve(disk.store, "read-only")


def test_serve_on_a_full_disk_exits_1_with_one_line_saying_so(disk):
    open_store(disk.store).dispose()
    disk.fill()
    one_line_from_serve(disk.store, "disk is full")


@pytest.mark.parametrize("store", ["not a database", "inside a file", "postgresql nobody listens to"])
def test_serve_on_a_store_it_cannot_open_exits_1_with_one_line_saying_why(tmp_path, store):
    if store == "not a database":
        (tmp_path / "junk.db").write_bytes(b"these bytes are no SQLite database" * 100)
        one_line_from_serve(f"sqlite:///{tmp_path / 'junk.db'}", "cannot be opened", "not a database")
    elif store == "inside a file":
        (tmp_path / "a-file").write_text("")
        one_line_from_serve(f"sqlite:///{tmp_path / 'a-file' / 'pqlbot.db'}", "cannot be opened")
    else:
        line = one_line_from_serve("postgresql+psycopg://pqlbot:s3cret@127.0.0.1:1/pqlbot", "cannot be opened")
        assert "s3cret" not in line

