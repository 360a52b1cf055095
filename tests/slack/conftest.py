"""A workspace in a box: `pqlbot serve`'s web app, driven with signed requests shaped like Slack's, talking
to a local Slack Web API stand-in. Listeners run inline after their ack, so a test reads their effects
as soon as the request returns."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from concurrent.futures import Executor, Future
from datetime import datetime
from urllib.parse import urlencode

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from bot.services.pipeline import Pipeline
from bot.settings import Settings
from bot.slack.delivery import deliver_due
from bot.slack.gateway import Gateway
from bot.slack.ids import LeadRef
from bot.store.models import Pql
from bot.web import server
from tests.scoring.builders import NY, Trial, sarah
from tests.standin import SlackStandIn

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ANA, BEN, BOSS, EVE = "U0ANA", "U0BEN", "U0BOSS", "U0EVE"
CHANNEL = "C0ALERTS"


class InlineExecutor(Executor):
    """Runs a listener at once, in the request's thread: it still acks first, as in production."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 (handed to whoever waits on the future)
            future.set_exception(exc)
        return future


class Workspace:
    def __init__(self, engine, standin: SlackStandIn, now: datetime, executor: Executor | None = None,
                 after_ack: Executor | None = None) -> None:
        self.standin, self.now = standin, now
        self.settings = Settings(
            _env_file=None, slack_bot_token="xoxb-test", slack_signing_secret=SECRET, slack_api_url=standin.url,
            pql_reps=f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor", pql_manager=BOSS, ingest_token="ingest-secret",
            pql_timezone="America/New_York", pql_alerts_channel="#pql-alerts", product_name="Quarry",
        )
        self.pipeline = Pipeline(engine, tz=NY, clock=lambda: self.now)
        self.gateway = Gateway.connect("xoxb-test", standin.url, backoff=0.01)
        self.server = server.build(self.settings, pipeline=self.pipeline, gateway=self.gateway,
                                   listener_executor=executor or InlineExecutor(), after_ack=after_ack)
        self.http = TestClient(self.server.web)
        self._ids = itertools.count(1)

    @staticmethod
    def pipeline_for(engine) -> Pipeline:
        return Pipeline(engine, tz=NY)

    # -- what Slack sends --------------------------------------------------------------------------

    def signed(self, body: str, content_type: str, *, timestamp: float | None = None, secret: str = SECRET):
        stamp = str(int(timestamp if timestamp is not None else time.time()))
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
        headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature, "Content-Type": content_type}
        return self.http.post("/slack/events", content=body, headers=headers)

    def response_url(self) -> str:
        return f"{self.standin.root}respond/{next(self._ids)}"

    def command(self, user: str, command: str, text: str = "", **signing):
        form = {
            "token": "legacy", "team_id": "T0TEAM", "team_domain": "acme", "channel_id": CHANNEL,
            "channel_name": "pql-alerts", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "A0PQLBOT", "is_enterprise_install": "false",
            "response_url": self.response_url(), "trigger_id": f"{next(self._ids)}.trigger",
        }
        return self.signed(urlencode(form), "application/x-www-form-urlencoded", **signing)

    def click(self, user: str, action_id: str, pql_id: int | None = None, *, value: str | None = None,
              in_home: bool = False):
        value = value if value is not None else LeadRef(pql_id=pql_id).encode()
        payload = {
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
            "api_app_id": "A0PQLBOT", "token": "legacy", "team": {"id": "T0TEAM", "domain": "acme"},
            "trigger_id": f"{next(self._ids)}.trigger",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                         "action_ts": "1700000000.1"}],
        }
        if in_home:
            payload |= {"container": {"type": "view", "view_id": "V0HOME"}, "view": {"id": "V0HOME", "type": "home"}}
        else:
            payload |= {
                "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": CHANNEL},
                "channel": {"id": CHANNEL, "name": "pql-alerts"}, "response_url": self.response_url(),
                "message": {"ts": "1700000000.000100", "text": "alert"},
            }
        return self.signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def submit(self, user: str, callback_id: str, pql_id: int, values: dict):
        payload = {
            "type": "view_submission", "team": {"id": "T0TEAM"}, "user": {"id": user, "team_id": "T0TEAM"},
            "api_app_id": "A0PQLBOT", "token": "legacy", "trigger_id": f"{next(self._ids)}.trigger",
            "view": {"id": "V0MODAL", "type": "modal", "callback_id": callback_id,
                     "private_metadata": LeadRef(pql_id=pql_id).encode(), "state": {"values": values}},
        }
        return self.signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def event(self, event: dict):
        body = {"token": "legacy", "team_id": "T0TEAM", "api_app_id": "A0PQLBOT", "event": event,
                "type": "event_callback", "event_id": f"Ev{next(self._ids)}", "event_time": int(time.time())}
        return self.signed(json.dumps(body), "application/json")

    # -- the bot's side --------------------------------------------------------------------------------

    def deliver(self):
        return deliver_due(self.pipeline.engine, self.gateway, render_alert=self.server.runtime.render_alert,
                           alerts_channel=self.settings.pql_alerts_channel, now=self.now)

    def lead(self, user: str = "sarah", trial: Trial | None = None) -> int:
        """A qualified lead whose alert is posted; returns its id."""
        trial = trial or (sarah() if user == "sarah" else
                          Trial(user, email=f"{user}@acme.com").activate(1).invite(2).integrate(2))
        self.pipeline.ingest(trial.events, at=self.now)
        self.deliver()
        with self.pipeline.session() as session:
            return session.exec(select(Pql).where(Pql.user_id == user)).one().id

    def pql(self, pql_id: int) -> Pql:
        with self.pipeline.session() as session:
            return session.get(Pql, pql_id)

    def said(self) -> list[str]:
        """What people were told privately: response_url answers and ephemerals, in order."""
        texts = [r.get("text", "") for r in self.standin.responses]
        return texts + [c.params.get("text", "") for c in self.standin.calls_to("chat.postEphemeral")]


@pytest.fixture
def standin():
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def workspace(engine, standin):
    return Workspace(engine, standin, datetime(2026, 11, 6, 15, 0, tzinfo=NY))
