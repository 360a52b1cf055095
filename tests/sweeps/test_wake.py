"""A verdict that turns with time alone wakes its user (bot/sweeps/wake.py): a trigger whose "not completed within N
days" wait ends with no event becomes a lead within the minute it comes due, not at the user's next event or the
next full rescore (a day later by default)."""

from __future__ import annotations

from datetime import UTC, timedelta

from freezegun import freeze_time
from sqlmodel import select

from bot.store.models import Pql, TrialUser
from bot.sweeps.runner import Sweeps, default_steps
from tests.scoring.builders import NY, Trial
from tests.sweeps.test_escalations import MIN, World, ny

SIGNUP = ny(2026, 10, 29, 9, 0)
STARTED = ny(2026, 10, 29, 12, 0)  # a Thursday noon in New York; the clocks go back on Sunday 1 November
DUE = STARTED.astimezone(UTC) + timedelta(days=7)  # 168 hours later: 11:00 on Thursday 5 November, local time


def _world(engine) -> tuple[World, Sweeps]:
    world = World(engine)
    return world, Sweeps(world.pipeline, world.router, world.settings, steps=default_steps("wake"))


def _sso_started(user: str = "omar") -> Trial:
    """5,000 people (outside the pilot's ICP, which this blocker does not ask), active, SSO set-up started."""
    trial = Trial(user, email=f"{user}@globex.com", size=5000, signup=SIGNUP).activate(1, 11)
    return trial.add("sso_config_started", STARTED)


def _wake_at(world: World, user: str):
    with world.pipeline.session() as session:
        return session.get(TrialUser, user).wake_at


def _leads(world: World) -> list[Pql]:
    with world.pipeline.session() as session:
        return list(session.exec(select(Pql).order_by(Pql.id)))


def test_a_wait_that_ends_with_no_event_raises_its_lead_in_the_minute_it_comes_due_across_the_clock_change(engine):
    world, sweeps = _world(engine)
    with freeze_time(STARTED + MIN):
        world.pipeline.ingest(_sso_started().events, at=STARTED + MIN)
    # The signup's own wait ("not activated within 7 days") was met on day 1: it wakes nobody.
    assert DUE.astimezone(NY).hour == 11 and _wake_at(world, "omar") == DUE
    assert sweeps.run_due(DUE - MIN) == {"wake": 0} and _leads(world) == []
    with freeze_time(DUE):
        assert sweeps.run_due(DUE) == {"wake": 1}
    [lead] = _leads(world)
    assert (lead.user_id, lead.tier, lead.strongest_signal) == ("omar", "high", "sso_stalled")
    assert lead.rep_id is not None  # routed at once: 11:00 on a Thursday is a business hour
    assert [n.kind for n in world.notices(f"alert:{lead.id}")] == ["alert"]
    assert _wake_at(world, "omar") is None  # nothing else waits
    assert sweeps.run_due(DUE + MIN) == {"wake": 0}  # woken once
    assert len(_leads(world)) == 1


def test_a_wait_completed_in_time_wakes_nobody(engine):
    world, sweeps = _world(engine)
    trial = _sso_started()
    with freeze_time(STARTED + MIN):
        world.pipeline.ingest(trial.events, at=STARTED + MIN)
    completed = ny(2026, 11, 2, 10, 0)
    trial.add("sso_config_completed", completed)
    with freeze_time(completed):
        world.pipeline.ingest(trial.events[-1:], at=completed)
    assert _wake_at(world, "omar") is None
    assert sweeps.run_due(DUE + MIN) == {"wake": 0} and _leads(world) == []


def test_a_set_up_started_again_after_one_was_completed_wakes_at_the_second_one_s_end(engine):
    """Started, completed, started again, then started a third time: the first start's wait was ended by the
    completion, so the user wakes when the second start's 168 hours end (the third's end later still), and only
    then."""
    world, sweeps = _world(engine)
    trial = _sso_started()
    again, third = ny(2026, 11, 2, 10, 0), ny(2026, 11, 3, 15, 0)
    trial.add("sso_config_completed", ny(2026, 10, 30, 9, 0)).add("sso_config_started", again)
    trial.add("sso_config_started", third)
    with freeze_time(third + MIN):
        world.pipeline.ingest(trial.events, at=third + MIN)
    due = again.astimezone(UTC) + timedelta(days=7)
    assert _wake_at(world, "omar") == due
    assert sweeps.run_due(DUE + MIN) == {"wake": 0} and _leads(world) == []  # the first start's end: not a wake
    with freeze_time(due):
        assert sweeps.run_due(due) == {"wake": 1}
    [lead] = _leads(world)
    assert lead.strongest_signal == "sso_stalled"


def test_the_full_rescore_sets_the_wake_of_users_stored_without_scoring(engine):
    """A backfill with --no-score, or a store from before wake_at existed: the periodic rescore sets it."""
    world, sweeps = _world(engine)
    world.pipeline.ingest(_sso_started("bo").events, at=STARTED + MIN, score=False)
    world.pipeline.rescore_all(at=STARTED + 2 * MIN)
    assert _wake_at(world, "bo") == DUE
    with freeze_time(DUE + MIN):
        assert sweeps.run_due(DUE + MIN) == {"wake": 1}
    assert [(lead.user_id, lead.strongest_signal) for lead in _leads(world)] == [("bo", "sso_stalled")]


def test_a_checkout_abandoned_past_its_grace_raises_the_lead_that_minute_at_night_too(engine):
    """Do not touch while a checkout is under 24 hours old; then, with no event, the user is a lead again. Left at
    23:10 on a Monday, the 24 hours end on Tuesday night: the lead is recorded then, not at the user's next event."""
    world, sweeps = _world(engine)
    checkout = ny(2026, 11, 2, 23, 10)
    trial = world.trial("cara", checkout).add("checkout_started", checkout)
    with freeze_time(checkout + MIN):
        world.pipeline.ingest(trial.events, at=checkout + MIN)
    grace = checkout.astimezone(UTC) + timedelta(hours=24)
    assert _leads(world) == [] and _wake_at(world, "cara") == grace
    assert sweeps.run_due(grace - MIN) == {"wake": 0}
    with freeze_time(grace):
        assert sweeps.run_due(grace) == {"wake": 1}
    [lead] = _leads(world)
    assert (lead.user_id, lead.tier) == ("cara", "high") and lead.created_at == grace  # the checkout weighs too


def test_a_user_with_nothing_left_to_judge_is_woken_once_not_every_minute(engine):
    """Every event of theirs moved to another user by a link: judging them again finds nothing, and they must not
    stay due ahead of everyone else."""
    world, sweeps = _world(engine)
    with world.pipeline.session() as session, session.begin():
        session.add(TrialUser(user_id="gone", wake_at=DUE))
    assert sweeps.run_due(DUE + MIN) == {"wake": 0}
    assert _wake_at(world, "gone") is None
