"""Holders (bot/store/holders.py): whether the process that claimed a notice is gone is read from a lock it holds
for its life, on each store. A holder here stands for another process; closing it is that process dying."""

from __future__ import annotations

import sqlalchemy as sa

from bot.store import holders, make_engine


def gone(engine: sa.Engine, asking: holders.Holder, holder: str) -> bool:
    with engine.begin() as connection:
        return asking.gone(connection, holder)


def test_a_holder_is_gone_exactly_when_its_lock_is_let_go_of(engine):
    here = holders.of(engine)
    other_engine = make_engine(engine.url.render_as_string(hide_password=False))
    there = holders.new(other_engine)
    try:
        assert not gone(engine, here, there.id) and not gone(engine, here, there.id)  # asking takes nothing away
        assert not gone(other_engine, there, here.id)
        there.close()
        assert gone(engine, here, there.id)
        assert gone(engine, here, "f" * 32)  # a holder never seen is not holding anything
    finally:
        there.close()
        other_engine.dispose()


def test_on_sqlite_the_lock_files_of_holders_killed_unasked_are_cleared_by_the_next_holder(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pqlbot.db'}")
    try:
        killed = holders.new(engine)
        path = killed.folder / f"{killed.id}.lock"
        killed._file.close()  # the process dies: its lock goes, its file stays
        assert path.exists()
        alive = holders.new(engine)
        assert not path.exists() and (alive.folder / f"{alive.id}.lock").exists()
        alive.close()
    finally:
        engine.dispose()
