"""No secret and no email reaches the logs at INFO or above, through a realistic day: events in over HTTP
(emails in them), alerts delivered, people claiming and working leads in Slack (typing emails), a wrong
ingest token, forged and stale Slack requests, and store errors on both sides."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from urllib.parse import unquote_plus

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.services import leads
from bot.slack.ids import Action, Command, Input, View
from tests.slack.conftest import ANA, BOSS, SECRET

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
INGEST_TOKEN, BOT_TOKEN = "ingest-secret", "xoxb-test"  # what the workspace harness configures
WRONG_TOKEN = "wr0ng-t0ken-guess"


def logged_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for this record: message, args, traceback and stack."""
    parts = [record.getMessage(), repr(record.args)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts += [record.exc_text or "", record.stack_info or ""]
    text = "\n".join(parts)
    return text + "\n" + unquote_plus(text)  # a form body logged as sent would hide its @ as %40


def leaks(records: list[logging.LogRecord]) -> list[str]:
    found = []
    for record in records:
        if record.levelno < logging.INFO:
            continue
        text = logged_text(record)
        for secret in (INGEST_TOKEN, BOT_TOKEN, SECRET, WRONG_TOKEN):
            if secret in text:
                found.append(f"{record.name}: {secret!r} in {record.getMessage()[:120]!r}")
        found += [f"{record.name}: {email!r} in {record.getMessage()[:120]!r}" for email in EMAIL.findall(text)]
    return found


def track(name: str, user: str, at, **props) -> dict:
    return {"type": "track", "event": name, "userId": user, "timestamp": at.isoformat(),
            "messageId": f"{user}-{name}-{at.timestamp()}", "properties": props}


@pytest.fixture
def day(workspace, caplog):
    caplog.set_level(logging.INFO)  # what `pqlbot serve` configures: the root logger at INFO
    return workspace


def test_a_realistic_day_logs_no_token_secret_or_email(day, caplog, monkeypatch):
    ws = day
    bearer = {"Authorization": f"Bearer {INGEST_TOKEN}"}
    signup_at = ws.now - timedelta(days=4)
    events = [
        track("signup_complete", "kim", signup_at, email="kim.lee@bigco.com", first_name="Kim",
              company_name="BigCo", company_size=800),
        track("activation_complete", "kim", signup_at + timedelta(hours=1)),
        track("invite_sent", "kim", signup_at + timedelta(hours=2), invitee_email="pat@bigco.com"),
        track("invite_sent", "kim", signup_at + timedelta(hours=3), invitee_email="sam@bigco.com"),
        track("integration_connected", "kim", signup_at + timedelta(days=1), integration_type="dbt"),
        track("signup_complete", "ed", signup_at, email="not-an-email@", company_size=10),  # rejected
        {"type": "identify", "userId": "ed", "traits": {"email": "ed@bigco.com"}},  # rejected
    ]
    # Ingestion: a batch with some rejected calls, a track call, a wrong token, a Basic-auth call.
    assert ws.http.post("/v1/batch", json={"batch": events}, headers=bearer).status_code == 400
    assert ws.http.post("/v1/track", json=track("session_start", "kim", ws.now), headers=bearer).status_code == 200
    assert ws.http.post("/v1/track", json=events[0], headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
                        ).status_code == 401
    assert ws.http.post("/v1/track", json=events[0], headers={"Authorization": f"Basic {WRONG_TOKEN}"}
                        ).status_code == 401
    # The alerts go out through the stand-in; Sarah's lead too (her email is in it).
    pql_id = ws.lead()
    ws.deliver()
    # People in Slack: claim by email, work the lead, typing emails into notes and reasons.
    assert ws.command(ANA, Command.CLAIM, "sarah@acme.com").status_code == 200
    assert ws.command(ANA, Command.PQL, f"why PQL-{pql_id}").status_code == 200
    ws.click(ANA, Action.DETAILS, pql_id)
    ws.click(ANA, Action.LOG_TOUCH, pql_id)
    note = {Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"selected_option": {"value": "email"}}},
            Input.TOUCH_EMAIL: {Input.TOUCH_EMAIL: {"selected_option": {"value": "email1"}}},
            Input.TOUCH_NOTE: {Input.TOUCH_NOTE: {"value": "cc'd her boss jo.boss@acme.com"}}}
    assert ws.submit(ANA, View.LOG_TOUCH, pql_id, note).status_code == 200
    reason = {Input.DISPOSITION: {Input.DISPOSITION: {"selected_option": {"value": "disqualified"}}},
              Input.DISPOSITION_REASON: {Input.DISPOSITION_REASON: {"value": "student: sarah@student.edu"}}}
    assert ws.submit(BOSS, View.SET_DISPOSITION, pql_id, reason).status_code == 200
    ws.deliver()
    # Requests that are not Slack's: forged, stale (both carrying an email), replayed.
    assert ws.command(ANA, Command.CLAIM, "kim.lee@bigco.com", secret="guessed").status_code == 401
    assert ws.command(ANA, Command.CLAIM, "kim.lee@bigco.com", timestamp=time.time() - 600).status_code == 401
    # Store errors, with the values a driver quotes in its message: ingestion answers 503, a command says sorry.
    statement_error = OperationalError("SELECT * FROM trial_users WHERE email = %(email)s",
                                       {"email": "kim.lee@bigco.com"}, Exception("server closed: kim.lee@bigco.com"))
    with monkeypatch.context() as patched:
        patched.setattr(ws.pipeline, "ingest", _raise(statement_error))
        assert ws.http.post("/v1/track", json=track("session_start", "kim", ws.now - timedelta(minutes=5)),
                            headers=bearer).status_code == 503
    duplicate = IntegrityError("INSERT INTO touches ...", {"note": "jo.boss@acme.com"},
                               Exception('Key (email)=(jo.boss@acme.com) already exists'))
    with monkeypatch.context() as patched:
        patched.setattr(leads, "find", _raise(duplicate))
        assert ws.command(ANA, Command.CLAIM, "kim.lee@bigco.com").status_code == 200
    assert "incident" in ws.said()[-1]

    assert [r for r in caplog.records if r.levelno >= logging.INFO], "the flow logged nothing: is capture on?"
    assert leaks(caplog.records) == []


def _raise(error: Exception):
    def fail(*args, **kwargs):
        raise error

    return fail


def test_bolts_own_signature_check_no_longer_logs_the_body_it_refuses(caplog):
    """Bolt logs a refused request's whole body at INFO; slack_route refuses first, and the filter
    installed with the app keeps Bolt's line free of the body if a request ever reaches it."""
    from slack_bolt.middleware.request_verification import RequestVerification
    from slack_bolt.request import BoltRequest
    from slack_bolt.response import BoltResponse

    from bot.slack.app import _quiet_bolt_verification

    _quiet_bolt_verification()
    caplog.set_level(logging.INFO)
    body = "command=%2Fclaim&text=kim.lee%40bigco.com&user_id=U0ANA"
    request = BoltRequest(body=body, headers={"x-slack-request-timestamp": str(int(time.time())),
                                              "x-slack-signature": "v0=forged"})
    response = RequestVerification(SECRET).process(req=request, resp=BoltResponse(status=404), next=lambda: None)
    assert response.status == 401
    assert any("Invalid request signature" in r.getMessage() for r in caplog.records)
    assert leaks(caplog.records) == [] and "forged" not in caplog.text
