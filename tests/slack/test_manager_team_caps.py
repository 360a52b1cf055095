"""The manager's Reassign and Claim-for modals with a teams file: each rep's "x of N new today" is against the lead's
team's daily cap, counted on that team's day (its timezone's), as claiming the lead counts it, not PQL_DAILY_CAP
on PQL_TIMEZONE's day. Both stores."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.services import leads
from bot.services.routing import Router
from bot.slack.ids import Action, View
from tests.scoring.builders import NY, Trial
from tests.slack.conftest import ANA, BEN, BOSS, Workspace
from tests.slack.test_manager import options
from tests.slack.test_team_managers import opened, pick

CY = "U0CY"
TEAMS = f"""
default = "ae"

[teams.ae]
label = "Account executives"
timezone = "Europe/London"
daily_cap = 3
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor" }}]

[teams.sdr]
label = "SDR pool"
members = [{{ id = "{CY}", name = "Cy Park" }}]
"""
FRIDAY = datetime(2026, 11, 6, 10, 0, tzinfo=NY)  # 15:00 in London: the AEs are open
LONDON_MIDNIGHT = datetime(2026, 11, 6, 19, 0, tzinfo=NY)  # Saturday begins in London, still Friday in New York
MIN = timedelta(minutes=1)


def with_teams(engine, standin, tmp_path, text: str) -> Workspace:
    ws = Workspace(engine, standin, FRIDAY)  # PQL_DAILY_CAP 5 and PQL_TIMEZONE America/New_York
    path = tmp_path / "teams.toml"
    path.write_text(text, encoding="utf-8")
    ws.settings.pql_teams_file = path
    ws.pipeline.router = Router(ws.settings.calendar, cap=5, manager=BOSS, teams=ws.settings.teams)
    with ws.pipeline.session() as session, session.begin():
        leads.sync_roster(session, ws.settings.teams.members(), now=ws.now)
    return ws


@pytest.fixture
def office(engine, standin, tmp_path) -> Workspace:
    return with_teams(engine, standin, tmp_path, TEAMS)


def lead(ws: Workspace, user: str) -> int:
    trial = Trial(user, email=f"{user}@{user}.example", first_name=user.capitalize(),
                  signup=datetime(2026, 11, 3, 9, 0, tzinfo=NY)).activate(1).invite(2).integrate(2)
    return ws.lead(user, trial)


def modal(ws: Workspace, action: Action, pql_id: int) -> dict[str, str]:
    """The reps the manager's modal offers for the lead, with their labels."""
    ws.click(BOSS, action, pql_id)
    return options(opened(ws)[-1])


def test_the_modals_count_each_rep_against_the_lead_s_team_cap_on_its_day(office):
    first, second, third = (lead(office, user) for user in ("sarah", "omar", "lena"))
    given = [office.pql(pql_id).rep_id for pql_id in (first, second, third)]
    busy = max({ANA, BEN}, key=given.count)  # two leads today; the other rep one
    idle = BEN if busy == ANA else ANA
    busy_lead = (first, second, third)[given.index(busy)]
    office.now = LONDON_MIDNIGHT - MIN  # 23:59 in London
    labels = modal(office, Action.CLAIM_FOR, first)
    assert labels[busy] == f"{'Ana Ruiz' if busy == ANA else 'Ben Okafor'} · 2 of 3 new today"
    assert labels[idle].endswith(" · 1 of 3 new today")
    assert modal(office, Action.REASSIGN, busy_lead)[idle].endswith(" · 1 of 3 new today")
    office.now = LONDON_MIDNIGHT  # a new day in London (New York's is still Friday: 2 and 1 there)
    labels = modal(office, Action.CLAIM_FOR, first)
    assert labels[busy].endswith(" · 0 of 3 new today") and labels[idle].endswith(" · 0 of 3 new today")
    assert modal(office, Action.REASSIGN, busy_lead)[idle].endswith(" · 0 of 3 new today")


def test_a_rep_of_the_sdr_pool_is_counted_against_the_lead_s_team_cap_in_the_sales_manager_s_modal(office):
    pql_id = lead(office, "sarah")  # the AEs'
    assert modal(office, Action.CLAIM_FOR, pql_id)[CY] == "Cy Park · 0 of 3 new today"


def test_the_manager_s_claim_for_a_rep_uses_the_lead_s_team_and_lands_on_the_rep(office):
    pql_id = lead(office, "sarah")
    holder = office.pql(pql_id).rep_id
    other = BEN if holder == ANA else ANA
    modal(office, Action.CLAIM_FOR, pql_id)
    assert pick(office, BOSS, View.CLAIM_FOR, pql_id, other).status_code == 200
    assert (office.pql(pql_id).claimed_by, office.pql(pql_id).rep_id) == (other, other)
    assert modal(office, Action.REASSIGN, pql_id)[holder].endswith(" · 1 of 3 new today")


def test_a_teams_file_of_one_team_counts_against_that_team_s_cap(engine, standin, tmp_path):
    ws = with_teams(engine, standin, tmp_path, TEAMS.split("[teams.sdr]")[0])
    pql_id = lead(ws, "sarah")
    ws.now = LONDON_MIDNIGHT
    assert set(modal(ws, Action.CLAIM_FOR, pql_id).values()) == {"Ana Ruiz · 0 of 3 new today",
                                                                  "Ben Okafor · 0 of 3 new today"}
