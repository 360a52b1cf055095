"""Calls that arrive together are stored and scored together, yet each caller hears about its own events."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.services.pipeline import Pipeline
from bot.web.ingest import create_app
from bot.web.intake import Intake
from scoring import parse_event
from tests.web.test_http import BEARER, TOKEN, activity, count, make_pipeline, signup


class HeldPipeline(Pipeline):
    """A pipeline whose first ingest waits for `release`, so that the calls behind it queue up as one group;
    it records the size of each group it was given."""

    def __init__(self, engine: sa.Engine, **kwargs) -> None:
        super().__init__(engine, **kwargs)
        self.entered, self.release = threading.Event(), threading.Event()
        self.groups: list[int] = []

    def ingest(self, events, **kwargs):
        self.groups.append(len(events))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return super().ingest(events, **kwargs)


def held(engine: sa.Engine) -> HeldPipeline:
    base = make_pipeline(engine)
    return HeldPipeline(engine, tz=base.tz, clock=base.clock)


def events(pipeline: Pipeline, *calls: dict) -> list:
    return [parse_event(call, pipeline.rules) for call in calls]


def queue_behind_a_held_call(intake: Intake, pipeline: HeldPipeline, calls: list[list]) -> list:
    """Submits a first call that holds the writer, then `calls`, which wait together; releases them."""
    first = intake.submit(events(pipeline, signup("first-in-line")))
    assert pipeline.entered.wait(10)
    futures = [intake.submit(call) for call in calls]
    pipeline.release.set()
    assert first.result(10).accepted == 1
    return [future.result(10) for future in futures]


def test_calls_waiting_together_are_written_in_one_transaction_and_each_gets_its_own_counts(engine):
    pipeline = held(engine)
    intake = Intake(pipeline)
    replayed = signup("bo")
    outcomes = queue_behind_a_held_call(intake, pipeline, [
        events(pipeline, signup("ana")),
        events(pipeline, replayed),
        events(pipeline, replayed),  # the same messageId twice in one group: the first call stores it
        events(pipeline, signup("cy"), signup("dee")),
    ])
    assert pipeline.groups == [1, 5]
    assert [(o.accepted, o.duplicates) for o in outcomes] == [(1, 0), (1, 0), (0, 1), (2, 0)]
    assert count(engine, "events") == 5


def test_a_pql_two_calls_of_one_group_complete_is_named_once_to_the_call_that_completed_it(engine):
    pipeline = held(engine)
    intake = Intake(pipeline)
    first_steps = events(pipeline, signup("dana"), *activity("dana")[:2])  # 4 points: not yet qualified
    last_step = events(pipeline, activity("dana")[2])  # the integration: 6 points
    other = events(pipeline, signup("eli"))
    outcomes = queue_behind_a_held_call(intake, pipeline, [first_steps, last_step, other])
    assert pipeline.groups == [1, 5]
    assert outcomes[0].pqls == []
    assert len(outcomes[1].pqls) == 1
    assert outcomes[2].pqls == []
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT id FROM pqls WHERE user_id = 'dana'")) == outcomes[1].pqls[0]


class FailingFor(Pipeline):
    """The store refuses any ingest that holds `poison`'s events (as it would a row it cannot keep)."""

    poison = "poisoned"

    def ingest(self, events, **kwargs):
        if any(event.user_id == self.poison for event in events):
            raise sa.exc.OperationalError("INSERT ...", {}, Exception("refused"))
        return super().ingest(events, **kwargs)


