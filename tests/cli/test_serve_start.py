"""`pqlbot serve` at start: doctor's checks run, a problem that waiting will not mend stops it in one line, a Slack
outage does not, and one line says what it runs with. Socket Mode fails cleanly and reconnects in the background.

uvicorn.run is replaced by a recorder: what is tested is what happens before the server would listen."""

from __future__ import annotations

import logging
import threading

import pytest

from bot.cli import main
from bot.slack.socket_mode import Connection, SocketModeRefused
from tests.cli.test_doctor import GOOD
from tests.standin import SlackStandIn


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def listening(monkeypatch):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    return started


@pytest.fixture
def env(store_url, slack, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    monkeypatch.setenv("RESCORE_EVERY_HOURS", "1000")
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_serve_logs_one_summary_line_of_what_it_runs_with(env, listening, caplog):
    caplog.set_level(logging.INFO, "pqlbot")
    assert main(["serve", "--port", "3999"]) == 0
    assert listening == [{"host": "0.0.0.0", "port": 3999, "log_level": "info", "access_log": False}]
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serve: ")]
    assert summary.startswith("serve: Slack over HTTP at /slack/events, alerts to C0ALERTS; store ")
    assert summary.endswith("; 2 reps and a manager; the default rules; doctor: no problems")


def test_a_bot_token_slack_refuses_stops_serve_with_doctors_line(env, slack, listening, capsys):
    slack.invalid_tokens.add(GOOD["SLACK_BOT_TOKEN"])
    assert main(["serve"]) == 1
    assert listening == []
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("pqlbot serve: SLACK_BOT_TOKEN: Slack refuses it (invalid_auth): paste the current")


def test_the_example_ingest_token_stops_serve(env, listening, capsys):
    env.setenv("INGEST_TOKEN", "change-me-to-a-long-random-string")
    assert main(["serve"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("pqlbot serve: INGEST_TOKEN: is the example value from .env.example")


def test_socket_mode_with_a_bad_app_token_exits_1_in_one_line(env, slack, listening, capsys):
    env.setenv("SLACK_APP_TOKEN", "xapp-1-revoked")
    slack.invalid_tokens.add("xapp-1-revoked")
    assert main(["serve"]) == 1
    assert listening == []
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("pqlbot serve: SLACK_APP_TOKEN: Slack refuses it (invalid_auth): generate a new")


def test_a_slack_outage_at_start_does_not_stop_serve(env, listening, caplog):
    env.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
    caplog.set_level(logging.INFO, "pqlbot")
    assert main(["serve"]) == 0
    assert len(listening) == 1
    assert any("Slack: unreachable at http://127.0.0.1:9/api/" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
    assert any(r.getMessage().endswith("doctor: no problems, 1 not checked") for r in caplog.records)


class Handler:
    """Stands in for Bolt's SocketModeHandler: each connect() takes the next outcome."""

    def __init__(self, *outcomes):
        self.outcomes, self.attempts, self.closed = list(outcomes), 0, False
        self.done = threading.Event()

    def connect(self):
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.done.set()

    def close(self):
        self.closed = True


def test_socket_mode_keeps_trying_in_the_background_while_slack_is_unreachable(caplog):
    handler = Handler(ConnectionRefusedError(), ConnectionRefusedError())
    connection = Connection(handler, first_wait=0.01, longest_wait=0.02)
    connection.start()  # returns at once: ingestion starts meanwhile
    assert handler.done.wait(5) and connection.connected.wait(5)
    assert handler.attempts == 3
    connection.close()
    assert handler.closed
    assert "Socket Mode: cannot connect to Slack (ConnectionRefusedError), retrying" in caplog.text


def test_socket_mode_with_a_token_slack_refuses_raises_one_line(slack):
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.slack.gateway import make_client

    slack.invalid_tokens.add("xapp-1-revoked")
    app = App(client=make_client("xoxb-ok", slack.url), token_verification_enabled=False, signing_secret="x")
    connection = Connection(SocketModeHandler(app, "xapp-1-revoked"))
    try:
        with pytest.raises(SocketModeRefused) as refused:
            connection.start()
    finally:
        connection.close()
    assert str(refused.value).startswith("SLACK_APP_TOKEN: Slack refuses it (invalid_auth)")
    assert "\n" not in str(refused.value)


def test_with_teams_the_summary_names_the_teams_not_a_missing_manager(env, listening, caplog, tmp_path):
    # With a teams file each team's escalate_to hears of its escalations: "no manager" sent people to PQL_MANAGER.
    teams = tmp_path / "teams.toml"
    teams.write_text('default = "sdr"\n[teams.sdr]\nescalate_to = "U0BOSS"\nmembers = [{ id = "U0ANA" }]\n'
                     '[teams.ae]\nescalate_to = "U0BOSS"\nmembers = [{ id = "U0BEN" }]\n')
    env.setenv("PQL_TEAMS_FILE", str(teams))
    env.delenv("PQL_MANAGER", raising=False)
    caplog.set_level(logging.INFO, "pqlbot")
    assert main(["serve", "--port", "3999"]) == 0
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serve: ")]
    assert "; 2 reps and 2 teams (sdr, ae); the default rules; doctor: " in summary
