"""The store: one SQLAlchemy engine (SQLite by default, PostgreSQL via DATABASE_URL), migrated by alembic."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import Session

from bot.store.idle_ping import ping_when_idle
from bot.store.turns import FirstInLineConnection, TurnTakingConnection

MIGRATIONS = Path(__file__).parent / "migrations"
#: What every SQLite connection runs first (`make_engine`'s connect hook). A module constant so that a bench's
#: bare sqlite3 ceiling (bench/ingest.py) runs under exactly the store's settings.
SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # WAL keeps this crash-safe for committed work
    "PRAGMA foreign_keys=ON",
    # Room for a big store's hot pages (indexes, mostly): a cap, taken only as pages are read. With
    # SQLite's 2 MiB default, a backfill spends most of its time writing evicted pages and reading
    # them back. Checkpoints every 64 MiB of WAL instead of 4 MiB: a 50,000-event commit dirties
    # more than 4 MiB, and each checkpoint copies those pages into the database again.
    "PRAGMA cache_size=-262144",  # KiB: 256 MiB
    "PRAGMA wal_autocheckpoint=16384",  # pages of 4 KiB
)


def store_errors(engine: sa.Engine) -> tuple[type[Exception], ...]:
    """What a failing store raises: SQLAlchemy's errors, and its driver's own from the fast paths that talk to
    the driver directly (bot/store/events.py, bot/store/bulk.py). Whoever answers a caller turns these into
    "retry"."""
    return (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, timeout: float = 30.0, first_in_line: bool = False) -> sa.Engine:
    """An engine tuned per backend: SQLite in WAL with foreign keys; PostgreSQL with a health-checked pool.
    SQLite only: `timeout` is how long, in seconds, a connection waits for its turn to write; `first_in_line`
    puts its writes before the other writers waiting for one (bot/store/turns.py)."""
    # hide_parameters: a failed statement's values (emails, notes) stay out of exception text and logs.
    kwargs: dict = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads, "hide_parameters": True}
    if url.startswith("sqlite"):
        if url not in ("sqlite://", "sqlite:///:memory:"):
            path = sa.make_url(url).database
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": timeout}
        if sa.make_url(url).database not in (None, "", ":memory:"):
            # Writers take turns: see turns.py.
            kwargs["connect_args"]["factory"] = FirstInLineConnection if first_in_line else TurnTakingConnection
        engine = sa.create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        return engine
    # Fail fast when the server is away, so health checks and ingestion answer 503 instead of hanging.
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, **kwargs)
    ping_when_idle(engine)  # pool_pre_ping's check, without its round trip on every checkout of a busy pool
    return engine


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; existing data is kept (that is what the revisions are for)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying and dropping it, which enforced foreign keys forbid.
            # The pragma only takes effect outside a transaction, hence the commits around it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        with connection.begin():
            if not sqlite:
                # Two processes starting together must not both migrate: the second waits, then finds
                # nothing to do. (A transaction-level lock, released with the migration's commit.)
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            command.upgrade(config, revision)
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            if broken:
                raise RuntimeError(f"migration left {len(broken)} rows with broken foreign keys")


def open_store(url: str) -> sa.Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


def session(engine: sa.Engine) -> Session:
    return Session(engine, expire_on_commit=False)
