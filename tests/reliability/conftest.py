"""What the fault tests share: real `pqlbot serve` processes, product events relative to the real clock,
a Slack stand-in that outlives the processes, and a PostgreSQL database of their own.

Every wait here is bounded, and every process a test starts is killed (by its own pid) when it ends.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.slack.ids import Action, LeadRef
from tests.conftest import POSTGRES_URL, own_database
from tests.standin import ALERTS_CHANNEL_ID, SlackStandIn

PQLBOT = Path(sys.executable).with_name("pqlbot")
INGEST_TOKEN = "fault-ingest-token"
SIGNING_SECRET = "fault-signing-secret-0123456789ab"
REPS = {"U0ANA": "Ana Ruiz", "U0BEN": "Ben Okafor", "U0CAT": "Cat Lee"}
MANAGER = "U0BOSS"
#: Settings `pqlbot serve` reads; the tests' environment must not leak any of them into the processes.
_SETTINGS = ("PQL_", "SLACK_", "DATABASE_URL", "INGEST_TOKEN", "HOST", "PORT", "RESCORE_EVERY_HOURS",
             "PRODUCT_NAME")


def wait_until(condition: Callable[[], object], *, timeout: float, every: float = 0.1, what: str = "it") -> object:
    """`condition()`'s first truthy value, polled; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def team_zone(at: datetime | None = None) -> tuple[str, bool]:
    """A timezone where it is a weekday now, at least an hour from midnight, and whether there is one.

    `pqlbot serve` runs on the real clock, and routing hands leads out only on business days (Monday to
    Friday; PQL_BUSINESS_HOURS=00:00-23:59 covers the hours). A fixed-offset zone from UTC-12 to UTC+14 is
    on a weekday except from about Saturday 11:00 to Sunday 11:00 UTC; then (False) leads are queued for
    Monday instead of assigned, and the tests check that instead."""
    at = at or datetime.now(UTC)
    for hours in sorted(range(-12, 15), key=abs):
        name = "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-3 is UTC+3
        local = at.astimezone(ZoneInfo(name))
        if local.weekday() < 5 and 1 <= local.hour <= 22:
            return name, True
    return "Etc/UTC", False


# -- product events, as a product sends them to /v1/batch -------------------------------------------------------

def trial_batch(user: str, *, now: datetime, run: str) -> dict:
    """A user who qualifies (medium): signed up two days ago, activated and invited a teammate, connected an
    integration a day later. The messageIds are fixed per `run`, so sending it again is a replay."""
    signup = now - timedelta(days=2)
    number = int("".join(ch for ch in user if ch.isdigit()) or 0)

    def call(n: int, name: str, at: datetime, **properties) -> dict:
        return {"type": "track", "event": name, "userId": user, "timestamp": at.isoformat(),
                "messageId": f"{run}-{user}-{n}", "properties": properties}

    return {"batch": [
        call(1, "signup_complete", signup, email=f"{user}@company{number}.example", company_name=f"Company {number}",
             company_size=800, first_name=user.title()),
        call(2, "activation_complete", signup + timedelta(hours=1)),
        call(3, "invite_sent", signup + timedelta(hours=2), invitee_email=f"teammate@company{number}.example"),
        call(4, "integration_connected", signup + timedelta(days=1), integration_type="dbt"),
    ]}


def post(port: int, path: str, body: bytes, headers: dict[str, str], *, timeout: float = 10) -> int | None:
    """POST to 127.0.0.1:port; the status, or None when the connection failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def send_batch(port: int, batch: dict, *, retries: int = 0, timeout: float = 10) -> int | None:
    """One /v1/batch call; with `retries`, a 503 or a failed connection is retried (as Segment does)."""
    body = json.dumps(batch).encode()
    headers = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"}
    for attempt in range(retries + 1):
        status = post(port, "/v1/batch", body, headers, timeout=timeout)
        if status not in (None, 503):
            return status
        if attempt < retries:
            time.sleep(0.2 * (attempt + 1))
    return status


_triggers = itertools.count(1)


def signed_post(port: int, body: str) -> int | None:
    """POST a form body to the process's /slack/events, signed as Slack signs it."""
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return post(port, "/slack/events", body.encode(), {"X-Slack-Request-Timestamp": stamp,
                                                         "X-Slack-Signature": signature,
                                                         "Content-Type": "application/x-www-form-urlencoded"})


