"""Seed 002's rollback plan, "pause PQL routing": the manager's switch for the whole team (issue 19)."""

from __future__ import annotations

import pytest

from bot.services import leads, switches
from bot.services.leads import Refused
from bot.store.models import Pql
from tests.services.test_routing import ANA, BEN, BOSS, Team, ny


@pytest.fixture
def team(engine) -> Team:
    return Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)])


def throw(team: Team, user: str, paused: bool, at) -> str:
    with team.pipeline.session() as session, session.begin():
        who = leads.actor(session, user, manager=BOSS)
        return switches.set_routing_paused(session, who, paused, now=at)


def test_only_the_manager_pauses_routing_for_the_whole_team(team):
    with pytest.raises(Refused, match="Only the sales manager can pause or resume routing"):
        throw(team, ANA, True, ny(2026, 11, 4, 9))
    assert "Routing is paused for the whole team" in throw(team, BOSS, True, ny(2026, 11, 4, 9))
    assert "already paused" in throw(team, BOSS, True, ny(2026, 11, 4, 9, 5))
    with team.pipeline.session() as session:
        switch = switches.get(session, switches.ROUTING)
        assert (switch.by, switch.at) == (BOSS, ny(2026, 11, 4, 9))


def test_while_paused_leads_are_recorded_and_alerted_but_nobody_is_assigned_and_the_queue_waits(team):
    throw(team, BOSS, True, ny(2026, 11, 4, 9))
    medium, fast = team.lead(ny(2026, 11, 4, 10)), team.lead(ny(2026, 11, 4, 10, 5), tier="fast_lane")
    for pql_id in (medium, fast):
        lead = team.pql(pql_id)
        assert (lead.state, lead.rep_id) == ("queued", None)
        [queued] = team.audit(pql_id, "pql_queued")
        assert queued["why"].startswith("routing is paused for the whole team")
    assert {n.key for n in team.notices("alert")} >= {f"alert:{medium}", f"alert:{fast}"}  # still in the channel
    assert team.notices("dm") == []  # the manager paused it: nobody is told it could not be routed
    assert team.drain(ny(2026, 11, 4, 11)) == []
    assert team.assignments() == []

    assert "Routing is back on" in throw(team, BOSS, False, ny(2026, 11, 4, 12))
    given = team.drain(ny(2026, 11, 4, 12, 1))
    assert [pql_id for pql_id, _ in given] == [fast, medium]  # in priority order, as after a weekend
    assert {team.rep_of(fast), team.rep_of(medium)} <= {ANA, BEN}


def test_nothing_is_escalated_while_routing_is_paused(team):
    from types import SimpleNamespace

    from bot.settings import Settings
    from bot.sweeps.escalate import escalate

    pql_id = team.lead(ny(2026, 11, 4, 10))  # assigned, never touched
    assert team.rep_of(pql_id) in (ANA, BEN)
    throw(team, BOSS, True, ny(2026, 11, 4, 10, 30))
    settings = Settings(_env_file=None, pql_timezone="America/New_York", pql_manager=BOSS,
                        pql_reps=f"{ANA},{BEN}", pql_alerts_channel="#pql-alerts")
    sweeps = SimpleNamespace(pipeline=team.pipeline, router=team.router, settings=settings)
    late = ny(2026, 11, 5, 15)  # a day on: the SLA long missed
    assert escalate(sweeps, late) == 0
    throw(team, BOSS, False, ny(2026, 11, 5, 15, 1))
    assert escalate(sweeps, late) > 0
    with team.pipeline.session() as session:
        assert session.get(Pql, pql_id).state != "queued"