def test_a_call_the_store_refuses_fails_alone_and_the_rest_of_its_group_is_stored(engine):
    base = make_pipeline(engine)
    pipeline = FailingFor(engine, tz=base.tz, clock=base.clock)
    gate = threading.Event()
    original = pipeline.ingest

    def slow_first(events, **kwargs):
        gate.wait(10)  # the first group waits, so the three calls below queue as one group
        return original(events, **kwargs)

    pipeline.ingest = slow_first
    intake = Intake(pipeline)
    first = intake.submit(events(pipeline, signup("first-in-line")))
    time.sleep(0.05)
    good = intake.submit(events(pipeline, signup("gil")))
    bad = intake.submit(events(pipeline, signup(FailingFor.poison)))
    also_good = intake.submit(events(pipeline, signup("hal")))
    gate.set()
    assert first.result(10).accepted == 1
    assert good.result(10).accepted == 1
    assert also_good.result(10).accepted == 1
    with pytest.raises(sa.exc.OperationalError):
        bad.result(10)
    with engine.connect() as connection:
        users = set(connection.scalars(sa.text("SELECT DISTINCT user_id FROM events")))
    assert users == {"first-in-line", "gil", "hal"}


def test_the_writer_thread_ends_when_idle_and_the_next_call_starts_another(engine):
    pipeline = make_pipeline(engine)
    intake = Intake(pipeline, idle_seconds=0.05)
    assert intake.submit(events(pipeline, signup("ivy"))).result(10).accepted == 1
    deadline = time.monotonic() + 5
    while intake.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not intake.running
    assert intake.submit(events(pipeline, signup("jo"))).result(10).accepted == 1
    assert count(engine, "events") == 2


def test_under_a_stream_calls_arriving_within_the_gathering_wait_are_stored_as_one_group(engine):
    pipeline = held(engine)
    intake = Intake(pipeline, gather_seconds=1.0)
    first = intake.submit(events(pipeline, signup("first-in-line")))
    assert pipeline.entered.wait(10)
    during = intake.submit(events(pipeline, signup("al")))  # arrives while the writer is busy: a stream
    pipeline.release.set()
    assert first.result(10).accepted == 1
    time.sleep(0.1)  # well inside the wait: the writer is gathering
    later = [intake.submit(events(pipeline, signup(name))) for name in ("bo", "cy")]
    assert [future.result(10).accepted for future in (during, *later)] == [1, 1, 1]
    assert pipeline.groups == [1, 3]  # without the wait: [1, 1, 2] or [1, 1, 1, 1]


def test_a_call_reaching_a_quiet_writer_is_stored_at_once_not_held_for_the_gathering_wait(engine):
    pipeline = make_pipeline(engine)
    intake = Intake(pipeline, gather_seconds=5.0)
    for name in ("al", "bo"):  # the first starts the writer; the second finds it idle after serving one
        started = time.monotonic()
        assert intake.submit(events(pipeline, signup(name))).result(10).accepted == 1
        assert time.monotonic() - started < 2.5, "a lone call waited out the gathering wait"
        time.sleep(0.2)


def test_a_group_that_fills_up_is_stored_without_waiting_out_the_gathering(engine):
    pipeline = held(engine)
    intake = Intake(pipeline, max_events=3, gather_seconds=5.0)
    first = intake.submit(events(pipeline, signup("first-in-line")))
    assert pipeline.entered.wait(10)
    during = intake.submit(events(pipeline, signup("al")))
    pipeline.release.set()
    assert first.result(10).accepted == 1
    started = time.monotonic()
    later = [intake.submit(events(pipeline, signup(name))) for name in ("bo", "cy")]
    assert [future.result(10).accepted for future in (during, *later)] == [1, 1, 1]
    assert time.monotonic() - started < 2.5, "a full group waited out the gathering wait"
    assert pipeline.groups == [1, 3]


def test_forty_concurrent_track_calls_are_each_answered_for_their_own_event(engine):
    client = TestClient(create_app(make_pipeline(engine), TOKEN))
    calls = [signup(f"user{i}") for i in range(40)] + [activity("user0")[0]]
    calls.append(dict(calls[3]))  # a retry of user3's signup, racing the original

    def send(call: dict):
        return client.post("/v1/track", json=call, headers=BEARER)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, calls))
    assert all(answer.status_code == 200 for answer in answers)
    bodies = [answer.json() for answer in answers]
    assert sum(body["accepted"] for body in bodies) == 41
    assert sum(body["duplicates"] for body in bodies) == 1
    assert {body["accepted"] + body["duplicates"] for body in bodies} == {1}
    assert count(engine, "events") == 41