def click_claim(port: int, slack: SlackStandIn, pql_id: int, user: str) -> int | None:
    """A rep clicks Claim on a lead's alert (or its DM): acked at once, the claim stored after the ack."""
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0PQLBOT", "token": "legacy", "team": {"id": "T0TEAM", "domain": "acme"},
        "trigger_id": f"{next(_triggers)}.{time.time_ns()}.trigger",
        "actions": [{"type": "button", "action_id": Action.CLAIM, "block_id": "b",
                     "value": LeadRef(pql_id=pql_id).encode(), "action_ts": f"{time.time():.6f}"}],
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": ALERTS_CHANNEL_ID},
        "channel": {"id": ALERTS_CHANNEL_ID, "name": "pql-alerts"},
        "response_url": f"{slack.root}respond/{next(_triggers)}",
    }
    return signed_post(port, urlencode({"payload": json.dumps(payload)}))


def kick(port: int, slack: SlackStandIn, user: str = "U0ANA") -> int | None:
    """A rep types `/pql help`: any slash command kicks the process's deliverer, so a test need not wait
    out its 15-second cadence for what was ingested over HTTP. The answer goes to the stand-in."""
    form = {"token": "legacy", "team_id": "T0TEAM", "team_domain": "acme", "channel_id": ALERTS_CHANNEL_ID,
            "channel_name": "pql-alerts", "user_id": user, "user_name": user.lower(), "command": "/pql",
            "text": "help", "api_app_id": "A0PQLBOT", "response_url": f"{slack.root}respond/{next(_triggers)}",
            "trigger_id": f"{next(_triggers)}.{time.time_ns()}.trigger"}
    return signed_post(port, urlencode(form))


# -- what the store and Slack hold afterwards --------------------------------------------------------------------

def rows(engine: sa.Engine, query: str, **params) -> list:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(query), params))


def alert_times(slack) -> dict[int, list[float]]:
    """When each lead's alert was posted (its ts: the stand-in stamps messages on the real clock), per lead id."""
    posted: dict[int, list[float]] = {}
    for message in slack.history(ALERTS_CHANNEL_ID):
        if message.thread_ts is None and message.metadata and message.metadata.get("event_type") == "pql_alert":
            posted.setdefault(message.metadata["event_payload"]["pql_id"], []).append(float(message.ts))
    return posted


def alert_posts(slack) -> Counter:
    return Counter(m.metadata["event_payload"]["pql_id"] for m in slack.history(ALERTS_CHANNEL_ID)
                   if m.thread_ts is None and m.metadata and m.metadata.get("event_type") == "pql_alert")


def drained(engine: sa.Engine, expected: int) -> bool:
    [(pqls, alerted)] = rows(engine, "SELECT count(*), count(alert_ts) FROM pqls")
    [(busy,)] = rows(engine, "SELECT count(*) FROM notices WHERE state IN ('pending', 'sending')")
    return pqls == expected and alerted == expected and busy == 0


def check_store_and_slack(engine: sa.Engine, slack, users: list[str], *, business_open: bool,
                          claimed: frozenset[int] = frozenset()) -> dict:
    """Every user one PQL, one alert post (the one the lead points at), one assignment and its DM; no notice
    left owed; the leads in `claimed` claimed by their rep, the others assigned. Returns counts for the report."""
    pqls = rows(engine, "SELECT id, user_id, alert_ts, state, rep_id FROM pqls ORDER BY id")
    assert sorted(p.user_id for p in pqls) == sorted(users)  # one each: no lead lost, none doubled
    posts = alert_posts(slack)
    assert posts == Counter({p.id: 1 for p in pqls})  # one alert each in the channel
    ts = {m.metadata["event_payload"]["pql_id"]: m.ts for m in slack.history(ALERTS_CHANNEL_ID)
          if m.thread_ts is None and m.metadata}
    assert {p.id: p.alert_ts for p in pqls} == ts
    assignments = rows(engine, "SELECT pql_id, rep_id, reason FROM assignments ORDER BY id")
    notices = rows(engine, "SELECT kind, state, key, channel, ts, attempts FROM notices")
    assert {n.state for n in notices} == {"sent"}  # nothing pending, sending or failed
    dms = [n for n in notices if n.kind == "dm"]
    if business_open:
        assert Counter(a.pql_id for a in assignments) == Counter({p.id: 1 for p in pqls})
        assert {a.reason for a in assignments} <= {"round_robin", "queue"}
        assert {a.pql_id: a.rep_id for a in assignments} == {p.id: p.rep_id for p in pqls}
        assert {p.id: p.state for p in pqls} == {p.id: "claimed" if p.id in claimed else "assigned" for p in pqls}
        assert {p.rep_id for p in pqls} <= set(REPS)
        assert len(dms) == len(pqls)  # one DM owed per assignment...
        for dm in dms:  # ...and each delivered
            assert dm.ts in {m.ts for m in slack.history(dm.channel)}
    else:  # the weekend everywhere on Earth: leads wait in the queue for Monday, none assigned
        assert assignments == [] and {p.state for p in pqls} == {"queued"} and dms == []
    delivered_dms = sum(len(slack.history(f"D{rep}")) for rep in REPS)
    return {"pqls": len(pqls), "assignments": len(assignments), "dm_posts": delivered_dms,
            "dm_repeats": delivered_dms - len(dms)}


