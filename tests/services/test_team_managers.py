"""A team's manager (its escalation target when it is a person, bot/domain/teams.py) does for their own team's leads
what the sales manager does for every lead: reassign, claim for a rep past their cap, release, work the lead; for
other teams' leads they are refused as a rep would be, and off the roster they learn nothing of them. Both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.services import leads
from bot.services.leads import Refused
from bot.store.models import Pql
from tests.scoring.builders import NY
from tests.services.test_teams_routing import ANA, BOSS, EMEA_BOSS, NOOR, OLA, Desk, ny

MONDAY = ny(2026, 11, 9, 10)  # 16:00 in Berlin: both teams open


@pytest.fixture
def desk(engine) -> Desk:
    return Desk(engine)


def act(desk: Desk, who: str, work, pql: Pql | None = None):
    """Run `work(session, lead, actor)` as `who` (the sales manager is BOSS, who also manages New York)."""
    with desk.pipeline.session() as session, session.begin():
        actor = leads.actor(session, who, manager=BOSS, teams=desk.teams)
        return work(session, session.get(Pql, pql.id) if pql else None, actor)


def refusal(desk: Desk, who: str, work, pql: Pql | None = None) -> str:
    with pytest.raises(Refused) as refused:
        act(desk, who, work, pql)
    return str(refused.value)


def test_a_team_s_manager_reassigns_claims_for_and_releases_their_own_team_s_leads(desk):
    lead = desk.lead(MONDAY, big=True)  # the EMEA desk's, by the matrix
    holder = lead.rep_id
    other = OLA if holder == NOOR else NOOR
    act(desk, EMEA_BOSS, lambda s, p, who: leads.reassign(s, p, who, other, now=MONDAY + timedelta(minutes=5)), lead)
    assert desk.pql(lead.id).rep_id == other
    act(desk, EMEA_BOSS, lambda s, p, who: leads.release(s, p, who, now=MONDAY + timedelta(minutes=6)), lead)
    assert (desk.pql(lead.id).rep_id, desk.pql(lead.id).state) == (None, "queued")
    act(desk, EMEA_BOSS, lambda s, p, who: leads.claim(s, p, who, now=MONDAY + timedelta(minutes=7), tz=NY,
                                                       cap=0, for_rep=holder), lead)  # past a cap of 0
    now = desk.pql(lead.id)
    assert (now.claimed_by, now.state) == (holder, "claimed")
    [claimed] = desk.audit(lead.id, "pql_claimed")
    assert (claimed["rep"], claimed["on_behalf"]) == (holder, True)
    act(desk, EMEA_BOSS, lambda s, p, who: leads.log_touch(s, p, who, channel="call", email_key=None, note="left a VM",
                                                           now=MONDAY + timedelta(minutes=8)), lead)
    assert desk.pql(lead.id).state == "working"


def test_for_another_team_s_lead_a_team_s_manager_is_refused_as_a_rep_would_be(desk):
    lead = desk.lead(MONDAY)  # New York's
    holder = lead.rep_id
    as_rep = refusal(desk, NOOR, lambda s, p, who: leads.reassign(s, p, who, ANA, now=MONDAY), lead)
    assert as_rep == "Only the sales manager can reassign leads."
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.reassign(s, p, who, ANA, now=MONDAY), lead) == as_rep
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.release(s, p, who, now=MONDAY), lead) == \
        "Only the sales manager can release leads."
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.claim(s, p, who, now=MONDAY, tz=NY, cap=5,
                                                                  for_rep=holder), lead) == \
        "Only the sales manager can claim a lead on someone's behalf."
    assert desk.pql(lead.id).rep_id == holder and desk.pql(lead.id).claimed_by is None


def test_a_team_s_manager_gives_their_leads_to_their_own_members_only_the_sales_manager_to_anyone(desk):
    lead = desk.lead(MONDAY, big=True)
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.reassign(s, p, who, ANA, now=MONDAY), lead) == (
        f"<@{ANA}> isn't on EMEA desk: as its manager you give its leads to its members (the sales manager can give "
        "them to anyone).")
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.claim(s, p, who, now=MONDAY, tz=NY, cap=5,
                                                                  for_rep=ANA), lead).startswith(f"<@{ANA}> isn't on")
    act(desk, BOSS, lambda s, p, who: leads.reassign(s, p, who, ANA, now=MONDAY + timedelta(minutes=1)), lead)
    assert desk.pql(lead.id).rep_id == ANA


def test_off_the_roster_a_team_s_manager_sees_their_team_s_leads_and_nothing_of_any_other(desk):
    mine, theirs = desk.lead(MONDAY, big=True), desk.lead(MONDAY + timedelta(minutes=1))
    act(desk, EMEA_BOSS, lambda s, p, who: leads.require_roster(who) or leads.require_sight(who, p), mine)
    off_roster = "Only reps on the PQL roster can do that. Ask your sales manager to add you."
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.require_sight(who, p), theirs) == off_roster
    assert refusal(desk, EMEA_BOSS, lambda s, p, who: leads.require_sight(who, None)) == off_roster  # no lead at all
    assert refusal(desk, "U0NOBODY", lambda s, p, who: leads.require_roster(who)) == off_roster

