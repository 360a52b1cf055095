"""A lead on a do-not-touch hold (bot/services/holds.py) is given to nobody while the hold lasts (bot/services/
routing.py): it waits in the queue in its place, holds back none of the leads behind it, and goes out with the queue
once the hold ends, its first-touch clock going on from then. Both stores, except where a rescore's routing on SQLite
is looked at between its two commits."""

from __future__ import annotations

from datetime import datetime

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.services import audit
from bot.services.pipeline import RoutingLeftToSweep
from bot.services.routing import Router
from bot.store.models import Assignment, Notice, Pql
from bot.sweeps.queue import drain_queue
from bot.sweeps.runner import Sweeps, default_steps
from tests.services.test_handoffs import DEE, Office
from tests.services.test_handoffs import MONDAY as HANDOFF_MONDAY
from tests.services.test_rescore_routing import ANA as RESCORE_ANA
from tests.services.test_rescore_routing import MONDAY as RESCORE_MONDAY
from tests.services.test_rescore_routing import owed, rescore, stored_not_scored, sweep, team
from tests.sweeps.test_escalations import ANA, BOSS, MIN, H, World, ny
from tests.sweeps.test_holds import event, ingest

TUESDAY_NIGHT = ny(2026, 11, 3, 22, 0)  # closed: a lead waits in the queue for Wednesday's opening
WEDNESDAY, THURSDAY = ny(2026, 11, 4, 9, 0), ny(2026, 11, 5, 9, 0)


def drain(world: World, at: datetime) -> dict[int, str]:
    """The minute's queue sweep at `at`: who it gave each lead to."""
    with freeze_time(at):
        drain_queue(world.sweeps, at)
    with world.pipeline.session() as session:
        return {a.pql_id: a.rep_id for a in session.exec(select(Assignment).where(Assignment.at == at))}


def queued_why(world, pql_id: int) -> list[str]:
    with world.pipeline.session() as session:
        return [e.detail["why"] for e in audit.trail(session, pql_id=pql_id) if e.action == "pql_queued"]


def dms_about(world, pql_id: int) -> list[str]:
    with world.pipeline.session() as session:
        return [n.key for n in session.exec(select(Notice).where(Notice.kind == "dm", Notice.pql_id == pql_id))]


def capped(engine, cap: int) -> World:
    """A team of one rep, Ana, with a daily cap of `cap`."""
    world = World(engine, reps=f"{ANA}:Ana Ruiz")
    world.router = world.pipeline.router = world.sweeps.router = Router(world.settings.calendar, cap=cap,
                                                                         manager=BOSS)
    return world


@pytest.fixture
def world(engine) -> World:
    return World(engine)


def test_a_held_lead_in_the_queue_goes_to_nobody_at_the_opening_and_goes_out_once_the_hold_ends(world):
    pql_id = world.lead("sarah", TUESDAY_NIGHT)
    assert world.pql(pql_id).state == "queued"
    ingest(world, event("sarah", "support_ticket_opened", TUESDAY_NIGHT + 2 * MIN, ticket_id="T1"),
           at=TUESDAY_NIGHT + 2 * MIN)
    assert drain(world, WEDNESDAY) == {}
    assert drain(world, WEDNESDAY + H) == {}
    waiting = world.pql(pql_id)
    assert (waiting.state, waiting.rep_id, waiting.held_since) == ("queued", None, TUESDAY_NIGHT + 2 * MIN)
    assert [key for key in dms_about(world, pql_id) if key.startswith("assigned:")] == []
    ingest(world, event("sarah", "support_ticket_closed", WEDNESDAY + 2 * H, ticket_id="T1"), at=WEDNESDAY + 2 * H)
    given = drain(world, WEDNESDAY + 2 * H + MIN)
    assert list(given) == [pql_id]
    resumed = world.pql(pql_id)
    assert (resumed.state, resumed.rep_id, resumed.held_since) == ("assigned", given[pql_id], None)
    assert f"assigned:{pql_id}:{given[pql_id]}:{(WEDNESDAY + 2 * H + MIN).isoformat()}" in dms_about(world, pql_id)
    # Medium: 4 business hours to the first touch, from the hold's end at 11:00 (the 2 hours held do not count).
    assert resumed.sla_due_at == WEDNESDAY + 6 * H


