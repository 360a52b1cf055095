"""The alembic revisions build exactly the models' schema and keep existing data on every upgrade.

Each test gets an empty database: a new SQLite file, and (when PQLBOT_TEST_POSTGRES_URL is set) a
throwaway PostgreSQL database on the same server (the suite's database's name + `_migrations`, so two suites
on one server, each with its own database, never share it), emptied for each test and dropped at the end, so
the suite's own test database is never touched.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from bot.cli import main
from bot.services.pipeline import Pipeline
from bot.store import MIGRATIONS, make_engine, migrate
from bot.store.events import to_us
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.scoring.builders import NY, sarah

SCRIPTS = ScriptDirectory(str(MIGRATIONS))
REVISIONS = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))]  # oldest first
HEAD = SCRIPTS.get_current_head()


@pytest.fixture(scope="session")
def throwaway_postgres_url():
    """A database of its own on the test server, created for this session and dropped after it."""
    server = sa.make_url(POSTGRES_URL)
    throwaway = f"{server.database}_migrations"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {throwaway} WITH (FORCE)"))
        connection.execute(sa.text(f"CREATE DATABASE {throwaway}"))
    yield server.set(database=throwaway).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {throwaway} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    """The URL of an empty database: no tables, no alembic_version."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/migrations.db"
    url = request.getfixturevalue("throwaway_postgres_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def empty_engine(empty_url):
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def revision_of(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_of(engine: sa.Engine) -> dict:
    """Everything the inspector sees, comparable with ==."""
    inspector = sa.inspect(engine)
    schema = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                          for f in inspector.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "uniques": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        }
    return schema


def test_the_revisions_form_one_line_with_a_single_head():
    assert SCRIPTS.get_heads() == [HEAD]
    assert REVISIONS[-1] == HEAD and SCRIPTS.get_revision(REVISIONS[0]).down_revision is None


def test_migrating_an_empty_database_to_head_gives_exactly_the_models_schema(empty_engine):
    migrate(empty_engine)
    assert revision_of(empty_engine) == HEAD
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    tables = set(sa.inspect(empty_engine).get_table_names())
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}


