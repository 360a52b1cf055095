"""Clicks are acked before any work, and work in the background lets a burst of acks go first."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor, Future
from datetime import datetime

from bot.slack.delivery import Deliverer
from bot.slack.ids import Action
from bot.slack.runtime import Answering
from tests.scoring.builders import NY
from tests.slack.conftest import ANA, BEN, InlineExecutor, Workspace

NOW = datetime(2026, 11, 6, 15, 0, tzinfo=NY)  # a Friday afternoon, in business hours


class HeldExecutor(Executor):
    """Keeps what it is given until `run_all`: shows what was answered before any of it ran."""

    def __init__(self) -> None:
        self.held: list = []

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        self.held.append((future, fn, args, kwargs))
        return future

    def run_all(self) -> None:
        while self.held:
            future, fn, args, kwargs = self.held.pop(0)
            future.set_result(fn(*args, **kwargs))


def test_a_click_is_answered_200_before_its_listener_runs_and_the_claim_follows(engine, standin):
    held = HeldExecutor()
    workspace = Workspace(engine, standin, NOW, after_ack=held)
    pql_id = workspace.lead()
    answer = workspace.click(ANA, Action.CLAIM, pql_id)
    assert answer.status_code == 200 and answer.content == b""
    assert workspace.pql(pql_id).claimed_by is None  # nothing ran yet: the ack waited on no claim
    held.run_all()
    assert workspace.pql(pql_id).claimed_by == ANA


def test_a_slash_command_is_answered_while_clicks_wait_for_the_after_ack_workers(engine, standin):
    held = HeldExecutor()
    workspace = Workspace(engine, standin, NOW, after_ack=held)
    pql_id = workspace.lead()
    for _ in range(5):
        workspace.click(BEN, Action.DETAILS, pql_id)
    answer = workspace.command(ANA, "/pql", "help")
    assert answer.status_code == 200
    assert any("/pql" in text for text in workspace.said())  # its reply went out; the clicks still wait
    assert len(held.held) == 5
    held.run_all()
    assert len(workspace.standin.calls_to("views.open")) == 5


def test_a_click_signed_wrongly_is_refused_before_any_ack_and_nothing_is_queued(engine, standin):
    held = HeldExecutor()
    workspace = Workspace(engine, standin, NOW, after_ack=held)
    pql_id = workspace.lead()
    body = "payload=" + '{"type":"block_actions"}'
    assert workspace.signed(body, "application/x-www-form-urlencoded", secret="not-the-secret").status_code == 401
    assert workspace.click(ANA, Action.CLAIM, pql_id).status_code == 200
    assert len(held.held) == 1


def test_background_work_waits_while_slack_requests_are_being_answered_then_goes():
    answering = Answering()
    with answering:
        started = time.monotonic()
        answering.wait_quiet(settle=0.01, at_most=0.3)  # a request is in flight: it waits, but not forever
        assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    answering.wait_quiet(settle=0.05, at_most=5)  # the answer just went: a short settle, then it goes
    waited = time.monotonic() - started
    assert 0.03 <= waited < 2


def test_the_deliverer_makes_way_before_each_message_it_sends(engine, standin):
    workspace = Workspace(engine, standin, NOW, executor=InlineExecutor())
    for user in ("ann", "bob", "cat"):
        workspace.pipeline.ingest(_qualifying(user), at=workspace.now)
    made_way = []
    deliverer = Deliverer(workspace.pipeline.engine, workspace.gateway,
                          render_alert=workspace.server.runtime.render_alert,
                          alerts_channel=workspace.settings.pql_alerts_channel, clock=lambda: workspace.now,
                          make_way=lambda: made_way.append(len(workspace.standin.calls_to("chat.postMessage"))))
    deliverer.start()
    try:
        deadline = time.monotonic() + 10
        while len(workspace.standin.calls_to("chat.postMessage")) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        deliverer.stop()
    assert made_way[:3] == [0, 1, 2]  # asked before the first, second and third alert


def test_a_burst_in_flight_holds_the_deliverer_back_until_it_is_answered(engine, standin):
    workspace = Workspace(engine, standin, NOW, executor=InlineExecutor())
    workspace.pipeline.ingest(_qualifying("dan"), at=workspace.now)
    answering = Answering()
    release = threading.Event()

    def in_flight() -> None:
        with answering:
            release.wait(10)

    request = threading.Thread(target=in_flight)
    request.start()
    time.sleep(0.05)
    deliverer = Deliverer(workspace.pipeline.engine, workspace.gateway,
                          render_alert=workspace.server.runtime.render_alert,
                          alerts_channel=workspace.settings.pql_alerts_channel, clock=lambda: workspace.now,
                          make_way=lambda: answering.wait_quiet(settle=0.01, at_most=5))
    deliverer.start()
    try:
        time.sleep(0.3)
        assert workspace.standin.calls_to("chat.postMessage") == []  # held back while the request is open
        release.set()
        deadline = time.monotonic() + 10
        while not workspace.standin.calls_to("chat.postMessage") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(workspace.standin.calls_to("chat.postMessage")) == 1
    finally:
        release.set()
        request.join(10)
        deliverer.stop()


def _qualifying(user: str):
    from tests.scoring.builders import Trial

    return Trial(user, email=f"{user}@acme.com").activate(1).invite(2).integrate(2).events
