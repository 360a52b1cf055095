"""A refused Slack request is logged at WARNING with why (bad signature, a stale timestamp and by how much,
a replay), never with the secret, the signature or the body, and a flood writes a few lines, not one each."""

from __future__ import annotations

import logging
import time

from bot.slack.verify import RefusalLog
from tests.security.test_slack_signatures import command_body, headers, post
from tests.slack.conftest import ANA, SECRET


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith("slack: refused")]


def test_a_forged_request_is_logged_as_a_bad_signature_without_the_secret_or_the_body(workspace, caplog):
    caplog.set_level(logging.WARNING)
    body = command_body(workspace, ANA, "/claim", "jane.secret@example.com")
    sent = headers(body, secret="not-the-signing-secret")
    assert post(workspace, body, sent).status_code == 401
    [line] = refusals(caplog)
    assert line.startswith("slack: refused a request (401): bad signature: SLACK_SIGNING_SECRET is not the Signing "
                           "Secret of the app that sent it")
    for secret in (SECRET, "not-the-signing-secret", sent["X-Slack-Signature"], "jane.secret", "example.com"):
        assert secret not in caplog.text


def test_a_stale_request_is_logged_with_the_skew_in_seconds(workspace, caplog):
    caplog.set_level(logging.WARNING)
    body = command_body(workspace, ANA, "/pql", "help")
    assert post(workspace, body, headers(body, stamp=int(time.time()) - 425)).status_code == 401
    assert post(workspace, body, headers(body, stamp=int(time.time()) + 3600)).status_code == 401
    behind, ahead = refusals(caplog)
    assert "stale timestamp: 425 s behind this server's clock (Slack allows 300 s)" in behind \
        or "stale timestamp: 426 s behind" in behind  # a second may tick between signing and checking
    assert "stale timestamp: 3600 s ahead of this server's clock" in ahead or "3599 s ahead" in ahead
    assert "NTP" in behind


def test_a_replay_is_logged_as_one(workspace, caplog):
    caplog.set_level(logging.WARNING)
    body = command_body(workspace, ANA, "/pql", "help")
    sent = headers(body)
    assert post(workspace, body, sent).status_code == 200
    assert post(workspace, body, sent).status_code == 401
    [line] = refusals(caplog)
    assert line.startswith(f"slack: refused a replayed request (timestamp {sent['X-Slack-Request-Timestamp']})")


def test_a_request_without_slacks_headers_is_logged_as_not_from_slack(workspace, caplog):
    caplog.set_level(logging.WARNING)
    assert workspace.http.post("/slack/events", content=b"x=1").status_code == 401
    assert refusals(caplog) == ["slack: refused a request (401): no X-Slack-Request-Timestamp or X-Slack-Signature "
                                "header: not sent by Slack"]


def test_a_flood_of_forged_requests_writes_a_few_lines_a_minute_and_then_says_how_many_were_left_out(workspace,
                                                                                                        caplog):
    caplog.set_level(logging.WARNING)
    body = command_body(workspace, ANA, "/pql", "help")
    for _ in range(40):
        assert post(workspace, body, headers(body, secret="forged")).status_code == 401
    assert len(refusals(caplog)) == 5


def test_the_refusal_log_opens_a_new_spell_after_a_minute_and_counts_what_it_left_out(caplog):
    now = [0.0]
    refusals_log = RefusalLog(logging.getLogger("test.refusals"), every=60, per_reason=2, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.refusals")
    written = [refusals_log.refused("bad signature", "a request (401): bad signature") for _ in range(10)]
    assert written == [True, True] + [False] * 8
    assert refusals_log.refused("stale timestamp", "a request (401): stale timestamp")  # its own allowance
    now[0] = 61
    assert refusals_log.refused("bad signature", "a request (401): bad signature")
    assert caplog.records[-1].getMessage() == ("slack: refused a request (401): bad signature "
                                               "(8 more like it not logged)")
