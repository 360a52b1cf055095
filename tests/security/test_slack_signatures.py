"""Only Slack's own requests reach the listeners, each once: forged, altered, stale and replayed requests are
refused with 401 before Bolt parses them, and Slack's retries still work."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlencode

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.services.routing import Router
from bot.slack.app import build_app
from bot.slack.ids import Action, Command, Input, LeadRef, View
from bot.slack.verify import WINDOW, SignedRequests
from bot.store import make_engine
from bot.sweeps.runner import Sweeps
from bot.web.slack_route import slack_route
from tests.security.support import REQUESTS_SEEN, counts, errors_logged, fuzz
from tests.slack.conftest import ANA, CHANNEL, SECRET, InlineExecutor, Workspace

FORM = "application/x-www-form-urlencoded"


def sign(body: str, stamp: int, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()


def headers(body: str, *, stamp: int | None = None, secret: str = SECRET, content_type: str = FORM, **extra) -> dict:
    stamp = int(time.time()) if stamp is None else stamp
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": sign(body, stamp, secret),
            "Content-Type": content_type, **extra}


def command_body(workspace, user: str, command: str, text: str = "") -> str:
    return urlencode({"token": "legacy", "team_id": "T0TEAM", "channel_id": CHANNEL, "user_id": user,
                      "command": command, "text": text, "api_app_id": "A0PQLBOT",
                      "response_url": workspace.response_url(), "trigger_id": "1.trigger"})


def click_body(user: str, action: str, pql_id: int) -> str:
    payload = {"type": "block_actions", "user": {"id": user}, "api_app_id": "A0PQLBOT", "team": {"id": "T0TEAM"},
               "trigger_id": "9.trigger", "container": {"type": "message", "channel_id": CHANNEL},
               "channel": {"id": CHANNEL}, "actions": [{"type": "button", "action_id": action, "block_id": "b",
                                                        "value": LeadRef(pql_id=pql_id).encode(),
                                                        "action_ts": "1.2"}]}
    return urlencode({"payload": json.dumps(payload)})


def touch_body(user: str, pql_id: int) -> str:
    values = {Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"selected_option": {"value": "call"}}}}
    payload = {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0TEAM"}, "api_app_id": "A0PQLBOT",
               "trigger_id": "7.trigger", "view": {"id": "V1", "type": "modal", "callback_id": View.LOG_TOUCH,
                                                   "private_metadata": LeadRef(pql_id=pql_id).encode(),
                                                   "state": {"values": values}}}
    return urlencode({"payload": json.dumps(payload)})


def post(workspace, body: str, request_headers: dict):
    return workspace.http.post("/slack/events", content=body.encode(), headers=request_headers)


# Forged and stale ----------------------------------------------------------------------------------------------

def test_a_request_signed_with_another_secret_is_refused_and_never_dispatched(workspace):
    pql_id = workspace.lead()
    before, calls = counts(workspace.pipeline.engine), len(workspace.standin.calls)
    body = click_body(ANA, Action.CLAIM, pql_id)
    response = post(workspace, body, headers(body, secret="not-the-signing-secret"))
    assert (response.status_code, response.json()) == (401, {"error": "invalid request"})
    assert counts(workspace.pipeline.engine) == before and len(workspace.standin.calls) == calls


def test_a_body_altered_after_signing_is_refused(workspace):
    pql_id = workspace.lead()
    signed_for = command_body(workspace, ANA, Command.PQL, "help")
    altered = command_body(workspace, ANA, Command.CLAIM, f"PQL-{pql_id}")
    assert post(workspace, altered, headers(signed_for)).status_code == 401
    assert workspace.pql(pql_id).claimed_by is None and workspace.standin.responses == []


@pytest.mark.parametrize("skew", [-301, -6 * 60, -3600, 301, 6 * 60], ids=lambda s: f"{s:+d}s")
def test_a_correctly_signed_request_stamped_over_five_minutes_away_is_refused(workspace, skew):
    pql_id = workspace.lead()
    body = command_body(workspace, ANA, Command.CLAIM, f"PQL-{pql_id}")
    # Rounded up: int() would take up to a second off a stamp ahead, leaving "+301 s" at 300 s by the check.
    response = post(workspace, body, headers(body, stamp=math.ceil(time.time()) + skew))
    assert response.status_code == 401
    assert workspace.pql(pql_id).claimed_by is None and workspace.standin.responses == []


def test_a_request_stamped_just_inside_the_window_is_served(workspace):
    body = command_body(workspace, ANA, Command.PQL, "help")
    assert post(workspace, body, headers(body, stamp=int(time.time()) - 280)).status_code == 200
    assert len(workspace.standin.responses) == 1


@pytest.mark.parametrize("missing", ["X-Slack-Request-Timestamp", "X-Slack-Signature"])
def test_a_request_without_its_signature_headers_is_refused(workspace, missing):
    body = command_body(workspace, ANA, Command.PQL, "help")
    request_headers = headers(body)
    del request_headers[missing]
    assert post(workspace, body, request_headers).status_code == 401
    assert workspace.standin.responses == []


header_text = st.text(st.characters(min_codepoint=32, exclude_characters="\x7f"), max_size=80)


@fuzz(150)
@given(body=st.binary(max_size=300), stamp=st.one_of(header_text, st.integers(-(2**70), 2**70).map(str)),
       signature=st.one_of(header_text, st.binary(min_size=32, max_size=32).map(lambda b: "v0=" + b.hex())),
       content_type=st.sampled_from([FORM, "application/json", "text/plain", "multipart/form-data"]))
def test_anything_unsigned_is_401_never_a_5xx_and_never_reaches_a_listener(workspace, caplog, body, stamp, signature,
                                                                          content_type):
    caplog.set_level(logging.INFO)
    caplog.clear()
    calls = len(workspace.standin.calls)
    request_headers = {"X-Slack-Request-Timestamp": stamp.encode(), "X-Slack-Signature": signature.encode(),
                       "Content-Type": content_type}
    response = workspace.http.post("/slack/events", content=body, headers=request_headers)
    assert (response.status_code, response.json()) == (401, {"error": "invalid request"})
    assert len(workspace.standin.calls) == calls
    assert not errors_logged(caplog.records)


def test_slacks_unsigned_ssl_check_is_answered_200_and_reaches_no_listener(workspace):
    """Slack probes a slash command's certificate with an unsigned `ssl_check=1`; Bolt answers it before its
    signature check, so the route does too, dispatching nothing."""
    response = workspace.http.post("/slack/events", content=b"ssl_check=1&token=legacy",
                                   headers={"Content-Type": FORM})
    assert (response.status_code, response.content) == (200, b"")
    assert workspace.standin.calls == [] and workspace.standin.responses == []


def test_without_a_signing_secret_every_request_is_refused_not_a_500(engine, standin, caplog):
    from bot.settings import Settings
    from bot.web import server
    from tests.slack.conftest import Workspace

    settings = Settings(_env_file=None, slack_bot_token="xoxb-test", slack_api_url=standin.url, pql_reps=ANA)
    built = server.build(settings, pipeline=Workspace.pipeline_for(engine), listener_executor=InlineExecutor())
    assert "SLACK_SIGNING_SECRET is not set" in caplog.text
    body = urlencode({"command": Command.PQL, "text": "help", "user_id": ANA})
    for secret in ("", "anything"):
        stamp = int(time.time())
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
        response = TestClient(built.web).post("/slack/events", content=body.encode(), headers={
            "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature, "Content-Type": FORM})
        assert response.status_code == 401
    assert standin.calls == []


def test_a_signed_body_that_is_not_a_slack_request_is_400_not_500(workspace):
    for body, content_type in [(b"\xff\xfe\x00", FORM), (b"payload=%7Bnot-json", FORM), (b"[1, 2]", "application/json"),
                               (b"payload=%5B1%2C2%5D", FORM)]:
        stamp = int(time.time())
        signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        response = workspace.http.post("/slack/events", content=body, headers={
            "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature, "Content-Type": content_type})
        assert response.status_code in (400, 404), (body, response.text)
        assert response.json()["error"]


def test_a_body_over_a_mebibyte_is_413_unread(workspace):
    body = "payload=" + "x" * (1024 * 1024 + 1)
    assert post(workspace, body, headers(body)).status_code == 413


# Replayed --------------------------------------------------------------------------------------------------------

def test_a_replayed_slash_command_is_refused_and_runs_once(workspace):
    pql_id = workspace.lead()
    body = command_body(workspace, ANA, Command.CLAIM, f"PQL-{pql_id}")
    sent = headers(body)
    assert post(workspace, body, sent).status_code == 200
    replay = post(workspace, body, sent)
    assert (replay.status_code, replay.json()) == (401, {"error": "replayed request"})
    assert workspace.said() == [f"PQL-{pql_id} claimed by <@U0ANA>."]


def submit_a_touch_then_replay_it(workspace, replay_to) -> int:
    """Ana claims a lead and logs a touch; the very same signed submission goes to `replay_to`. Returns the
    replay's status."""
    pql_id = workspace.lead()
    workspace.click(ANA, Action.CLAIM, pql_id)
    body = touch_body(ANA, pql_id)
    sent = headers(body)
    assert post(workspace, body, sent).status_code == 200
    return post(replay_to, body, sent).status_code


