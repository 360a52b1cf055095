"""Seed 002's rollback plan, "pause PQL routing": the manager's switch for the whole team (issue 19)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from freezegun import freeze_time

from bot.services import leads, switches
from bot.services.leads import Refused
from bot.settings import Settings
from bot.store.models import Pql
from bot.sweeps.escalate import escalate
from bot.sweeps.stale_claims import stale_claims
from tests.scoring.builders import NY
from tests.services.test_routing import ANA, BEN, BOSS, Team, ny
from tests.sweeps.test_holds import event


@pytest.fixture
def team(engine) -> Team:
    return Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)])


def throw(team: Team, user: str, paused: bool, at) -> str:
    with team.pipeline.session() as session, session.begin():
        who = leads.actor(session, user, manager=BOSS)
        return switches.set_routing_paused(session, who, paused, now=at, teams=team.router.teams)


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


def sweeps_for(team: Team) -> SimpleNamespace:
    settings = Settings(_env_file=None, pql_timezone="America/New_York", pql_manager=BOSS,
                        pql_reps=f"{ANA},{BEN}", pql_alerts_channel="#pql-alerts")
    return SimpleNamespace(pipeline=team.pipeline, router=team.router, settings=settings)


def escalations(team: Team, pql_id: int) -> list[str]:
    """The escalation notices a lead has had: esc-here, esc-2h, esc-sla (and any digest naming it)."""
    return sorted(n.key.split(":")[0] for n in team.notices() if n.key.startswith("esc-") and n.pql_id == pql_id)


def test_nothing_is_escalated_while_routing_is_paused_nor_at_once_when_it_resumes(team):
    pql_id = team.lead(ny(2026, 11, 4, 10))  # assigned, never touched: its @here due at 11:00
    assert team.rep_of(pql_id) in (ANA, BEN)
    throw(team, BOSS, True, ny(2026, 11, 4, 10, 30))  # 30 minutes into its hour
    sweeps = sweeps_for(team)
    assert escalate(sweeps, ny(2026, 11, 5, 15)) == 0  # a day on: its SLA long missed, and nothing said
    throw(team, BOSS, False, ny(2026, 11, 5, 15))
    assert escalate(sweeps, ny(2026, 11, 5, 15, 1)) == 0  # the pause did not count: 30 minutes still to go
    assert escalate(sweeps, ny(2026, 11, 5, 15, 30)) > 0
    assert escalations(team, pql_id) == ["esc-here"]
    with team.pipeline.session() as session:
        assert session.get(Pql, pql_id).state != "queued"


def test_resume_all_moves_an_unclaimed_lead_s_clocks_by_the_business_time_paused_across_a_weekend(team):
    friday = ny(2026, 11, 6, 15, 30)
    waiting = team.lead(friday)  # medium: its SLA 4 business hours on, Monday 10:30; its @here at 16:30
    claimed = team.lead(friday + timedelta(minutes=1))
    with team.pipeline.session() as session, session.begin():
        pql = session.get(Pql, claimed)
        leads.claim(session, pql, leads.actor(session, pql.rep_id, manager=BOSS), now=friday + timedelta(minutes=2),
                    tz=NY, cap=5)
    assert team.pql(waiting).sla_due_at == ny(2026, 11, 9, 10, 30)
    claimed_due = team.pql(claimed).sla_due_at
    throw(team, BOSS, True, ny(2026, 11, 6, 16))  # Friday 16:00
    sweeps = sweeps_for(team)
    with freeze_time(ny(2026, 11, 9, 10)):
        answer = throw(team, BOSS, False, ny(2026, 11, 9, 10))  # Monday 10:00: 2 h on Friday, 1 h on Monday
    assert "The business time routing was paused (up to 3 h) was added to the SLA clocks of 1 unclaimed lead" \
        in answer
    assert team.pql(waiting).sla_due_at == ny(2026, 11, 9, 13, 30)
    assert team.pql(claimed).sla_due_at == claimed_due  # its rep could work it all along
    [moved] = team.audit(waiting, "pql_clocks_moved")
    assert moved["paused_seconds"] == 3 * 3600
    escalate(sweeps, ny(2026, 11, 9, 10, 1))  # the next sweep: the claimed, untouched lead's manager's DM only
    assert escalations(team, waiting) == [] and escalations(team, claimed) == ["esc-2h"]
    assert not [n for n in team.notices() if "<!here>" in (n.text or "")]  # no @here
    escalate(sweeps, ny(2026, 11, 9, 10, 31))  # its remaining half hour to the @here ran out
    assert escalations(team, waiting) == ["esc-here"]
    escalate(sweeps, ny(2026, 11, 9, 11, 31))  # 2 business hours unclaimed: the manager hears
    assert escalations(team, waiting) == ["esc-2h", "esc-here"]
    escalate(sweeps, ny(2026, 11, 9, 13, 29))
    assert "esc-sla" not in escalations(team, waiting)
    escalate(sweeps, ny(2026, 11, 9, 13, 31))  # the moved SLA runs out
    assert "esc-sla" in escalations(team, waiting)


def test_resuming_a_second_time_moves_nothing_again(team):
    pql_id = team.lead(ny(2026, 11, 4, 10))
    throw(team, BOSS, True, ny(2026, 11, 4, 11))
    throw(team, BOSS, False, ny(2026, 11, 4, 12))
    due = team.pql(pql_id).sla_due_at
    assert "Routing was not paused" in throw(team, BOSS, False, ny(2026, 11, 4, 13))
    assert team.pql(pql_id).sla_due_at == due and len(team.audit(pql_id, "pql_clocks_moved")) == 1

def test_a_lead_claimed_after_a_resume_goes_stale_a_business_day_after_its_claim_not_later(team):
    pql_id = team.lead(ny(2026, 11, 6, 15, 30))
    throw(team, BOSS, True, ny(2026, 11, 6, 16))
    throw(team, BOSS, False, ny(2026, 11, 9, 10))  # its clocks moved on by the 3 business hours paused
    with team.pipeline.session() as session, session.begin():
        pql = session.get(Pql, pql_id)
        leads.claim(session, pql, leads.actor(session, pql.rep_id, manager=BOSS), now=ny(2026, 11, 9, 10), tz=NY,
                    cap=5)
    sweeps = sweeps_for(team)
    assert stale_claims(sweeps, ny(2026, 11, 10, 9, 59)) == 0
    assert stale_claims(sweeps, ny(2026, 11, 10, 10)) == 1  # 9 business hours after the claim: the pause was before it


def test_a_hold_that_ended_during_the_pause_is_not_counted_twice(team):
    pql_id = team.lead(ny(2026, 11, 4, 10))  # medium: first touch due by 14:00
    throw(team, BOSS, True, ny(2026, 11, 4, 11))
    user = team.pql(pql_id).user_id
    for name, at in (("support_ticket_opened", ny(2026, 11, 4, 12)), ("support_ticket_closed", ny(2026, 11, 4, 13))):
        with freeze_time(at):
            team.pipeline.ingest([event(user, name, at, ticket_id="T1")], at=at)
    assert team.pql(pql_id).sla_due_at == ny(2026, 11, 4, 15)  # the hour held
    throw(team, BOSS, False, ny(2026, 11, 4, 15))
    assert team.pql(pql_id).sla_due_at == ny(2026, 11, 4, 18)  # and the other 3 of the 4 hours paused
    assert team.pql(pql_id).held_seconds == 4 * 3600
