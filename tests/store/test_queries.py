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
