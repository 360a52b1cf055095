"""Do-not-touch after the alert: a support ticket or a checkout holds a lead; the ticket closed, or the checkout
left for 24 hours, lets it go with its clocks carrying on (bot/services/holds.py, bot/sweeps/holds.py)."""

from __future__ import annotations

from datetime import datetime

from freezegun import freeze_time

from bot.domain.lifecycle import PqlState
from bot.services.lead_view import build
from bot.slack.blocks.alert import alert
from bot.sweeps.escalate import escalate
from bot.sweeps.follow_ups import follow_ups
from bot.sweeps.holds import release_holds
from bot.sweeps.stale_claims import stale_claims
from tests.scoring.builders import Trial
from tests.sweeps.test_escalations import BOSS, MIN, WED, H, World, keys, ny

FRI = ny(2026, 11, 6, 16, 0)  # a Friday afternoon, two business hours before the weekend


def event(user: str, name: str, at: datetime, **props):
    """One product event of `user` at `at` (a fresh message id each time)."""
    return Trial(user, email=f"{user}@acme.com").add(name, at, **props).events[-1]


def ingest(world: World, *events, at: datetime) -> None:
    with freeze_time(at):
        world.pipeline.ingest(list(events), at=at)


def test_a_ticket_opened_after_the_alert_holds_the_lead_no_here_no_manager_and_its_rep_is_told_once(engine):
    world = World(engine)
    pql_id = world.lead("sarah", WED)
    rep = world.pql(pql_id).rep_id
    opened = event("sarah", "support_ticket_opened", WED + 30 * MIN, ticket_id="T1")
    ingest(world, opened, at=WED + 30 * MIN)
    ingest(world, opened, at=WED + 40 * MIN)  # a replay holds nothing again
    held = world.pql(pql_id)
    assert held.held_since == WED + 30 * MIN and held.hold_on == {"tickets": ["T1"], "checkout": None}
    assert held.state is not PqlState.STOPPED_CONVERTED
    [reply], [dm] = world.notices("hold:"), world.notices("hold-dm:")
    assert (reply.kind, reply.pql_id) == ("reply", pql_id) and (dm.kind, dm.target) == ("dm", rep)
    assert f"PQL-{pql_id} is on hold" in reply.text and "support ticket open" in reply.text and dm.text == reply.text
    version = held.version
    for at in (WED + H, WED + 2 * H + 5 * MIN, WED + 5 * H):
        assert escalate(world.sweeps, at) == 0
    assert world.notices("esc-") == []
    assert world.pql(pql_id).version == version
    with world.pipeline.session() as session:
        view = build(session, pql_id, tz=world.settings.tz, product_name="Acme", at=WED + H)
    assert "On hold: a support ticket is open" in str(alert(view, now=WED + H, tz=world.settings.tz)[1])


def test_closing_the_ticket_resumes_the_lead_and_its_clock_carries_on_with_the_time_it_had_left(engine):
    world = World(engine)
    pql_id = world.lead("sarah", WED)  # medium: first touch due by 14:00
    assert world.pql(pql_id).sla_due_at == WED + 4 * H
    ingest(world, event("sarah", "support_ticket_opened", WED + 30 * MIN, ticket_id="T1"),
           event("sarah", "support_ticket_opened", WED + 40 * MIN, ticket_id="T2"), at=WED + 40 * MIN)
    ingest(world, event("sarah", "support_ticket_closed", WED + 2 * H, ticket_id="T2"), at=WED + 2 * H)
    assert world.pql(pql_id).hold_on["tickets"] == ["T1"]  # the ticket closed is the one with its id
    closed = event("sarah", "support_ticket_closed", WED + 3 * H, ticket_id="T1")
    ingest(world, closed, at=WED + 3 * H)
    ingest(world, closed, at=WED + 3 * H + MIN)  # a replay changes nothing
    resumed = world.pql(pql_id)
    assert resumed.held_since is None and resumed.held_seconds == int((2 * H + 30 * MIN).total_seconds())
    assert resumed.sla_due_at == WED + 6 * H + 30 * MIN  # 3 h 30 min were left of it
    [reply], [dm] = world.notices("unhold:"), world.notices("unhold-dm:")
    assert "is back on" in reply.text and "support tickets are closed" in reply.text and dm.target == resumed.rep_id
    # The 30 unheld minutes before the ticket count: the @here is owed one business hour of waiting in, at 13:30.
    assert escalate(world.sweeps, WED + 3 * H + 29 * MIN) == 0
    assert escalate(world.sweeps, WED + 3 * H + 30 * MIN) == 1
    [here] = world.notices("esc-here:")
    assert "waited 1 h" in here.text
    escalate(world.sweeps, WED + 4 * H + 29 * MIN)
    assert world.notices("esc-2h:") == []
    escalate(world.sweeps, WED + 4 * H + 30 * MIN)
    assert keys(world.notices("esc-2h:")) == [f"esc-2h:{pql_id}"] and world.notices("esc-2h:")[0].target == BOSS