def test_a_replayed_modal_submission_logs_one_touch_not_two(workspace):
    assert submit_a_touch_then_replay_it(workspace, workspace) == 401
    assert counts(workspace.pipeline.engine)["touches"] == 1


def test_twenty_copies_of_one_request_at_once_are_dispatched_once(workspace):
    pql_id = workspace.lead()
    body = click_body(ANA, Action.CLAIM, pql_id)
    sent = headers(body)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(pool.map(lambda _: post(workspace, body, sent).status_code, range(20)))
    assert statuses == [200] + [401] * 19
    assert workspace.pql(pql_id).claimed_by == ANA
    with workspace.pipeline.engine.connect() as connection:
        claims = connection.scalar(sa.text("SELECT count(*) FROM audit WHERE action = 'pql_claimed'"))
    assert claims == 1 and workspace.standin.calls_to("chat.postEphemeral") == []  # nobody was told "already"


def test_the_same_request_signed_again_later_is_a_new_request(workspace):
    """What a replay is: the same signature. Slack signs every delivery afresh (the timestamp is part of it)."""
    body = command_body(workspace, ANA, Command.PQL, "help")
    stamp = int(time.time())
    assert post(workspace, body, headers(body, stamp=stamp - 1)).status_code == 200
    assert post(workspace, body, headers(body, stamp=stamp)).status_code == 200
    assert len(workspace.standin.responses) == 2


