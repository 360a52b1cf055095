"""`pqlbot doctor` as someone setting pqlbot up runs it: against a local Slack stand-in (tests/standin.py) that
answers as Slack does, each problem has its line with the fix, and the exit code says whether all is well."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.doctor import BOT_SCOPES
from tests.conftest import POSTGRES_URL, own_database
from tests.standin import ALERTS_CHANNEL_ID, MANIFEST_SCOPES, SlackStandIn

GOOD = {
    "INGEST_TOKEN": "a-long-random-ingest-token-0123456789",
    "SLACK_BOT_TOKEN": "xoxb-doctor-test",
    "SLACK_SIGNING_SECRET": "doctor-signing-secret",
    "PQL_ALERTS_CHANNEL": ALERTS_CHANNEL_ID,
    "PQL_REPS": "U0ANA:Ana Ruiz,U0BEN:Ben Okafor",
    "PQL_MANAGER": "U0BOSS",
}


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        standin.users.update({"U0ANA": "Ana Ruiz", "U0BEN": "Ben Okafor", "U0BOSS": "Maria Chen"})
        yield standin


@pytest.fixture
def good_settings(slack, monkeypatch, tmp_path):
    """Every setting but the store's right, for a Slack workspace where everything is in place."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def configured(engine, good_settings):
    """A clean configuration: a migrated store (each backend) and the right settings."""
    good_settings.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return good_settings


def doctor(capsys) -> tuple[int, list[str]]:
    code = main(["doctor"])
    return code, capsys.readouterr().out.splitlines()