def test_a_checkout_holds_the_lead_over_the_weekend_and_lets_go_24_hours_later_once(engine):
    world = World(engine)
    pql_id = world.lead("sarah", FRI)  # @here at 17:00 and first touch by Monday 11:00, if nothing held it
    ingest(world, event("sarah", "checkout_started", FRI + 30 * MIN), at=FRI + 30 * MIN)
    assert world.notices("hold:")[0].text.endswith("no reminders or escalations until it resumes.")
    assert "started a checkout" in world.notices("hold-dm:")[0].text
    assert escalate(world.sweeps, FRI + H + 30 * MIN) == 0
    saturday = ny(2026, 11, 7, 16, 29)
    with freeze_time(saturday):
        assert release_holds(world.sweeps, saturday) == 0
    with freeze_time(saturday + MIN):
        assert release_holds(world.sweeps, saturday + MIN) == 1
        assert release_holds(world.sweeps, saturday + MIN) == 0  # re-running changes nothing
    resumed = world.pql(pql_id)
    assert resumed.held_since is None and resumed.held_seconds == int((H + 30 * MIN).total_seconds())
    assert resumed.sla_due_at == ny(2026, 11, 9, 12, 30)  # 1 h 30 min of Friday were held
    [reply] = world.notices("unhold:")
    assert "checkout wasn't completed in 24 hours" in reply.text
    assert len(world.notices("unhold-dm:")) == 1
    assert escalate(world.sweeps, ny(2026, 11, 9, 9, 29)) == 0  # 30 min unheld on Friday + 30 on Monday
    assert escalate(world.sweeps, ny(2026, 11, 9, 9, 30)) == 1


def test_a_completed_checkout_stops_a_held_lead_converted_and_tells_its_rep(engine):
    world = World(engine)
    pql_id = world.lead("sarah", WED)
    ingest(world, event("sarah", "checkout_started", WED + 10 * MIN), at=WED + 10 * MIN)
    ingest(world, event("sarah", "checkout_completed", WED + 20 * MIN), at=WED + 20 * MIN)
    stopped = world.pql(pql_id)
    assert stopped.state == PqlState.STOPPED_CONVERTED
    assert "converted to paid" in world.notices("stopped:")[0].text
    assert world.notices("stopped-dm:")[0].target == stopped.rep_id
    with freeze_time(WED + 25 * H):
        assert release_holds(world.sweeps, WED + 25 * H) == 0
    assert world.notices("unhold") == []


def test_a_held_lead_gets_no_follow_up_reminder_and_no_stale_claim_flag(engine):
    world = World(engine)
    pql_id = world.lead("sarah", WED)
    world.claim(pql_id, WED + 10 * MIN)
    world.touch(pql_id, WED + 20 * MIN)  # Email 1: Email 2 is due Friday
    ingest(world, event("sarah", "support_ticket_opened", WED + H), at=WED + H)
    assert follow_ups(world.sweeps, FRI) == 0
    other = world.lead("bob", WED)
    world.claim(other, WED + 10 * MIN)
    ingest(world, event("bob", "support_ticket_opened", WED + H), at=WED + H)
    assert stale_claims(world.sweeps, FRI) == 0
    ingest(world, event("sarah", "support_ticket_closed", FRI + H), at=FRI + H)  # a close with no id: the oldest
    assert follow_ups(world.sweeps, FRI + H) == 1


def test_a_ticket_opened_before_the_lead_was_recorded_holds_nothing_after_it(engine):
    world = World(engine)
    pql_id = world.lead("sarah", WED)
    ingest(world, event("sarah", "support_ticket_opened", WED - H), at=WED + MIN)  # late, from before the lead
    assert world.pql(pql_id).held_since is None and world.notices("hold") == []


def test_a_hold_after_the_claim_moves_the_stale_claim_flag_and_one_before_it_does_not(engine):
    world = World(engine)
    after, before = world.lead("sarah", WED), world.lead("bob", WED)
    world.claim(after, WED + 10 * MIN)  # stale after 9 business hours: Thursday 10:10
    ingest(world, event("sarah", "support_ticket_opened", WED + H, ticket_id="T1"), at=WED + H)
    ingest(world, event("sarah", "support_ticket_closed", WED + 3 * H, ticket_id="T1"), at=WED + 3 * H)
    ingest(world, event("bob", "support_ticket_opened", WED + 5 * MIN, ticket_id="T2"), at=WED + 5 * MIN)
    ingest(world, event("bob", "support_ticket_closed", WED + 2 * H + 5 * MIN, ticket_id="T2"),
           at=WED + 2 * H + 5 * MIN)
    world.claim(before, WED + 2 * H + 40 * MIN)  # after its 2-hour hold: stale on Thursday 12:40, no later
    thursday = ny(2026, 11, 5, 12, 9)
    assert stale_claims(world.sweeps, thursday) == 0
    assert stale_claims(world.sweeps, thursday + 2 * MIN) == 1  # sarah's, with the 2 hours held since her claim
    assert [n.pql_id for n in world.notices("stale:")] == [after]
    assert stale_claims(world.sweeps, thursday + 32 * MIN) == 1  # bob's: the hold before his claim was not his
    assert sorted(n.pql_id for n in world.notices("stale:")) == sorted([after, before])