# Slack's retries ---------------------------------------------------------------------------------------------------

def event_body(user: str) -> str:
    return json.dumps({"token": "legacy", "team_id": "T0TEAM", "api_app_id": "A0PQLBOT", "type": "event_callback",
                       "event_id": "Ev0RETRY", "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}})


def test_slacks_retry_of_an_event_signed_afresh_is_served_not_refused(workspace):
    body = event_body(ANA)
    stamp = int(time.time())
    first = post(workspace, body, headers(body, stamp=stamp - 4, content_type="application/json"))
    retry = post(workspace, body, headers(body, stamp=stamp, content_type="application/json",
                                          **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))
    assert (first.status_code, retry.status_code) == (200, 200)
    assert len(workspace.standin.calls_to("views.publish")) == 2  # publishing the home twice is harmless


def serve_an_event_then_its_retry(workspace, retry_to) -> None:
    """Slack's retry repeating a signature already served: acked (and told not to retry), never run again."""
    body = event_body(ANA)
    sent = headers(body, content_type="application/json")
    assert post(workspace, body, sent).status_code == 200
    again = post(retry_to, body, {**sent, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert again.status_code == 200 and again.headers["x-slack-no-retry"] == "1"
    assert len(workspace.standin.calls_to("views.publish")) == 1


def test_a_retry_that_repeats_a_signature_already_served_is_acked_without_running_again(workspace):
    serve_an_event_then_its_retry(workspace, retry_to=workspace)


# The memory behind it ----------------------------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_signatures_are_remembered_until_their_timestamp_leaves_the_window_then_forgotten():
    clock = Clock(1_800_000_000)
    signed = SignedRequests(SECRET, clock=clock)
    stamp = str(int(clock.now))
    assert signed.first_time(stamp, "v0=a") is True
    clock.now += 299
    assert signed.first_time(stamp, "v0=a") is False  # a replay, however late within the window
    assert not signed.authentic(b"", str(int(clock.now) - 301), sign("", int(clock.now) - 301))
    clock.now += 2
    assert signed.first_time(str(int(clock.now)), "v0=b") is True
    assert len(signed) == 1  # "v0=a" is gone: its timestamp is out of the window, so the age check refuses it


def test_a_full_memory_turns_requests_away_rather_than_forget_a_live_signature(workspace):
    clock = Clock(time.time())
    signed = SignedRequests(SECRET, capacity=3, clock=clock)
    stamp = str(int(clock.now))
    assert [signed.first_time(stamp, f"v0={n}") for n in range(4)] == [True, True, True, None]
    assert signed.first_time(stamp, "v0=0") is False
    app = build_app(workspace.server.runtime, listener_executor=InlineExecutor())
    web = TestClient(Starlette(routes=[slack_route(app, signed=SignedRequests(SECRET, capacity=0))]))
    body = command_body(workspace, ANA, Command.PQL, "help")
    response = web.post("/slack/events", content=body.encode(), headers=headers(body))
    assert (response.status_code, response.json()) == (503, {"error": "busy, retry"})
    assert workspace.standin.responses == []


def test_the_memory_is_safe_across_threads():
    signed = SignedRequests(SECRET)
    stamp = str(int(time.time()))
    results: list[bool | None] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        outcome = signed.first_time(stamp, f"v0={n % 50}")
        with lock:
            results.append(outcome)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(race, range(1000)))
    assert results.count(True) == 50 and results.count(False) == 950


# Replayed to another process on the same store, or to this one restarted -----------------------------------------

@pytest.fixture
def other_process(workspace):
    """A second `pqlbot serve` on the workspace's store: its own app, route and memory, one database. On SQLite,
    which serves one process, it is the first one restarted (tests/reliability/test_replay_after_restart.py
    restarts a real one)."""
    return Workspace(workspace.pipeline.engine, workspace.standin, workspace.now)


def requests_seen(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(f"SELECT count(*) FROM {REQUESTS_SEEN}"))


def test_a_click_served_by_one_process_is_refused_as_replayed_by_the_other(workspace, other_process):
    pql_id = workspace.lead()
    body = click_body(ANA, Action.CLAIM, pql_id)
    sent = headers(body)
    assert post(workspace, body, sent).status_code == 200
    replay = post(other_process, body, sent)
    assert (replay.status_code, replay.json()) == (401, {"error": "replayed request"})
    assert post(other_process, body, sent).status_code == 401  # and again, from its own memory now
    assert workspace.pql(pql_id).claimed_by == ANA
    with workspace.pipeline.engine.connect() as connection:
        claims = connection.scalar(sa.text("SELECT count(*) FROM audit WHERE action = 'pql_claimed'"))
    assert claims == 1 and workspace.standin.calls_to("chat.postEphemeral") == []  # nobody was told "already"


def test_a_modal_submission_replayed_to_the_other_process_logs_one_touch_not_two(workspace, other_process):
    assert submit_a_touch_then_replay_it(workspace, other_process) == 401
    assert counts(workspace.pipeline.engine)["touches"] == 1


def test_twenty_copies_of_one_click_at_once_across_two_processes_are_dispatched_once(workspace, other_process):
    pql_id = workspace.lead()
    body = click_body(ANA, Action.CLAIM, pql_id)
    sent = headers(body)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(pool.map(lambda n: post((workspace, other_process)[n % 2], body, sent).status_code,
                                   range(20)))
    assert statuses == [200] + [401] * 19
    with workspace.pipeline.engine.connect() as connection:
        claims = connection.scalar(sa.text("SELECT count(*) FROM audit WHERE action = 'pql_claimed'"))
    assert claims == 1 and workspace.standin.calls_to("chat.postEphemeral") == []


def test_the_same_command_signed_afresh_is_served_by_the_other_process(workspace, other_process):
    body = command_body(workspace, ANA, Command.PQL, "help")
    stamp = int(time.time())
    assert post(workspace, body, headers(body, stamp=stamp - 1)).status_code == 200
    assert post(other_process, body, headers(body, stamp=stamp - 1)).status_code == 401
    assert post(other_process, body, headers(body, stamp=stamp)).status_code == 200
    assert len(workspace.standin.responses) == 2


def test_a_retry_repeating_a_signature_the_other_process_served_is_acked_without_running_again(workspace,
                                                                                             other_process):
    serve_an_event_then_its_retry(workspace, retry_to=other_process)


def test_when_the_store_cannot_be_reached_a_click_is_answered_503_and_not_dispatched(workspace, caplog):
    engine = workspace.pipeline.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("PostgreSQL only: a SQLite file is not reached over a connection (see the write lock's test)")
    pql_id = workspace.lead()
    away = make_engine(engine.url.render_as_string(hide_password=False))  # the check's own pool, as in a process
    refusing = [True]

    @sa.event.listens_for(away, "do_connect")
    def refuse(*_):
        if refusing[0]:
            raise psycopg.OperationalError("connection refused")

    signed = SignedRequests(SECRET, store=away)
    app = build_app(workspace.server.runtime, listener_executor=InlineExecutor())
    web = TestClient(Starlette(routes=[slack_route(app, signed=signed, after_ack=InlineExecutor())]))
    body = click_body(ANA, Action.CLAIM, pql_id)
    sent = headers(body)
    calls = len(workspace.standin.calls)
    try:
        response = web.post("/slack/events", content=body.encode(), headers=sent)
        assert (response.status_code, response.json()) == (503, {"error": "store unavailable, retry"})
        assert workspace.pql(pql_id).claimed_by is None and len(workspace.standin.calls) == calls
        assert not errors_logged(caplog.records)

        refusing[0] = False  # the store is back, and the click was never taken as served
        assert web.post("/slack/events", content=body.encode(), headers=sent).status_code == 200
        assert workspace.pql(pql_id).claimed_by == ANA
    finally:
        away.dispose()


def test_each_request_served_is_recorded_in_the_store_once_on_every_store(workspace):
    """Before, on SQLite, the replay memory was the process's alone, and a restart forgot it."""
    body = command_body(workspace, ANA, Command.PQL, "help")
    sent = headers(body)
    assert post(workspace, body, sent).status_code == 200
    assert post(workspace, body, sent).status_code == 401  # this process's memory: the store is not asked again
    assert requests_seen(workspace.pipeline.engine) == 1


def test_on_sqlite_a_request_that_waits_too_long_for_the_write_lock_is_answered_503_and_not_dispatched(
        workspace, monkeypatch):
    """A long write (a full rescore of a big store) holds SQLite's single write lock: a request waits
    RECORD_WAIT for its turn at most, then is refused for Slack to retry, rather than answered after Slack
    has given up on it."""
    engine = workspace.pipeline.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL has no single write lock")
    monkeypatch.setattr("bot.slack.verify.RECORD_WAIT", 0.3)
    pql_id = workspace.lead()
    app = build_app(workspace.server.runtime, listener_executor=InlineExecutor())
    web = TestClient(Starlette(routes=[slack_route(app, after_ack=InlineExecutor())]))
    body = click_body(ANA, Action.CLAIM, pql_id)
    sent = headers(body)
    with engine.begin() as writing:  # a writer holding the lock meanwhile
        writing.execute(sa.text("UPDATE reps SET paused = paused"))
        started = time.monotonic()
        response = web.post("/slack/events", content=body.encode(), headers=sent)
        waited = time.monotonic() - started
    assert (response.status_code, response.json()) == (503, {"error": "store unavailable, retry"})
    assert 0.3 <= waited < 2 and workspace.pql(pql_id).claimed_by is None
    assert web.post("/slack/events", content=body.encode(), headers=sent).status_code == 200  # its turn comes
    assert workspace.pql(pql_id).claimed_by == ANA


def test_the_sweeps_forget_requests_past_the_window_and_keep_the_live_ones(workspace):
    engine = workspace.pipeline.engine
    clock = Clock(1_800_000_000)
    first = SignedRequests(SECRET, store=engine, clock=clock)
    old, live = str(int(clock.now)), str(int(clock.now) + 240)
    assert first.first_time_in_store(old, "v0=old").result() and first.first_time_in_store(live, "v0=live").result()
    clock.now += 240 + WINDOW  # `old` is long past the window, `live` still inside it
    settings = workspace.settings
    sweeps = Sweeps(workspace.pipeline, Router(settings.calendar, cap=settings.pql_daily_cap, manager=None), settings)
    done = sweeps.run_due(datetime.fromtimestamp(clock.now, UTC))
    assert done["slack_requests"] == 1 and requests_seen(engine) == 1
    another = SignedRequests(SECRET, store=engine, clock=clock)  # a process that never saw `live`
    assert another.first_time_in_store(live, "v0=live").result() is False


def test_without_the_sweeps_recording_processes_still_delete_what_is_past_the_window(workspace):
    engine = workspace.pipeline.engine
    clock = Clock(1_800_000_000)
    signed = SignedRequests(SECRET, store=engine, clock=clock, tidy_every=10)
    for round_ in range(5):
        stamp = str(int(clock.now))
        assert all(signed.first_time_in_store(stamp, f"v0={round_}-{n}").result() for n in range(10))
        clock.now += 2 * WINDOW
    assert requests_seen(engine) == 10  # the last ten: after each tenth record, the next one cleared the expired