def failing(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def test_a_clean_configuration_exits_0_and_says_each_part_is_fine(configured, capsys):
    code, lines = doctor(capsys)
    assert code == 0, "\n".join(lines)
    assert failing(lines) == []
    text = "\n".join(lines)
    assert "ok    store:" in text and "schema" in text and "(the newest)" in text
    assert "ok    SLACK_BOT_TOKEN: valid: the bot is UBOT" in text
    assert f"ok    PQL_ALERTS_CHANNEL: {ALERTS_CHANNEL_ID}: the bot is in it" in text
    assert "ok    PQL_REPS: U0ANA is Ana Ruiz" in text and "ok    PQL_MANAGER: U0BOSS is Maria Chen" in text
    assert lines[-1] == "All is well."


def test_a_token_slack_refuses_is_one_line_with_the_fix_and_exit_1(configured, slack, capsys):
    slack.invalid_tokens.add(GOOD["SLACK_BOT_TOKEN"])
    code, lines = doctor(capsys)
    assert code == 1
    [line] = failing(lines)
    assert line == "FAIL  SLACK_BOT_TOKEN: Slack refuses it (invalid_auth)"
    assert "Bot User OAuth Token" in lines[lines.index(line) + 1]
    assert slack.calls_to("users.info") == []  # nothing else is asked with a token that does not work


def test_a_bot_not_invited_to_the_alerts_channel_is_told_to_invite_it(configured, slack, capsys):
    slack.not_in.add(ALERTS_CHANNEL_ID)
    code, lines = doctor(capsys)
    assert code == 1
    [line] = failing(lines)
    assert line == f"FAIL  PQL_ALERTS_CHANNEL: {ALERTS_CHANNEL_ID}: not_in_channel"
    assert lines[lines.index(line) + 1] == f"      fix: invite the bot: /invite @pqlbot in {ALERTS_CHANNEL_ID}"


def test_scopes_the_manifest_asks_for_and_the_token_lacks_are_named(configured, slack, capsys):
    slack.scopes -= {"files:write", "users:read"}
    code, lines = doctor(capsys)
    assert code == 1
    assert failing(lines)[0] == "FAIL  Slack scopes: the bot token lacks files:write, users:read"
    assert "reinstall the app" in lines[lines.index(failing(lines)[0]) + 1]


def test_a_rep_who_is_no_one_in_the_workspace_is_named_and_the_others_are_fine(configured, slack, capsys):
    slack.missing_users.add("U0BEN")
    code, lines = doctor(capsys)
    assert code == 1
    assert failing(lines) == ["FAIL  PQL_REPS: U0BEN is no one in this workspace"]
    assert "ok    PQL_REPS: U0ANA is Ana Ruiz" in lines


def test_the_example_values_of_env_example_are_refused(configured, capsys):
    configured.setenv("INGEST_TOKEN", "change-me-to-a-long-random-string")
    configured.setenv("SLACK_BOT_TOKEN", "xoxb-your-bot-token")
    code, lines = doctor(capsys)
    assert code == 1
    assert failing(lines) == ["FAIL  INGEST_TOKEN: is the example value from .env.example, which anyone can read",
                              "FAIL  SLACK_BOT_TOKEN: is the example value from .env.example"]


def test_slack_unreachable_is_not_checked_rather_than_a_problem(configured, slack, capsys):
    configured.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # nothing listens there
    code, lines = doctor(capsys)
    assert code == 0
    assert any(line.startswith("??    Slack: unreachable at http://127.0.0.1:9/api/") for line in lines)
    assert lines[-1] == "No problems; 1 not checked (Slack unreachable)."


def test_a_socket_mode_token_slack_refuses_is_a_problem(configured, slack, capsys):
    configured.setenv("SLACK_APP_TOKEN", "xapp-1-revoked")
    slack.invalid_tokens.add("xapp-1-revoked")
    code, lines = doctor(capsys)
    assert code == 1
    assert failing(lines) == ["FAIL  SLACK_APP_TOKEN: Slack refuses it (invalid_auth)"]


def test_settings_that_do_not_parse_are_each_listed(configured, capsys):
    configured.setenv("PQL_BUSINESS_HOURS", "9-5")
    configured.setenv("PQL_HOLIDAYS", "2026-11-26,2026-13-01")
    code, lines = doctor(capsys)
    assert code == 1
    assert lines[:2] == ["FAIL  PQL_BUSINESS_HOURS: write business hours as HH:MM-HH:MM, e.g. 09:00-18:00",
                         "FAIL  PQL_HOLIDAYS: holiday '2026-13-01' is not a YYYY-MM-DD date"]


@pytest.mark.parametrize("backend", ["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
def test_a_store_never_migrated_is_told_to_run_db_upgrade(good_settings, capsys, tmp_path, backend):
    def check(url: str) -> None:
        good_settings.setenv("DATABASE_URL", url)
        code, lines = doctor(capsys)
        assert code == 1
        [line] = failing(lines)
        assert "at schema revision none (empty), the newest is" in line
        assert "run `pqlbot db upgrade`" in lines[lines.index(line) + 1]

    if backend == "sqlite":
        path = tmp_path / "empty.db"
        sa.create_engine(f"sqlite:///{path}").connect().close()  # the file exists, with no schema
        check(f"sqlite:///{path}")
    else:
        with own_database(f"pqlbot_doctor_empty_{os.getpid()}") as url:
            check(url)


def test_an_unreachable_store_is_a_problem(good_settings, capsys):
    good_settings.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    code, lines = doctor(capsys)
    assert code == 1
    assert failing(lines)[0].startswith("FAIL  store: postgresql+psycopg://nobody@127.0.0.1:9/none is unreachable")


def test_the_scopes_doctor_expects_are_the_manifests_and_the_stand_ins():
    import yaml

    from tests.slack.test_manifest import ROOT

    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES == MANIFEST_SCOPES


TEAMS = """
default = "sdr"

[teams.sdr]
label = "SDR pool"
escalate_to = "U0BOSS"
members = [{ id = "U0ANA", name = "Ana Ruiz" }]

[teams.emea]
label = "EMEA desk"
timezone = "Europe/Berlin"
holidays = ["2026-12-24"]
members = [{ id = "U0BEN", name = "Ben Okafor", timezone = "Europe/Berlin" }]
"""


def test_with_a_teams_file_each_team_is_checked_and_one_with_nobody_to_escalate_to_is_named(configured, slack,
                                                                                           tmp_path, capsys):
    (tmp_path / "teams.toml").write_text(TEAMS)
    configured.setenv("PQL_TEAMS_FILE", str(tmp_path / "teams.toml"))
    configured.delenv("PQL_MANAGER")  # the teams file says who hears of escalations
    code, lines = doctor(capsys)
    assert code == 1
    text = "\n".join(lines)
    assert "ok    team emea: 09:00-18:00 Monday to Friday, Europe/Berlin; holidays 2026-12-24; 1 member, cap 5" in text
    assert "ok    team sdr escalate_to: U0BOSS is Maria Chen" in text
    assert "PQL_MANAGER" not in text
    [line] = failing(lines)
    assert line.startswith("FAIL  team emea: no escalate_to")
    assert "escalate_to" in lines[lines.index(line) + 1]


ROUTES = TEAMS.replace('label = "EMEA desk"', 'label = "EMEA desk"\nescalate_to = "U0BOSS"') + """
[[routes]]
why = "demo asks: the EMEA desk"
fast_lane = true
team = "emea"

[[routes]]
why = "active buyers, SMB"
triggers = ["active_buyers", "seat_surge"]
team = "sdr"
"""


def test_a_routing_row_naming_a_trigger_the_rules_lack_is_named_with_its_line_and_the_likely_name(configured, slack,
                                                                                                  tmp_path, capsys):
    # A typo in a trigger's name made a row that never matched: its leads went on down the matrix, and nothing said so.
    (tmp_path / "teams.toml").write_text(ROUTES)
    configured.setenv("PQL_TEAMS_FILE", str(tmp_path / "teams.toml"))
    code, lines = doctor(capsys)
    assert code == 1
    [line] = failing(lines)
    assert line == (f"FAIL  PQL_TEAMS_FILE {tmp_path / 'teams.toml'} line 21, routing row 2: names the trigger "
                    "'active_buyers', which the rules do not have: the row never matches it")
    fix = lines[lines.index(line) + 1]
    assert fix == "      fix: did you mean 'active_buyer'? `pqlbot rules` lists the rules' triggers"
    assert not any(line.startswith("ok    routing matrix") for line in lines)

    (tmp_path / "teams.toml").write_text(ROUTES.replace("active_buyers", "active_buyer"))
    code, lines = doctor(capsys)
    assert code == 0
    assert "ok    routing matrix: 2 rows, first match wins, then the team sdr; every trigger it names is in the rules" \
        in lines


def test_the_shipped_example_teams_file_names_only_triggers_the_shipped_rules_have():
    from bot.domain.teams import parse
    from scoring import load_rules
    from tests.slack.test_manifest import ROOT

    teams = parse((ROOT / "examples" / "teams.toml").read_text())
    assert teams.routes and any(route.triggers for route in teams.routes)
    assert teams.unknown_triggers(load_rules(None).triggers) == []
    assert teams.unknown_triggers(["active_buyer"]) != []


def test_a_rules_file_reading_an_event_name_no_call_arrives_under_is_pointed_at_without_failing(configured, slack,
                                                                                               tmp_path, capsys):
    from scoring import DEFAULT_RULES

    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text().replace('event = "seats_provisioned"', 'event = "seat_provisioned"'))
    configured.setenv("PQL_RULES_FILE", str(rules))
    code, lines = doctor(capsys)
    assert code == 0  # maybe the product's own event: said, not failed
    [line] = [line for line in lines if line.startswith("ok    rules:")]
    assert line.endswith("; 1 event name to look at ('seat_provisioned'): `pqlbot rules check` says why")
