"""The store's named questions: several asked at once get the answers each gets alone (bot/store/queries.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from bot.store import tallies
from bot.store.queries import rows_for, rows_for_each

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_questions_asked_together_get_each_its_own_answer_and_the_transaction_goes_on(engine):
    with engine.begin() as connection:
        tallies.write(connection, [("ana", "basis-1", {"n": 1}), ("bo", "basis-2", {"n": 2})])
        connection.execute(sa.text("INSERT INTO identities (alias_key, user_id, at) VALUES ('anonymous:a1', 'ana', "
                                   ":at)"), {"at": NOW})
        identities = "SELECT user_id, alias_key FROM identities"
        asks = [(tallies.READ, ["ana", "bo", "cy"]), (identities, ["ana"]), (tallies.READ, []),
                (tallies.READ, ["nobody"])]
        together = rows_for_each(connection, asks)
        alone = [rows_for(connection, select, ids) for select, ids in asks]
        assert [sorted(rows) for rows in together] == [sorted(rows) for rows in alone]
        assert tallies.read_rows(together[0]) == {"ana": ("basis-1", {"n": 1}), "bo": ("basis-2", {"n": 2})}
        assert together[1] == [("ana", "anonymous:a1")] and together[2] == [] and together[3] == []
        tallies.write(connection, [("cy", "basis-3", {"n": 3})])  # the same transaction, after the questions
    with engine.connect() as connection:
        assert set(tallies.read(connection, ["ana", "bo", "cy"])) == {"ana", "bo", "cy"}


def test_a_look_up_first_asked_of_an_empty_table_reads_by_index_once_the_table_has_grown(engine):
    """A new store's tables start empty and grow fast. A look-up asked often while `identities` held nothing must not
    go on reading the whole table once it holds thousands of rows (PostgreSQL would keep a plan made when that was
    the cheap way: 1.4 s a look-up at 100,000 rows). SQLite plans every statement afresh."""
    if engine.dialect.name != "postgresql":
        return
    identities = "SELECT alias_key, user_id FROM identities"
    scans = sa.text("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'identities'")
    with engine.begin() as connection:
        for _ in range(20):  # psycopg prepares on the fifth run; PostgreSQL weighs a generic plan five runs later
            assert rows_for(connection, identities, ["anonymous:a1", "anonymous:a2"], column="alias_key") == []
        connection.execute(sa.text("INSERT INTO identities (alias_key, user_id, at) SELECT 'anonymous:a' || g, "
                                   "'user-' || g, :at FROM generate_series(1, 20000) AS g"), {"at": NOW})
        before = connection.execute(scans).one()
        for _ in range(5):
            found = rows_for(connection, identities, ["anonymous:a7", "anonymous:a19999", "nobody"], column="alias_key")
            assert sorted(found) == [("anonymous:a19999", "user-19999"), ("anonymous:a7", "user-7")]
        after = connection.execute(scans).one()
    assert after.seq_scan == before.seq_scan, "the grown table was read whole"
    assert after.idx_scan >= before.idx_scan + 5
