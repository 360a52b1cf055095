"""`pqlbot db upgrade` (migrate the store to the newest schema) and `pqlbot db current` (which schema it has).

Every command that opens the store migrates it first, so `db upgrade` is for doing it ahead of time
(a deploy step) and `db current` for checking.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa

from bot.settings import Settings


def add(db: argparse.ArgumentParser, name: str) -> None:
    db.description = "Manage the store's schema (alembic revisions in bot/store/migrations)."
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("upgrade", help="migrate the store to the newest revision, keeping its data",
                       description="Migrate the store (DATABASE_URL) to the newest schema revision, keeping its data. "
                       "Every command that opens the store does it too; this is for a deploy step.").set_defaults(
        run=run_upgrade)
    actions.add_parser("current", help="show the store's revision and whether it is the newest",
                       description="Show the store's schema revision and whether it is the newest this pqlbot "
                       "knows (it changes nothing).").set_defaults(run=run_current)


def revisions() -> list[str]:
    """Every revision in bot/store/migrations, newest first."""
    from alembic.script import ScriptDirectory

    from bot.store import MIGRATIONS

    return [script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()]


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def run_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError

    from bot.store import make_engine, migrate

    url = settings.database_url
    try:
        engine = make_engine(url)
        try:
            before = current(engine)
            migrate(engine)
            after = current(engine)
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("db", url, exc)
    if before == after:
        print(f"{shown(url)}: already at revision {after} (head)")
    else:
        print(f"{shown(url)}: upgraded from {before or 'an empty database'} to revision {after} (head)")
    return 0


def run_current(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import make_engine

    url, known = settings.database_url, revisions()
    newest = known[0]
    if _missing_sqlite_file(url):
        print(f"{shown(url)}: no database yet (head is {newest}; `pqlbot db upgrade` creates it)")
        return 0
    try:
        engine = make_engine(url)
        try:
            revision = current(engine)
        finally:
            engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        return cannot_open("db", url, exc)
    if revision == newest:
        print(f"{shown(url)}: revision {revision} (head)")
    elif revision is not None and revision not in known:
        print(f"{shown(url)}: revision {revision}, which this pqlbot does not know (head here is {newest}; "
              "was it migrated by a newer version?)")
        return 1
    else:
        print(f"{shown(url)}: revision {revision or 'none (empty database)'}; head is {newest}: "
              "run `pqlbot db upgrade`")
    return 0


def _missing_sqlite_file(url: str) -> bool:
    """True for a SQLite URL whose file does not exist: looking must not create it."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return False
    path = parsed.database
    return parsed.get_backend_name() == "sqlite" and path not in (None, "", ":memory:") and not Path(path).exists()


def cannot_open(command: str, url: str, exc: Exception) -> int:
    """Say why the store could not be opened, in one line (bot/store/health.py's words), and return the exit
    code for it."""
    from bot.store.health import why

    print(f"pqlbot {command}: cannot open the store {shown(url)}: {why(exc)}", file=sys.stderr)
    return 2


def shown(url: str) -> str:
    """A store URL fit to print: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)
