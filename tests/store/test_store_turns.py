"""SQLite writers in one process take turns in the order they asked (bot/store/turns.py)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from bot.store import make_engine
from bot.store.turns import Turns


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE log (id INTEGER PRIMARY KEY, writer TEXT)")
    yield engine
    engine.dispose()


def write(engine: sa.Engine, writer: str, hold: float = 0.0) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO log (writer) VALUES (?)", (writer,))
        time.sleep(hold)  # a long transaction, e.g. a group of events being scored


def writers(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return [w for (w,) in connection.exec_driver_sql("SELECT writer FROM log ORDER BY id")]


def test_a_writer_is_not_starved_by_a_busy_writer_that_begins_again_at_once(sqlite_engine):
    """The intake under load commits a group and at once begins the next. A single write (an alert marked
    sent, a claim) used to poll for the lock and keep missing it; now each goes right after the current
    transaction."""
    done = threading.Event()

    def busy() -> None:
        while not done.is_set():
            write(sqlite_engine, "busy", hold=0.02)

    hog = threading.Thread(target=busy)
    hog.start()
    try:
        time.sleep(0.05)
        for n in range(10):
            write(sqlite_engine, f"single-{n}")
    finally:
        done.set()
        hog.join(10)
    order = writers(sqlite_engine)
    singles = [i for i, w in enumerate(order) if w.startswith("single")]
    assert len(singles) == 10
    # Between one single write and the next, the busy writer got at most the one turn it was queued for.
    assert max(b - a - 1 for a, b in zip(singles, singles[1:], strict=False)) <= 1


def test_writers_that_queue_behind_a_transaction_write_in_the_order_they_asked(sqlite_engine):
    holding = threading.Thread(target=write, args=(sqlite_engine, "first", 0.3))
    holding.start()
    time.sleep(0.05)
    queued = []
    for name in ("second", "third", "fourth"):
        thread = threading.Thread(target=write, args=(sqlite_engine, name))
        thread.start()
        queued.append(thread)
        time.sleep(0.05)  # each asks after the one before
    for thread in [holding, *queued]:
        thread.join(10)
    assert writers(sqlite_engine) == ["first", "second", "third", "fourth"]


def test_a_writer_first_in_line_waits_for_the_transaction_under_way_not_for_the_writers_queued_behind_it(
        sqlite_engine):
    """Recording a Slack request before its ack: the claims queued after their own acks wait one write longer,
    the person clicking does not wait for each of them."""
    first_in_line = make_engine(str(sqlite_engine.url), first_in_line=True)
    try:
        holding = threading.Thread(target=write, args=(sqlite_engine, "under way", 0.3))
        holding.start()
        time.sleep(0.05)
        queued = []
        for name in ("claim-1", "claim-2"):
            queued.append(threading.Thread(target=write, args=(sqlite_engine, name, 0.1)))
            queued[-1].start()
            time.sleep(0.05)
        urgent = threading.Thread(target=write, args=(first_in_line, "request recorded"))
        urgent.start()
        for thread in [holding, *queued, urgent]:
            thread.join(10)
        assert writers(sqlite_engine) == ["under way", "request recorded", "claim-1", "claim-2"]
    finally:
        first_in_line.dispose()


def test_reading_never_waits_for_a_writers_turn(sqlite_engine):
    entered, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with sqlite_engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO log (writer) VALUES ('slow')")
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=long_write)
    thread.start()
    try:
        assert entered.wait(10)
        started = time.monotonic()
        assert writers(sqlite_engine) == []  # the uncommitted row is not seen, and the read did not wait
        assert time.monotonic() - started < 1
    finally:
        release.set()
        thread.join(10)
    assert writers(sqlite_engine) == ["slow"]


def test_a_failed_write_gives_its_turn_back(sqlite_engine):
    with pytest.raises(sa.exc.OperationalError), sqlite_engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(sa.exc.IntegrityError), sqlite_engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO log (id, writer) VALUES (1, 'a')")
        connection.exec_driver_sql("INSERT INTO log (id, writer) VALUES (1, 'b')")
    finished = threading.Event()
    thread = threading.Thread(target=lambda: (write(sqlite_engine, "after"), finished.set()))
    thread.start()
    assert finished.wait(5), "a later writer waited for a turn nobody gave back"
    thread.join()
    assert writers(sqlite_engine) == ["after"]


def test_a_writer_kept_waiting_past_its_timeout_gets_database_is_locked_and_the_queue_moves_on():
    turns = Turns()
    turns.take(timeout=1)
    outcomes: dict[str, object] = {}

    def wait(name: str, timeout: float) -> None:
        try:
            turns.take(timeout)
            outcomes[name] = "turn"
            turns.give_back()
        except sqlite3.OperationalError as error:
            outcomes[name] = str(error)

    impatient = threading.Thread(target=wait, args=("impatient", 0.05))
    patient = threading.Thread(target=wait, args=("patient", 10))
    impatient.start()
    time.sleep(0.02)
    patient.start()
    impatient.join(5)
    assert "database is locked" in outcomes["impatient"]
    turns.give_back()
    patient.join(5)
    assert outcomes["patient"] == "turn"


def taken_elsewhere(turns: Turns, timeout: float) -> bool:
    """Whether another thread gets the turn within `timeout` (it gives it back at once)."""
    got = []

    def take() -> None:
        try:
            turns.take(timeout)
        except sqlite3.OperationalError:
            return
        got.append(True)
        turns.give_back()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(timeout + 5)
    return bool(got)


def test_the_thread_holding_the_turn_may_take_it_again():
    turns = Turns()
    turns.take(timeout=1)
    turns.take(timeout=1)  # e.g. a second connection in the same thread: no deadlock on the turn
    turns.give_back()
    assert not taken_elsewhere(turns, 0.05)  # still held once
    turns.give_back()
    assert taken_elsewhere(turns, 1)
