"""Teams and the routing matrix as a file (bot/domain/teams.py): the shipped example, row by row, and the errors a
broken file gets."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

import pytest

from bot.domain.business_time import BusinessCalendar
from bot.domain.routing import FastLane
from bot.domain.teams import LeadFacts, TeamsFileError, parse, single_team
from tests.scoring.builders import NY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "teams.toml"
SHIPPED = parse(EXAMPLE.read_text(encoding="utf-8"), "examples/teams.toml")

# (matrix row, a lead it is written for, the team it goes to): seed 000's table and seed 004's ACV bands.
ROWS = [
    (1, LeadFacts("fast_lane", "buying", "smb", 5_000, "user", ()), "fast_lane"),
    (1, LeadFacts("fast_lane", None, "enterprise", 62_500, "account", ("seat_surge",)), "fast_lane"),
    (2, LeadFacts("high", "buying", "mid_market", 20_000, "account", ("seat_surge",)), "ae"),
    (2, LeadFacts("medium", "buying", "enterprise", 50_000, "account", ("team_activation",)), "ae"),
    (3, LeadFacts("high", "blocker", "enterprise", 50_000, "user", ("stuck_enterprise",)), "solutions"),
    (4, LeadFacts("medium", "blocker", "mid_market", 20_000, "user", ("icp_not_activated",)), "cs"),
    (4, LeadFacts("medium", "blocker", "smb", 5_000, "user", ("basic_onboarding_no_return",)), "cs"),
    (5, LeadFacts("high", "buying", "enterprise", 50_000, "user", ("active_buyer",)), "ae"),
    (5, LeadFacts("high", "buying", "mid_market", 30_000, "user", ("limit_then_upgrade",)), "ae"),
    (6, LeadFacts("high", "buying", "smb", 5_000, "user", ("active_buyer",)), "sdr"),
    (7, LeadFacts("high", "buying", "mid_market", 29_999, "user", ("active_buyer",)), "inside_sales"),
    (None, LeadFacts("medium", "buying", "mid_market", 20_000, "user", ("limit_then_upgrade",)), "sdr"),
    (None, LeadFacts("medium", None, None, None, "user", ()), "sdr"),
]


@pytest.mark.parametrize(("row", "lead", "team"), ROWS, ids=[f"row{r or '-default'}-{t}" for r, _, t in ROWS])
def test_each_row_of_the_shipped_matrix_sends_its_leads_to_its_team(row, lead, team):
    choice = SHIPPED.choose(lead)
    assert (choice.row, choice.team.name) == (row, team)
    assert (f"routing matrix row {row}" if row else "the default team") in choice.why


def test_every_row_of_the_shipped_matrix_is_exercised_above():
    assert {row for row, _, _ in ROWS if row} == set(range(1, len(SHIPPED.routes) + 1))


def test_the_shipped_teams_carry_seed_000_s_response_targets_and_seed_004_s_ae_threshold():
    teams = SHIPPED.teams
    assert teams["fast_lane"].first_touch["fast_lane"] == timedelta(hours=1)
    assert teams["ae"].first_touch["high"] == timedelta(hours=18)  # 48 h: two business days of 9 hours
    assert teams["sdr"].first_touch == {"fast_lane": timedelta(hours=1), "high": timedelta(hours=2),
                                        "medium": timedelta(hours=4)}  # seed 002's, not given
    assert (teams["ae"].handoff.when, teams["ae"].handoff.min_acv) == ("meeting_set", 30_000)
    assert teams["cs"].handoff.when == "routed_to_cs"
    assert teams["cs"].alert_channel == "#cs-alerts" and teams["sdr"].alert_channel == "#pql-alerts"
    assert teams["ae"].manager is None and teams["ae"].escalation_channel == "#ae-desk"
    assert teams["solutions"].calendar.tz.key == "Europe/London"
    assert teams["fast_lane"].calendar.opens == time(8) and teams["fast_lane"].on_call == "U0NOOR"


def test_without_a_file_the_pilot_settings_make_one_team_of_everyone_and_no_matrix():
    calendar = BusinessCalendar(NY, time(8), time(17), frozenset({date(2026, 11, 26)}))
    teams = single_team(calendar, cap=3, manager="U0BOSS", fast_lane=FastLane(on_call="U0ANA"))
    [team] = teams.teams.values()
    assert teams.is_single and team.member_ids is None  # everyone on PQL_REPS
    assert team.calendar is calendar and team.daily_cap == 3 and team.manager == "U0BOSS"
    assert team.on_call == "U0ANA" and team.alert_channel == "#pql-alerts"
    assert teams.choose(LeadFacts("fast_lane")).team is team


def _broken(old: str, new: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(TeamsFileError) as refused:
        parse(text.replace(old, new, 1), "teams.toml")
    return str(refused.value)


def test_a_broken_team_is_refused_naming_the_line_the_team_and_the_setting():
    said = _broken('daily_cap = 3\nescalate_to = "#ae-desk"', 'daily_cap = 0\nescalate_to = "#ae-desk"')
    assert said.startswith("teams.toml line 55, team ae: daily_cap:")
    assert "greater than or equal to 1" in said


def test_a_broken_row_is_refused_naming_its_line_and_number():
    said = _broken('bands = ["smb"]', 'bands = ["small"]')
    assert said.startswith("teams.toml line 129, routing row 6: bands")


@pytest.mark.parametrize(("old", "new", "says"), [
    ('team = "inside_sales"', 'team = "inside"', "routes[7]: team 'inside' is not one of the teams"),
    ('default = "sdr"', 'default = "nobody"', "default: 'nobody' is not one of the teams"),
    ('on_call = "U0NOOR"', 'on_call = "U0ZED"', "on_call U0ZED is not one of the team's members"),
    ('timezone = "Europe/London"', 'timezone = "Mars/Olympus"', "unknown timezone 'Mars/Olympus'"),
    ('fast_lane = "1h"', 'fast_lane = "soon"', "write a business-time duration as 30m or 4h"),
    ('business_hours = "08:00-20:00"', 'business_hours = "20:00-08:00"', "must open before they close"),
    ('escalate_to = "#ae-desk"', 'escalate_to = "ae desk"', "neither a Slack user id"),
    ('daily_cap = 8', 'daily_cap = 8\nrota = "weekly"', "rota: not a setting a team has"),
    ('{ id = "U0FAY"', '{ id = "fay"', "'fay' is not a Slack user id"),
    ('acv_min = 30000', 'acv_min = 30000\nacv_max = 20000', "acv_min 30000 must be under acv_max 20000"),
    ('default = "sdr"', 'default = "sdr', "not valid TOML"),
])
def test_every_kind_of_mistake_is_refused_with_what_is_wrong(old, new, says):
    assert says in _broken(old, new)
