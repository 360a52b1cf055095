"""A signed Slack request captured and replayed after `pqlbot serve` restarts, within Slack's five minutes, is
refused: the replay memory is in the store (`slack_requests_seen`) on SQLite as on PostgreSQL, not only in the
process that served the request. The real command runs as a process; Slack is the stand-in in this one."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from bot.slack.ids import Action, Command, Input, LeadRef, View
from bot.store import make_engine
from tests.reliability.conftest import (
    MANAGER,
    REPS,
    SIGNING_SECRET,
    post,
    rows,
    send_batch,
    team_zone,
    trial_batch,
    wait_until,
)
from tests.standin import ALERTS_CHANNEL_ID

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pqlbot.db'}"
    return request.getfixturevalue("fault_postgres_url")


def signed(body: str) -> dict[str, str]:
    """Slack's headers for `body`, signed now: sending the same body with the same headers again is a replay."""
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature, "Content-Type": FORM}


def interaction(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def claim_click(rep: str, pql_id: int) -> str:
    return interaction({
        "type": "block_actions", "user": {"id": rep}, "api_app_id": "A0PQLBOT", "team": {"id": "T0TEAM"},
        "trigger_id": "1.trigger", "container": {"type": "message", "channel_id": ALERTS_CHANNEL_ID},
        "channel": {"id": ALERTS_CHANNEL_ID},
        "actions": [{"type": "button", "action_id": Action.CLAIM, "block_id": "b",
                     "value": LeadRef(pql_id=pql_id).encode(), "action_ts": "1.2"}]})


def touch_submission(rep: str, pql_id: int) -> str:
    values = {Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"type": "static_select",
                                                          "selected_option": {"value": "call"}}}}
    return interaction({
        "type": "view_submission", "user": {"id": rep}, "team": {"id": "T0TEAM"}, "api_app_id": "A0PQLBOT",
        "trigger_id": "2.trigger", "view": {"id": "V1", "type": "modal", "callback_id": View.LOG_TOUCH,
                                            "private_metadata": LeadRef(pql_id=pql_id).encode(),
                                            "state": {"values": values}}})


def reassign_command(slack, pql_id: int, rep: str) -> str:
    return urlencode({"token": "legacy", "team_id": "T0TEAM", "channel_id": ALERTS_CHANNEL_ID, "user_id": MANAGER,
                      "command": Command.PQL, "text": f"reassign PQL-{pql_id} <@{rep}>", "api_app_id": "A0PQLBOT",
                      "response_url": f"{slack.root}respond/reassign", "trigger_id": "3.trigger"})


def one(engine: sa.Engine, query: str, **params) -> int:
    [(value,)] = rows(engine, query, **params)
    return value


@pytest.mark.slow
def test_a_touch_and_a_reassign_replayed_after_a_restart_are_refused_and_happen_once(store_url, tmp_path, slack,
                                                                                     serves):
    """Before, on SQLite: the replay memory was the process's own, so after a restart the replayed submission
    logged a second touch and the replayed `/pql reassign` ran again."""
    zone, _ = team_zone()
    first = serves("first", database_url=store_url, slack=slack, zone=zone).start().ready()
    assert send_batch(first.port, trial_batch("replayed", now=datetime.now(UTC), run="replay")) == 200
    engine = make_engine(store_url)
    try:
        [(pql_id, rep_id)] = wait_until(lambda: rows(engine, "SELECT id, rep_id FROM pqls"), timeout=30,
                                        what="the lead")
        rep = rep_id or "U0ANA"  # queued (a weekend everywhere): anyone on the roster may claim it
        to_rep = next(other for other in REPS if other != rep)
        click = claim_click(rep, pql_id)
        assert post(first.port, "/slack/events", click.encode(), signed(click)) == 200
        wait_until(lambda: one(engine, "SELECT count(*) FROM pqls WHERE claimed_by = :rep", rep=rep), timeout=30,
                   what="the claim")
        # The manager gives the lead to another rep, who logs a touch on it.
        reassign = reassign_command(slack, pql_id, to_rep)
        reassign_headers = signed(reassign)
        assert post(first.port, "/slack/events", reassign.encode(), reassign_headers) == 200
        wait_until(lambda: one(engine, "SELECT count(*) FROM pqls WHERE claimed_by = :rep", rep=to_rep), timeout=30,
                   what="the reassignment")  # a slash command is answered before its listener is done
        touch = touch_submission(to_rep, pql_id)
        touch_headers = signed(touch)
        assert post(first.port, "/slack/events", touch.encode(), touch_headers) == 200
        assert one(engine, "SELECT count(*) FROM touches") == 1
        assert one(engine, "SELECT count(*) FROM audit WHERE action = 'pql_reassigned'") == 1

        first.kill()  # no orderly shutdown: what is remembered must already be in the store
        second = serves("second", database_url=store_url, slack=slack, zone=zone).start().ready()
        assert int(time.time()) - int(touch_headers["X-Slack-Request-Timestamp"]) < 300  # still inside the window
        replayed_touch = post(second.port, "/slack/events", touch.encode(), touch_headers)
        replayed_reassign = post(second.port, "/slack/events", reassign.encode(), reassign_headers)
        assert post(second.port, "/slack/events", click.encode(), signed(click)) == 200  # signed afresh: served

        assert one(engine, "SELECT count(*) FROM touches") == 1
        # A slash command's listener runs after its answer: give a replayed one time to reassign again.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and one(engine, "SELECT count(*) FROM audit WHERE action = "
                                                          "'pql_reassigned'") == 1:
            time.sleep(0.1)
        assert one(engine, "SELECT count(*) FROM audit WHERE action = 'pql_reassigned'") == 1
        assert one(engine, "SELECT count(*) FROM assignments WHERE reason = 'manual'") == 1
        assert (replayed_touch, replayed_reassign) == (401, 401)
        assert second.log().count("refused a replayed request") == 2
    finally:
        engine.dispose()
