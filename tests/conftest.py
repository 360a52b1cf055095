"""Shared fixtures. Store tests run on SQLite always, and on PostgreSQL too when
PQLBOT_TEST_POSTGRES_URL names a database the tests may wipe (CI sets it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.store import make_engine, migrate

POSTGRES_URL = os.environ.get("PQLBOT_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def pytest_report_header() -> str:
    return f"pqlbot store backends: {', '.join(BACKENDS)}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") and not POSTGRES_URL:
        pytest.exit("CI must test PostgreSQL too: set PQLBOT_TEST_POSTGRES_URL", returncode=3)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated database file, copied for each test: migrating once keeps the suite fast."""
    path = tmp_path_factory.mktemp("template") / "pqlbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_engine():
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    """A migrated, empty store on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "pqlbot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgres_engine")
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path, monkeypatch):
    """DATABASE_URL for a command: a new SQLite file (not even created yet), or the emptied test PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/x.db"
    else:
        engine = request.getfixturevalue("postgres_engine")
        tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database beside PQLBOT_TEST_POSTGRES_URL's, dropped afterwards: a process outside the
    tests' own pool writes to it, and the store fixtures truncate theirs between tests."""
    url = sa.make_url(POSTGRES_URL)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pilot_rules(directory) -> str:  # noqa: ANN001 - a pytest tmp_path
    """The default rules with no account triggers: seed 002's pilot as a team running user leads only would have it
    (for tests whose users share a company without being its account's lead). Returns the file's path."""
    import re

    from scoring import DEFAULT_RULES

    kept, dropped = [], None
    for block in re.split(r"(?m)^(?=\[)", DEFAULT_RULES.read_text(encoding="utf-8")):
        named = re.match(r"\[\[?triggers\.(\w+)", block)
        if named and block.startswith("[triggers.") and 'level = "account"' in block:
            dropped = named.group(1)
            continue
        if named and named.group(1) == dropped:
            continue
        kept.append(block)
    path = directory / "pilot_rules.toml"
    path.write_text("".join(kept), encoding="utf-8")
    return str(path)