def test_a_held_lead_holds_back_nobody_behind_it_and_keeps_its_place_for_when_it_resumes(engine):
    world = capped(engine, cap=1)
    held = world.lead("sarah", TUESDAY_NIGHT)
    ingest(world, event("sarah", "support_ticket_opened", TUESDAY_NIGHT + 2 * MIN, ticket_id="T1"),
           at=TUESDAY_NIGHT + 2 * MIN)
    assert drain(world, WEDNESDAY) == {}
    # A lead of the same tier raised in business hours goes to Ana at once: the held lead ahead of it waits alone.
    with freeze_time(WEDNESDAY + H):
        after = world.lead("omar", WEDNESDAY + H)
    assert (world.pql(after).state, world.pql(after).rep_id) == ("assigned", ANA)
    # Ana is at her cap of 1: the next one waits, behind the held lead.
    with freeze_time(WEDNESDAY + H + 30 * MIN):
        later = world.lead("lena", WEDNESDAY + H + 30 * MIN)
    assert world.pql(later).state == "queued"
    assert queued_why(world, later) == ["every available rep is at today's cap of 1 (or outside their hours)"]
    ingest(world, event("sarah", "support_ticket_closed", WEDNESDAY + 2 * H, ticket_id="T1"), at=WEDNESDAY + 2 * H)
    assert drain(world, WEDNESDAY + 3 * H) == {}  # Ana is still at her cap today
    assert drain(world, THURSDAY) == {held: ANA}  # its place: before the lead that qualified after it
    assert world.pql(later).state == "queued"


def test_a_queued_lead_whose_checkout_is_abandoned_goes_out_in_the_same_minutes_sweep(engine):
    world = capped(engine, cap=1)
    world.lead("omar", WEDNESDAY + 30 * MIN)  # Ana's one for Wednesday
    with freeze_time(WEDNESDAY + 40 * MIN):
        pql_id = world.lead("sarah", WEDNESDAY + 40 * MIN)
    assert world.pql(pql_id).state == "queued"
    ingest(world, event("sarah", "checkout_started", WEDNESDAY + H), at=WEDNESDAY + H)
    sweeps = Sweeps(world.pipeline, world.router, world.settings, steps=default_steps("queue", "holds"))
    with freeze_time(THURSDAY):
        assert sweeps.run_due(THURSDAY) == {"holds": 0, "queue": 0}  # Ana has room, but the checkout holds it
    # 24 hours on, the holds sweep lets it go and the queue's, right after it, gives it out in the same minute.
    with freeze_time(THURSDAY + H):
        assert sweeps.run_due(THURSDAY + H) == {"holds": 1, "queue": 1}
    resumed = world.pql(pql_id)
    assert (resumed.held_since, resumed.rep_id) == (None, ANA)


