"""A lead on a do-not-touch hold after its alert (bot/services/holds.py) is nobody's to claim or touch: the rep is
told it is on hold and why, a bare /claim passes it by, and only a manager's claim for a rep (a deliberate
override, audited and said in the thread) gives it out. An opted-out lead is stopped: the same words. Both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.services import audit, leads
from bot.services.leads import Refused
from bot.store.models import Notice, Pql
from tests.scoring.builders import NY
from tests.sweeps.test_escalations import ANA, BEN, BOSS, WED, World
from tests.sweeps.test_holds import event

MIN = timedelta(minutes=1)


def hold(world: World, user: str, name: str, at, **props) -> None:
    with freeze_time(at):
        world.pipeline.ingest([event(user, name, at, **props)], at=at)


def refused(world: World, fn, pql_id: int, user: str, **kwargs) -> str:
    before = world.pql(pql_id)
    with pytest.raises(Refused) as refusal:
        world.act(fn, pql_id, user, **kwargs)
    after = world.pql(pql_id)
    assert (after.claimed_by, after.rep_id, after.state) == (before.claimed_by, before.rep_id, before.state)
    return str(refusal.value)


@pytest.fixture
def world(engine) -> World:
    return World(engine)


def test_a_rep_cannot_claim_a_lead_on_hold_and_is_told_why(world):
    pql_id = world.lead("sarah", WED)
    rep = world.pql(pql_id).rep_id
    hold(world, "sarah", "support_ticket_opened", WED + 10 * MIN, ticket_id="T1")
    assert refused(world, leads.claim, pql_id, rep, now=WED + 20 * MIN, tz=NY, cap=5) == (
        f"PQL-{pql_id} is on hold: they have a support ticket open. Don't reach out for now; it comes back when the "
        "hold ends.")
    hold(world, "sarah", "checkout_started", WED + 30 * MIN)
    assert "they started a checkout" in refused(world, leads.claim, pql_id, rep, now=WED + 40 * MIN, tz=NY, cap=5)
    hold(world, "sarah", "support_ticket_closed", WED + 50 * MIN, ticket_id="T1")  # the checkout still holds it
    assert "they started a checkout" in refused(world, leads.claim, pql_id, rep, now=WED + 55 * MIN, tz=NY, cap=5)


def test_a_bare_claim_passes_a_held_lead_by_for_the_next_one(world):
    first, second = world.lead("sarah", WED), world.lead("omar", WED + MIN)
    hold(world, "sarah", "support_ticket_opened", WED + 10 * MIN, ticket_id="T1")
    with world.pipeline.session() as session:
        rep = world.pql(second).rep_id
        found = leads.oldest_claimable(session, leads.actor(session, rep, manager=BOSS))
    assert found is not None and found.id == second and first != second


def test_no_touch_is_logged_on_a_held_lead_even_by_its_claimant(world):
    pql_id = world.lead("sarah", WED)
    rep = world.claim(pql_id, WED + 5 * MIN)
    hold(world, "sarah", "checkout_started", WED + 10 * MIN)
    assert refused(world, leads.log_touch, pql_id, rep, channel="call", email_key=None, note=None,
                   now=WED + 20 * MIN).startswith(f"PQL-{pql_id} is on hold: they started a checkout.")
    assert refused(world, leads.log_touch, pql_id, BOSS, channel="call", email_key=None, note=None,
                   now=WED + 20 * MIN).startswith(f"PQL-{pql_id} is on hold")
    with world.pipeline.session() as session:
        assert world.pql(pql_id).state == "claimed"
        assert not [e for e in audit.trail(session, pql_id=pql_id) if e.action == "touch_logged"]


def test_the_manager_may_claim_a_held_lead_for_a_rep_as_a_deliberate_override(world):
    pql_id = world.lead("sarah", WED)
    rep = world.pql(pql_id).rep_id
    other = BEN if rep == ANA else ANA
    hold(world, "sarah", "support_ticket_opened", WED + 10 * MIN, ticket_id="T1")
    assert refused(world, leads.claim, pql_id, other, now=WED + 20 * MIN, tz=NY, cap=5).startswith(
        f"PQL-{pql_id} is on hold")
    world.act(leads.claim, pql_id, BOSS, now=WED + 20 * MIN, tz=NY, cap=5, for_rep=other)
    assert world.pql(pql_id).claimed_by == other
    with world.pipeline.session() as session:
        [claimed] = [e for e in audit.trail(session, pql_id=pql_id) if e.action == "pql_claimed"]
        [reply] = session.exec(select(Notice).where(Notice.key == f"claim:{pql_id}")).all()
    assert (claimed.actor, claimed.detail["over_hold"]) == (BOSS, "support_ticket")
    assert reply.text == (f"PQL-{pql_id} claimed by <@{other}> (by <@{BOSS}> on their behalf). It's on hold (a "
                          "support ticket is open): the manager gave it anyway, so hold off reaching out until it "
                          "resumes.")


def test_an_opted_out_lead_is_refused_in_the_same_words(world):
    pql_id = world.lead("sarah", WED)
    rep = world.pql(pql_id).rep_id
    hold(world, "sarah", "sales_opt_out", WED + 10 * MIN)
    assert world.pql(pql_id).state == "stopped_opt_out"
    assert refused(world, leads.claim, pql_id, rep, now=WED + 20 * MIN, tz=NY, cap=5) == \
        f"PQL-{pql_id} is stopped: they opted out of sales contact. Don't reach out."
    assert refused(world, leads.claim, pql_id, BOSS, now=WED + 20 * MIN, tz=NY, cap=5, for_rep=rep) == \
        f"PQL-{pql_id} is stopped: they opted out of sales contact. Don't reach out."


def test_once_the_hold_ends_the_lead_is_claimed_as_usual(world):
    pql_id = world.lead("sarah", WED)
    rep = world.pql(pql_id).rep_id
    hold(world, "sarah", "support_ticket_opened", WED + 10 * MIN, ticket_id="T1")
    hold(world, "sarah", "support_ticket_closed", WED + 30 * MIN, ticket_id="T1")
    world.claim(pql_id, WED + 40 * MIN)
    with world.pipeline.session() as session:
        assert session.get(Pql, pql_id).claimed_by == rep
