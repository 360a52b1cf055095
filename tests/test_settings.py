"""Settings a person sets by hand are checked when pqlbot starts, with a sentence saying what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings


def test_the_on_call_rep_is_the_fast_lanes_out_of_hours_taker():
    settings = Settings(_env_file=None, pql_reps="U0ANA:Ana Ruiz,U0BEN:Ben Okafor", pql_on_call=" U0BEN ")
    assert settings.fast_lane.on_call == "U0BEN"
    assert Settings(_env_file=None, pql_reps="U0ANA", pql_on_call="").fast_lane.on_call is None


@pytest.mark.parametrize(("on_call", "says"), [
    ("ben", "is not a Slack user id"),
    ("@ben", "is not a Slack user id"),
    ("U0CY", "is not in PQL_REPS"),
])
def test_an_on_call_rep_who_is_not_a_slack_id_on_the_roster_is_refused_with_a_clear_error(on_call, says):
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None, pql_reps="U0ANA,U0BEN", pql_on_call=on_call)


def test_a_teams_file_makes_the_roster_of_everyone_on_a_team(tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "examples" / "teams.toml"
    settings = Settings(_env_file=None, pql_reps="U0OLD", pql_teams_file=shipped)
    assert [rep for rep, _, _ in settings.roster] == ["U0ANA", "U0NOOR", "U0BEN", "U0CAL", "U0DEE", "U0EVE", "U0FAY"]
    assert ("U0NOOR", "Noor Haddad", "Europe/Berlin") in settings.roster
    assert set(settings.teams.teams) == {"fast_lane", "sdr", "inside_sales", "ae", "solutions", "cs"}
    assert Settings(_env_file=None, pql_reps="U0OLD").teams.is_single  # no file: one team, as before


def test_the_crm_and_webhook_refusals_go_to_pql_manager_else_to_the_default_teams_manager():
    shipped = Path(__file__).resolve().parents[1] / "examples" / "teams.toml"
    assert Settings(_env_file=None, pql_teams_file=shipped).integrations_manager == "U0MANAGER"  # the sdr team's
    assert Settings(_env_file=None, pql_teams_file=shipped, pql_manager="U0BOSS").integrations_manager == "U0BOSS"
    assert Settings(_env_file=None, pql_manager="U0BOSS").integrations_manager == "U0BOSS"
    assert Settings(_env_file=None).integrations_manager is None  # nobody to tell


@pytest.mark.parametrize(("text", "says"), [
    ('default = "sdr"\n[teams.sdr]\ndaily_cap = "five"\nmembers = [{ id = "U0ANA" }]\n',
     r"PQL_TEAMS_FILE .*teams.toml line 2, team sdr: daily_cap: Input should be a valid integer"),
    ('default = "sdr"\n[teams.sdr\n', r"PQL_TEAMS_FILE .*teams.toml: not valid TOML"),
])
def test_a_broken_teams_file_stops_pqlbot_at_start_naming_the_line_and_the_team(tmp_path, text, says):
    path = tmp_path / "teams.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None, pql_teams_file=path)


def test_a_missing_teams_file_is_refused_by_name(tmp_path):
    with pytest.raises(ValidationError, match="PQL_TEAMS_FILE .*nope.toml: cannot be read"):
        Settings(_env_file=None, pql_teams_file=tmp_path / "nope.toml")