def test_a_lead_a_rescore_raised_and_a_ticket_held_before_its_routing_waits_in_the_queue_off_the_reps_cap(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL routes in the rescore's transaction: no hold lands in between")
    pipeline = team(engine, [RESCORE_ANA], cap=1)
    user = stored_not_scored(pipeline, RESCORE_MONDAY)

    def ticket(pipeline, name: str, at: datetime) -> None:
        with freeze_time(at):
            pipeline.ingest([event(user, name, at, ticket_id="T1")], at=at)

    pipeline.meanwhile = lambda pipeline: ticket(pipeline, "support_ticket_opened", RESCORE_MONDAY)
    [pql_id] = rescore(pipeline, RESCORE_MONDAY)
    with pipeline.session() as session:
        lead = session.get(Pql, pql_id)
        assert (lead.state, lead.rep_id, lead.held_since) == ("queued", None, RESCORE_MONDAY)
        assert list(session.exec(select(Assignment))) == []  # nothing against Ana's cap of 1
        [why] = [e.detail["why"] for e in audit.trail(session, pql_id=pql_id) if e.action == "pql_queued"]
    assert why.startswith("on a do-not-touch hold: it waits in the queue")
    assert owed(pipeline) == []
    assert sweep(pipeline, RESCORE_MONDAY + 10 * MIN) == 0
    ticket(pipeline, "support_ticket_closed", RESCORE_MONDAY + H)
    assert sweep(pipeline, RESCORE_MONDAY + H + MIN) == 1
    with pipeline.session() as session:
        lead = session.get(Pql, pql_id)
    assert (lead.state, lead.rep_id) == ("assigned", RESCORE_ANA)
    assert lead.sla_due_at == RESCORE_MONDAY + 5 * H  # 4 business hours from the hold's end


def test_a_lead_a_rescore_owed_and_a_ticket_held_is_queued_by_the_sweep_that_routes_what_was_owed(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL routes in the rescore's transaction: nothing is owed")
    pipeline = team(engine, [RESCORE_ANA], dies=True)
    user = stored_not_scored(pipeline, RESCORE_MONDAY)
    with pytest.raises(RoutingLeftToSweep):
        rescore(pipeline, RESCORE_MONDAY)
    with freeze_time(RESCORE_MONDAY + MIN):
        pipeline.ingest([event(user, "checkout_started", RESCORE_MONDAY + MIN)], at=RESCORE_MONDAY + MIN)
    assert sweep(pipeline, RESCORE_MONDAY + 2 * MIN) == 0
    with pipeline.session() as session:
        [lead] = session.exec(select(Pql)).all()
    assert (lead.state, lead.rep_id) == ("queued", None) and owed(pipeline) == []


def test_a_new_lead_is_not_raised_while_its_user_has_a_ticket_open_and_is_routed_once_it_closes(world):
    # Scored as of the moment it arrives, an open ticket is do-not-touch (scoring/engine.py): no lead to route yet.
    at = ny(2026, 11, 4, 10, 0)
    ingest(world, *world.trial("sarah", at).events,
           event("sarah", "support_ticket_opened", at - 30 * MIN, ticket_id="T1"), at=at)
    with world.pipeline.session() as session:
        assert session.exec(select(Pql)).all() == []
    ingest(world, event("sarah", "support_ticket_closed", at + H, ticket_id="T1"), at=at + H)
    with world.pipeline.session() as session:
        [lead] = session.exec(select(Pql)).all()
    assert (lead.state, lead.held_since, lead.rep_id is not None) == ("assigned", None, True)


def test_a_held_lead_handed_to_another_team_waits_in_its_queue_until_the_hold_ends(engine):
    office = Office(engine)
    lead = office.lead(HANDOFF_MONDAY, big=True)
    sdr = lead.rep_id
    office.work(lead, sdr, touch=True, at=HANDOFF_MONDAY + 10 * MIN)
    with freeze_time(HANDOFF_MONDAY + 20 * MIN):
        office.pipeline.ingest([event(lead.user_id, "support_ticket_opened", HANDOFF_MONDAY + 20 * MIN,
                                      ticket_id="T9")], at=HANDOFF_MONDAY + 20 * MIN)
    assert office.hand(lead, sdr, "ae", at=HANDOFF_MONDAY + 30 * MIN) is None
    now = office.pql(lead.id)
    assert (now.team, now.state, now.rep_id) == ("ae", "queued", None)
    assert office.drain(HANDOFF_MONDAY + 40 * MIN) == {}
    with freeze_time(HANDOFF_MONDAY + 50 * MIN):
        office.pipeline.ingest([event(lead.user_id, "support_ticket_closed", HANDOFF_MONDAY + 50 * MIN,
                                      ticket_id="T9")], at=HANDOFF_MONDAY + 50 * MIN)
    assert office.drain(HANDOFF_MONDAY + 55 * MIN) == {lead.id: DEE}
    assert any(f"handed you {lead.ref}" in text for text in office.dms(DEE))