def test_migrating_twice_is_a_no_op(empty_engine):
    migrate(empty_engine)
    before = schema_of(empty_engine)
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        statements.append(statement)

    sa.event.listen(empty_engine, "before_cursor_execute", record)
    try:
        migrate(empty_engine)
    finally:
        sa.event.remove(empty_engine, "before_cursor_execute", record)
    assert statements, "the second migrate should at least read alembic_version"
    changes = [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", s, re.I)]
    assert changes == []
    assert schema_of(empty_engine) == before
    assert revision_of(empty_engine) == HEAD


# -- Upgrading keeps data -----------------------------------------------------------------------------------

SIGNUP = datetime(2026, 11, 2, 14, 5, tzinfo=UTC)
LATER = datetime(2026, 11, 6, 19, 30, 15, 123456, tzinfo=UTC)
PQL = object()  # stands for the id the pqls row was given

#: One row for each table, in foreign-key order, as an operator's store might hold them. Rows go in with
#: plain SQL (only the tables and columns that exist at the revision under test), come back through the
#: models, and must be what went in.
SEED: list[tuple[str, dict]] = [
    ("reps", {"id": "U0REP1", "name": "Ana Ruiz", "timezone": "America/New_York", "on_roster": True,
              "paused": False, "created_at": SIGNUP}),
    ("accounts", {"domain": "acme.com", "company_name": "Acme Corp", "owner_rep_id": "U0REP1"}),
    ("events", {"message_id": "legacy-001", "user_id": "legacy", "name": "signup_complete", "at_us": to_us(SIGNUP),
                "props": {"email": "zoe@acme.com", "company_name": "Acme Corp", "company_size": 800,
                          "first_name": "Zoë"},
                "received_at": SIGNUP}),
    ("events", {"message_id": "legacy-002", "user_id": "legacy", "name": "activation_complete",
                "at_us": to_us(LATER), "props": {"activation_type": "first_query_run"}, "received_at": LATER}),
    ("trial_users", {"user_id": "legacy", "email": "zoe@acme.com", "domain": "acme.com", "company_name": "Acme Corp",
                     "company_size": 800, "first_name": "Zoë", "last_name": None, "title": "Data Engineer",
                     "plan": "trial", "signup_at": SIGNUP, "status": "qualified", "tier": "medium", "score": 6,
                     "verdict": {"status": "qualified", "score": 6, "reasons": []}, "scored_at": LATER}),
    ("pqls", {"user_id": "legacy", "trial_started_at": SIGNUP, "state": "claimed", "tier": "medium", "score": 6,
              "signals": [{"key": "invites", "points": 3}, {"key": "integration", "points": 3}],
              "strongest_signal": "integration", "qualified_at": LATER, "created_at": LATER, "updated_at": LATER,
              "rep_id": "U0REP1", "assigned_at": LATER, "claimed_by": "U0REP1", "claimed_at": LATER,
              "disposition": None, "dispositioned_at": None}),
    ("assignments", {"pql_id": PQL, "rep_id": "U0REP1", "reason": "round_robin", "by": "system", "at": LATER}),
    ("touches", {"pql_id": PQL, "rep_id": "U0REP1", "number": 1, "channel": "email", "email_key": "A",
                 "note": "sent Email 1", "at": LATER}),
    ("dispositions", {"pql_id": PQL, "user_id": "legacy", "rep_id": "U0REP1", "disposition": "Working",
                      "reason": None, "at": LATER}),
    ("audit", {"at": LATER, "actor": "U0REP1", "action": "pql_claimed", "pql_id": PQL, "user_id": "legacy",
               "detail": {"via": "button", "note": "première"}}),
    ("notices", {"key": "esc-2h:legacy", "kind": "dm", "pql_id": PQL, "target": "U0BOSS", "text": "⏰ still unclaimed",
                 "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "⏰ still unclaimed"}}],
                 "payload": {"view": "note"}, "state": "pending", "attempts": 0, "next_attempt_at": LATER,
                 "created_at": LATER}),
    ("sweep_runs", {"name": "rescore", "last_run_at": LATER, "fingerprint": "0" * 64}),
]


def _plain(value: object, dialect: str) -> object:
    """A value as plain SQL takes it: times as text in the backend's own format, JSON as text."""
    if isinstance(value, datetime):
        if dialect == "sqlite":  # what SQLAlchemy writes for a DateTime on SQLite
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def seed(engine: sa.Engine) -> list[tuple[str, dict, dict]]:
    """Insert SEED with plain SQL into whatever tables the database has; (table, key, row) for each row."""
    inspector = sa.inspect(engine)
    present = {t: {c["name"]: c for c in inspector.get_columns(t)} for t in inspector.get_table_names()}
    keys = {t: inspector.get_pk_constraint(t)["constrained_columns"] for t in present}
    inserted, pql_id = [], None
    with engine.begin() as connection:
        dialect = connection.dialect.name
        for table, row in SEED:
            if table not in present or (PQL in row.values() and pql_id is None):
                continue
            columns = present[table]
            generated = keys[table] == ["id"] and "id" not in row
            required = {name for name, c in columns.items()
                        if not c["nullable"] and c.get("default") is None and not (generated and name == "id")}
            missing = required - set(row)
            assert not missing, f"SEED has no value for {table}.{', '.join(sorted(missing))}: add one"
            row = {name: (pql_id if value is PQL else value) for name, value in row.items() if name in columns}
            names = list(row)
            sql = (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
                   + (" RETURNING id" if generated else ""))
            result = connection.execute(sa.text(sql), {n: _plain(v, dialect) for n, v in row.items()})
            key = {"id": result.scalar_one()} if generated else {k: row[k] for k in keys[table]}
            if table == "pqls":
                pql_id = key["id"]
            inserted.append((table, key, row))
    return inserted


@pytest.mark.parametrize("revision", REVISIONS)
def test_upgrading_from_each_revision_to_head_keeps_every_row(revision, empty_engine):
    migrate(empty_engine, revision)
    assert revision_of(empty_engine) == revision
    inserted = seed(empty_engine)
    assert {table for table, _, _ in inserted} >= {"events"}

    migrate(empty_engine)
    assert revision_of(empty_engine) == HEAD
    with empty_engine.connect() as connection:
        for name, key, row in inserted:
            table = SQLModel.metadata.tables[name]
            kept = [c for c in row if c in table.c]  # a column a later revision dropped is gone on purpose
            found = connection.execute(
                sa.select(*(table.c[c] for c in kept)).where(*(table.c[k] == v for k, v in key.items()))
            ).mappings().all()
            assert [dict(r) for r in found] == [{c: row[c] for c in kept}], f"{name} {key}"


@pytest.mark.parametrize("revision", REVISIONS)
def test_an_upgraded_database_still_scores_old_and_new_events(revision, empty_engine):
    migrate(empty_engine, revision)
    seed(empty_engine)
    migrate(empty_engine)
    pipeline = Pipeline(empty_engine, tz=NY)
    done = pipeline.ingest(sarah().events, at=datetime(2026, 11, 9, 23, 0, tzinfo=UTC))
    assert done.stored.accepted == 5 and len(done.rescored.triggered) == 1
    report = pipeline.rescore_all(at=datetime(2026, 11, 9, 23, 0, tzinfo=UTC))
    assert report.users == 2  # the legacy user's old events read back too


@pytest.mark.parametrize("revision", [None, *REVISIONS[:-1]], ids=lambda r: r or "empty")
def test_db_upgrade_brings_an_older_database_to_head(revision, empty_url, monkeypatch, capsys):
    engine = make_engine(empty_url)
    if revision:
        migrate(engine, revision)
        seed(engine)
    monkeypatch.setenv("DATABASE_URL", empty_url)
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from {revision or 'an empty database'} to revision {HEAD} (head)" in out
    assert revision_of(engine) == HEAD
    engine.dispose()


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only: SQLite is one process")
def test_two_processes_migrating_an_empty_postgresql_at_once_both_succeed(tmp_path):
    import threading

    admin = make_engine(POSTGRES_URL)
    name = "pqlbot_migrate_race"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    errors = []

    def start():
        try:
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    try:
        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
