"""Hand-offs to another team (bot/services/handoffs.py): SDR -> AE once a meeting is set on an account worth the AE
motion, SDR -> CS for "Routed to CS"; the receiving team's SLA starts at the hand-off; only the lead's owner or a
manager may hand it off, and every refusal says why. Both stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.services import audit, handoffs, leads
from bot.services.leads import Refused
from bot.store.models import Notice, Pql, Touch
from tests.scoring.builders import NY
from tests.services.test_teams_routing import Desk, ny

BERLIN = ZoneInfo("Europe/Berlin")
ANA, BEN, DEE, FAY, BOSS, AE_BOSS = "U0ANA", "U0BEN", "U0DEE", "U0FAY", "U0BOSS", "U0AEBOSS"

TEAMS = f"""
default = "sdr"

[teams.sdr]
label = "SDR pool"
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor" }}]

[teams.ae]
label = "Account executives"
timezone = "Europe/Berlin"
escalate_to = "{AE_BOSS}"
members = [{{ id = "{DEE}", name = "Dee Larsen", timezone = "Europe/Berlin" }}]
[teams.ae.sla]
medium = "8h"
[teams.ae.handoff]
when = "meeting_set"
min_acv = 25000

[teams.cs]
label = "Customer success"
members = [{{ id = "{FAY}", name = "Fay Quinn" }}]
[teams.cs.handoff]
when = "routed_to_cs"