# -- `pqlbot serve` as a process ---------------------------------------------------------------------------------

class Serve:
    """One `pqlbot serve` process on 127.0.0.1:<port>, its output in a log file."""

    def __init__(self, name: str, *, database_url: str, slack: SlackStandIn, zone: str, folder: Path) -> None:
        self.name, self.port, self.folder = name, free_port(), folder
        self.log_path = folder / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_SETTINGS)}
        self.env.update(
            DATABASE_URL=database_url, INGEST_TOKEN=INGEST_TOKEN, SLACK_BOT_TOKEN="xoxb-fault-test",
            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url, PQL_ALERTS_CHANNEL=ALERTS_CHANNEL_ID,
            PQL_REPS=",".join(f"{rep}:{name}" for rep, name in REPS.items()), PQL_MANAGER=MANAGER,
            PQL_TIMEZONE=zone, PQL_BUSINESS_HOURS="00:00-23:59", PQL_HOLIDAYS="", PQL_DAILY_CAP="1000",
            PYTHONUNBUFFERED="1",
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> Serve:
        if not PQLBOT.exists():
            pytest.skip(f"{PQLBOT} is not installed (pip install -e .)")
        log = self.log_path.open("ab")
        try:
            # Its own session: a signal meant for pytest's process group never reaches it, and ours reach
            # only it. cwd is the test's folder, so no .env is read.
            self.process = subprocess.Popen(
                [str(PQLBOT), "serve", "--host", "127.0.0.1", "--port", str(self.port)], env=self.env,
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        return self

    def ready(self, timeout: float = 30) -> Serve:
        def up() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                return connection.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                return False
            finally:
                connection.close()

        wait_until(up, timeout=timeout, every=0.1, what=f"{self.name} to answer /healthz")
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when the machine or the OOM killer takes it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
        self.wait()

    def wait(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{self.name} (pid {self.process.pid}) did not die")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def serves(tmp_path) -> Iterator[Callable[..., Serve]]:
    """Makes `Serve`s; every one still running when the test ends is killed."""
    made: list[Serve] = []

    def make(name: str, **kwargs) -> Serve:
        serve = Serve(name, folder=tmp_path, **kwargs)
        made.append(serve)
        return serve

    yield make
    for serve in made:
        serve.kill()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """The stand-in lives in the test process, so it outlives the processes it serves."""
    with SlackStandIn() as standin:
        yield standin


# -- a PostgreSQL database of our own ----------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """DATABASE_URL for `pqlbot serve` processes, on each store: a SQLite file of the test's own, or a PostgreSQL
    database of its own (`fault_postgres_url`; skipped without PQLBOT_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pqlbot.db'}"
    return request.getfixturevalue("fault_postgres_url")


@pytest.fixture
def fault_postgres_url() -> Iterator[str]:
    """A fresh database beside PQLBOT_TEST_POSTGRES_URL's, named for this run and dropped afterwards, so
    processes outside the test's own connection pool can share it without touching other test runs."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL only: set PQLBOT_TEST_POSTGRES_URL")
    with own_database(f"pqlbot_fault_{os.getpid()}") as url:
        yield url