[teams.nurture]
members = [{{ id = "{FAY}" }}]
"""
MONDAY = ny(2026, 11, 9, 10)  # 16:00 in Berlin


class Office(Desk):
    def __init__(self, engine) -> None:
        super().__init__(engine, TEAMS)

    def work(self, pql: Pql, rep: str, *, touch: bool, at: datetime) -> None:
        with self.pipeline.session() as session, session.begin():
            lead = session.get(Pql, pql.id)
            who = leads.actor(session, rep, manager=BOSS)
            leads.claim(session, lead, who, now=at, tz=NY, cap=5)
            if touch:
                leads.log_touch(session, lead, who, channel="call", email_key=None, note="meeting Thursday",
                                now=at + timedelta(minutes=5))

    def hand(self, pql: Pql, by: str, team: str, *, at: datetime) -> str | None:
        with freeze_time(at), self.pipeline.session() as session, session.begin():
            lead = session.get(Pql, pql.id)
            who = leads.actor(session, by, manager=BOSS)
            return handoffs.hand_off(session, lead, who, team, router=self.router, now=at, tz=NY,
                                     product_name="Quarry", note="CFO joins the call")

    def refused(self, pql: Pql, by: str, team: str, *, at: datetime = MONDAY + timedelta(hours=1)) -> str:
        before = self.pql(pql.id)
        with pytest.raises(Refused) as refusal:
            self.hand(pql, by, team, at=at)
        after = self.pql(pql.id)
        assert (after.team, after.rep_id, after.claimed_by, after.version) == \
            (before.team, before.rep_id, before.claimed_by, before.version)  # nothing changed
        return str(refusal.value)

    def notices(self, kind: str) -> list[Notice]:
        with self.pipeline.session() as session:
            return list(session.exec(select(Notice).where(Notice.kind == kind).order_by(Notice.id)))


@pytest.fixture
def office(engine) -> Office:
    return Office(engine)


def test_an_sdr_hands_a_lead_with_a_meeting_set_to_an_ae_with_its_history_and_the_ae_s_clock_starts_then(office):
    lead = office.lead(MONDAY, big=True)  # fintech, mid-market: $25,000
    sdr = lead.rep_id
    office.work(lead, sdr, touch=True, at=MONDAY + timedelta(minutes=10))
    handed_at = MONDAY + timedelta(hours=1)  # 17:00 in Berlin: one hour before the AEs close
    assert office.hand(lead, sdr, "ae", at=handed_at) == DEE
    now = office.pql(lead.id)
    assert (now.team, now.rep_id, now.claimed_by, now.state) == ("ae", DEE, None, "assigned")
    assert now.handed_off_at == handed_at
    # 8 business hours in Berlin from 17:00 Monday: 1 h on Monday, 7 h on Tuesday: 16:00 there.
    assert now.sla_due_at == datetime(2026, 11, 10, 16, tzinfo=BERLIN)
    with office.pipeline.session() as session:
        assert [t.note for t in session.exec(select(Touch).where(Touch.pql_id == lead.id))] == ["meeting Thursday"]
    [entry] = office.audit(lead.id, "pql_handed_off")
    assert (entry["from_team"], entry["team"], entry["because"], entry["rep"]) == ("sdr", "ae", "meeting_set", DEE)
    assert entry["note"] == "CFO joins the call"
    with office.pipeline.session() as session:
        [logged] = [e for e in audit.trail(session, pql_id=lead.id) if e.action == "pql_handed_off"]
        assert logged.actor == sdr
    [dm] = [n.text for n in office.notices("dm") if n.target == DEE]  # one DM: the hand-off's, with the package
    assert f"<@{sdr}> of SDR pool handed you {lead.ref}" in dm and "(meeting set)" in dm
    assert "Note: CFO joins the call" in dm and "*Company:*" in dm and "$25,000" in dm and "*Opening:*" in dm
    replies = [n.text for n in office.notices("reply") if n.key.startswith("handoff:")]
    assert replies == [f"<@{sdr}> handed {lead.ref} to Account executives (meeting set). <@{DEE}> has it now; "
                       "the first-touch clock starts again now."]
    [given] = [d for d in office.audit(lead.id, "pql_assigned") if d["rep"] == DEE]
    assert given["why"].startswith("team Account executives: handed off from SDR pool: meeting set; ")


def test_a_lead_routed_to_cs_needs_no_meeting_and_goes_to_customer_success(office):
    lead = office.lead(MONDAY)
    office.work(lead, lead.rep_id, touch=False, at=MONDAY + timedelta(minutes=10))
    assert office.hand(lead, lead.rep_id, "cs", at=MONDAY + timedelta(hours=2)) == FAY
    now = office.pql(lead.id)
    assert (now.team, now.sla_due_at) == ("cs", MONDAY + timedelta(hours=6))  # seed 002's 4 h, from the hand-off


def test_a_hand_off_out_of_the_receiving_team_s_hours_waits_in_its_queue_and_its_clock_starts_at_its_opening(
        office):
    evening = ny(2026, 11, 9, 15)  # 21:00 in Berlin
    lead = office.lead(MONDAY, big=True)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    assert office.hand(lead, lead.rep_id, "ae", at=evening) is None
    now = office.pql(lead.id)
    assert (now.team, now.state, now.rep_id) == ("ae", "queued", None)
    assert now.sla_due_at == datetime(2026, 11, 10, 17, tzinfo=BERLIN)  # 09:00 + 8 h in Berlin
    assert office.drain(datetime(2026, 11, 10, 9, 1, tzinfo=BERLIN)) == {lead.id: DEE}


def test_only_the_lead_s_owner_or_a_manager_may_hand_it_off(office):
    lead = office.lead(MONDAY, big=True)
    sdr = lead.rep_id
    other = BEN if sdr == ANA else ANA
    office.work(lead, sdr, touch=True, at=MONDAY + timedelta(minutes=10))
    assert office.refused(lead, other, "ae") == \
        f"{lead.ref} is <@{sdr}>'s lead: only they or the sales manager can hand it to another team."
    assert office.refused(lead, DEE, "ae").startswith(f"{lead.ref} is <@{sdr}>'s lead")  # the receiver neither
    assert office.hand(lead, BOSS, "ae", at=MONDAY + timedelta(hours=1)) == DEE  # the sales manager may


def test_the_receiving_team_s_conditions_are_checked_and_each_refusal_says_why(office):
    small = office.lead(MONDAY)  # $20,000: under the AEs' $25,000
    office.work(small, small.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    assert office.refused(small, small.rep_id, "ae") == (
        f"Account executives takes leads with an ACV estimate of $25,000 or more; {small.ref}'s is $20,000. "
        "Keep working it, or ask your sales manager to reassign it.")
    untouched = office.lead(MONDAY + timedelta(minutes=1), big=True)
    office.work(untouched, untouched.rep_id, touch=False, at=MONDAY + timedelta(minutes=10))
    assert office.refused(untouched, untouched.rep_id, "ae") == (
        f"Account executives takes a lead once a meeting is set: log the touch that set it on {untouched.ref} "
        "first, then hand it off.")
    assert office.refused(untouched, untouched.rep_id, "sales") == \
        "There's no team called `sales`. The teams: sdr, ae, cs, nurture."
    assert office.refused(untouched, untouched.rep_id, "sdr") == f"{untouched.ref} is already with SDR pool."
    assert office.refused(untouched, untouched.rep_id, "nurture") == \
        "nurture doesn't take hand-offs (its teams file sets none)."


def test_a_closed_lead_cannot_be_handed_off(office):
    lead = office.lead(MONDAY, big=True)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    with office.pipeline.session() as session, session.begin():
        who = leads.actor(session, lead.rep_id, manager=BOSS)
        leads.set_disposition(session, session.get(Pql, lead.id), who, disposition="nurture", reason=None,
                              now=MONDAY + timedelta(minutes=20))
    assert "is closed (dispositioned)" in office.refused(lead, lead.rep_id, "ae")


def test_a_handed_off_lead_is_its_new_owner_s_to_hand_on_and_no_longer_the_sdr_s(office):
    lead = office.lead(MONDAY, big=True)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    office.hand(lead, lead.rep_id, "ae", at=MONDAY + timedelta(hours=1))
    office.work(lead, DEE, touch=False, at=MONDAY + timedelta(hours=2))
    first = office.audit(lead.id, "pql_claimed")[0]["rep"]
    assert office.refused(lead, first, "cs").startswith(f"{lead.ref} is <@{DEE}>'s lead")
    assert office.hand(lead, DEE, "cs", at=MONDAY + timedelta(hours=3)) == FAY  # CS asks for no meeting
    assert [e["from_team"] for e in office.audit(lead.id, "pql_handed_off")] == ["sdr", "ae"]


def test_a_hand_off_that_waited_in_the_queue_reaches_the_rep_who_gets_it_with_its_history(office):
    evening = ny(2026, 11, 9, 15)  # 21:00 in Berlin: the AEs are closed
    lead = office.lead(MONDAY, big=True)
    sdr = lead.rep_id
    office.work(lead, sdr, touch=True, at=MONDAY + timedelta(minutes=10))
    assert office.hand(lead, sdr, "ae", at=evening) is None
    assert [n for n in office.notices("dm") if n.target == DEE] == []  # nobody to tell yet
    assert office.drain(datetime(2026, 11, 10, 9, 1, tzinfo=BERLIN)) == {lead.id: DEE}
    [dm] = [n.text for n in office.notices("dm") if n.target == DEE]  # the hand-off's DM, not "assigned to you"
    assert f"<@{sdr}> of SDR pool handed you {lead.ref}" in dm and "(meeting set)" in dm
    assert "Note: CFO joins the call" in dm and "*Company:*" in dm and "$25,000" in dm and "*Opening:*" in dm


def test_a_handed_off_lead_released_and_given_again_from_the_queue_gets_the_ordinary_dm(office):
    lead = office.lead(MONDAY)
    office.work(lead, lead.rep_id, touch=False, at=MONDAY + timedelta(minutes=10))
    assert office.hand(lead, lead.rep_id, "cs", at=MONDAY + timedelta(hours=2)) == FAY  # given at once
    with office.pipeline.session() as session, session.begin():
        leads.release(session, session.get(Pql, lead.id), leads.actor(session, BOSS, manager=BOSS),
                      now=MONDAY + timedelta(hours=3))
    assert office.drain(MONDAY + timedelta(hours=4)) == {lead.id: FAY}
    texts = [n.text for n in office.notices("dm") if n.target == FAY]
    assert len(texts) == 2 and "handed you" in texts[0] and "handed you" not in texts[1]


def test_a_handed_off_lead_goes_to_its_account_s_owner_on_the_receiving_team_not_to_an_owner_outside_it(
        office):
    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, DEE, True, now=MONDAY)  # away when the lead came: an SDR got it
    owned = office.lead(MONDAY, big=True, domain_owner=DEE)
    assert owned.rep_id in {ANA, BEN}
    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, DEE, False, now=MONDAY)
    office.work(owned, owned.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    assert office.hand(owned, owned.rep_id, "ae", at=MONDAY + timedelta(hours=1)) == DEE
    [given] = [d for d in office.audit(owned.id, "pql_assigned") if d["rep"] == DEE]
    assert (given["reason"], given["why"]) == (
        "override", "team Account executives: handed off from SDR pool: meeting set; named account owner")
    # Ana owns the next account but is no customer success manager: the lead Ben hands to CS stays with CS.
    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, ANA, True, now=MONDAY)
    anas = office.lead(MONDAY + timedelta(minutes=1), domain_owner=ANA)
    assert anas.rep_id == BEN
    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, ANA, False, now=MONDAY)
    office.work(anas, BEN, touch=False, at=MONDAY + timedelta(minutes=10))
    assert office.hand(anas, BEN, "cs", at=MONDAY + timedelta(hours=1)) == FAY
    [given] = [d for d in office.audit(anas.id, "pql_assigned") if d["rep"] == FAY]
    assert given["reason"] == "round_robin"


def test_while_the_manager_has_paused_routing_a_handed_off_lead_waits_in_the_receiving_team_s_queue(office):
    from bot.services import switches

    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, DEE, True, now=MONDAY)
    lead = office.lead(MONDAY, big=True, domain_owner=DEE)
    with office.pipeline.session() as session, session.begin():
        leads.set_paused(session, DEE, False, now=MONDAY)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    with office.pipeline.session() as session, session.begin():
        switches.set_routing_paused(session, leads.actor(session, BOSS, manager=BOSS), True, now=MONDAY,
                                     teams=office.router.teams)
    assert office.hand(lead, lead.rep_id, "ae", at=MONDAY + timedelta(hours=1)) is None  # not even to its owner
    now = office.pql(lead.id)
    assert (now.team, now.state, now.rep_id) == ("ae", "queued", None)
    [queued] = office.audit(lead.id, "pql_queued")
    assert queued["why"].startswith("team Account executives: handed off from SDR pool: meeting set; ")


def test_a_hold_on_the_receiving_team_s_lead_moves_its_clock_by_that_team_s_business_hours(office):
    # The AEs work 9-18 in Berlin; the SDR pool's default calendar is New York's. A ticket open 09:00-12:00 Tuesday
    # in Berlin (03:00-06:00 in New York, when New York is closed) held the AE's lead three of their business hours.
    from tests.sweeps.test_holds import event

    lead = office.lead(MONDAY, big=True)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    office.hand(lead, lead.rep_id, "ae", at=MONDAY + timedelta(hours=1))
    assert office.pql(lead.id).sla_due_at == datetime(2026, 11, 10, 16, tzinfo=BERLIN)  # 8 h in Berlin
    opened, closed = datetime(2026, 11, 10, 9, tzinfo=BERLIN), datetime(2026, 11, 10, 12, tzinfo=BERLIN)
    for name, at in (("support_ticket_opened", opened), ("support_ticket_closed", closed)):
        with freeze_time(at):
            office.pipeline.ingest([event(lead.user_id, name, at, ticket_id="T9")], at=at)
    resumed = office.pql(lead.id)
    assert resumed.held_since is None and resumed.held_seconds == 3 * 3600
    # 16:00 Tuesday and three business hours more: two on Tuesday, one on Wednesday from 09:00.
    assert resumed.sla_due_at == datetime(2026, 11, 11, 10, tzinfo=BERLIN)


def test_an_abandoned_checkout_lets_the_receiving_team_s_lead_go_on_that_team_s_hours(office):
    # A checkout started at 20:00 Friday in Berlin (14:00 in New York) and abandoned: let go a day later by the holds
    # sweep. The AEs' hours (9-18 in Berlin) were closed the whole time; New York's were open four of those hours.
    from bot.settings import Settings
    from bot.sweeps.holds import release_holds
    from bot.sweeps.runner import Sweeps
    from tests.sweeps.test_holds import event

    lead = office.lead(MONDAY, big=True)
    office.work(lead, lead.rep_id, touch=True, at=MONDAY + timedelta(minutes=10))
    office.hand(lead, lead.rep_id, "ae", at=MONDAY + timedelta(hours=1))
    due = office.pql(lead.id).sla_due_at
    started = datetime(2026, 11, 13, 20, tzinfo=BERLIN)
    with freeze_time(started):
        office.pipeline.ingest([event(lead.user_id, "checkout_started", started)], at=started)
    let_go = started + timedelta(hours=office.pipeline.rules.do_not_touch.checkout_grace_hours)
    sweeps = Sweeps(office.pipeline, office.router, Settings(_env_file=None, pql_manager=BOSS))
    with freeze_time(let_go):
        assert release_holds(sweeps, let_go) == 1
    resumed = office.pql(lead.id)
    assert (resumed.held_since, resumed.held_seconds, resumed.sla_due_at) == (None, 0, due)
