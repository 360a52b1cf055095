"""A rescore's new leads are routed (issue 17, item 5): on SQLite, which has one writer, in a transaction of their own
right after the scoring commits, so a claim may land in between and routing counts it; on PostgreSQL in the
rescore's own transaction. A process that dies between the two commits loses nothing: the next minute's queue
sweep routes what it owed, once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.domain.lifecycle import PqlState
from bot.services import audit, leads
from bot.services.pipeline import ROUTING_OWED, Pipeline, RoutingLeftToSweep
from bot.services.routing import Router
from bot.settings import Settings
from bot.store.models import Assignment, Notice, Pql, SweepRun
from bot.sweeps.runner import Sweeps, default_steps
from tests.scoring.builders import NY
from tests.services.test_routing import CAL, trial

ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
MONDAY = datetime(2026, 11, 9, 10, 0, tzinfo=NY)  # business is open
SUNDAY = datetime(2026, 11, 8, 10, 0, tzinfo=NY)  # closed: a lead waits in the queue for Monday
_users = itertools.count(1)


def now() -> datetime:
    return datetime.now(UTC)  # frozen by freezegun at each step


class Watched(Pipeline):
    """The product's pipeline, with a look between a rescore's scoring commit and its routing (`_route_after`):
    who had each lead then and when each alert was due (`gap`); `meanwhile` runs there (a claim), `dies` stands
    for the process dying there."""

    def __init__(self, *args, meanwhile=None, dies: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.meanwhile, self.dies = meanwhile, dies
        self.gap: list[tuple[dict[int, str | None], dict[int, datetime]]] = []

    def _route_after(self, owed: list[int], at: datetime) -> None:
        self.gap.append((reps(self), alerts_due(self)))
        if self.meanwhile:
            self.meanwhile(self)
        if self.dies:
            raise RuntimeError("the process died between the two commits")
        super()._route_after(owed, at)


def reps(pipeline: Pipeline) -> dict[int, str | None]:
    with pipeline.session() as session:
        return {pql.id: pql.rep_id for pql in session.exec(select(Pql))}


def alerts_due(pipeline: Pipeline) -> dict[int, datetime]:
    with pipeline.session() as session:
        return {n.pql_id: n.next_attempt_at for n in session.exec(select(Notice).where(Notice.kind == "alert"))}


def team(engine, roster: list[str], *, cap: int = 5, **kwargs) -> Watched:
    pipeline = Watched(engine, tz=NY, router=Router(CAL, cap=cap, manager=BOSS), clock=now, **kwargs)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, [(rep, rep.removeprefix("U0").title(), None) for rep in roster],
                          now=datetime(2026, 10, 1, 9, tzinfo=NY))
    return pipeline


def stored_not_scored(pipeline: Pipeline, at: datetime, tier: str = "medium") -> str:
    """A user's trial that qualifies by `at` in `tier`, stored as a backfill stores it (`pqlbot ingest
    --no-score`)."""
    user = f"r{next(_users)}"
    with freeze_time(at):
        pipeline.ingest(trial(user, at, tier, None).events, at=at, score=False)
    return user


def rescore(pipeline: Pipeline, at: datetime) -> list[int]:
    with freeze_time(at):
        return pipeline.rescore_all(at=at).triggered


def sweep(pipeline: Pipeline, at: datetime) -> int:
    """The minute's queue sweep (`pqlbot tick`'s "queue" step) at `at`: how many leads it gave out."""
    settings = Settings(_env_file=None, pql_manager=BOSS, pql_timezone="America/New_York")
    with freeze_time(at):
        return Sweeps(pipeline, pipeline.router, settings, steps=default_steps("queue")).run_due(now())["queue"]


def dms(pipeline: Pipeline, pql_id: int) -> list[str]:
    with pipeline.session() as session:
        return [n.target for n in session.exec(select(Notice).where(Notice.kind == "dm", Notice.pql_id == pql_id))]


def trail(pipeline: Pipeline, pql_id: int, action: str) -> list[dict]:
    with pipeline.session() as session:
        return [e.detail for e in audit.trail(session, pql_id=pql_id) if e.action == action]


def owed(pipeline: Pipeline) -> list[str]:
    with pipeline.session() as session:
        return list(session.exec(select(SweepRun.name).where(SweepRun.name.startswith(ROUTING_OWED))))


def test_a_full_rescores_new_leads_go_to_reps_with_a_dm_and_a_reason_and_their_alerts_go_out_once_routed(engine):
    pipeline = team(engine, [ANA, BEN])
    stored_not_scored(pipeline, MONDAY)
    stored_not_scored(pipeline, MONDAY)
    first, second = rescore(pipeline, MONDAY)

    assert reps(pipeline) == {first: ANA, second: BEN}
    assert dms(pipeline, first) == [ANA] and dms(pipeline, second) == [BEN]
    [given] = trail(pipeline, first, "pql_assigned")
    assert given["reason"] == "round_robin" and given["why"].startswith("round-robin: fewest active leads (0)")
    assert alerts_due(pipeline) == {first: MONDAY, second: MONDAY}
    assert owed(pipeline) == []
    [(before, due_before)] = pipeline.gap
    if engine.dialect.name == "sqlite":  # scored and committed, not yet routed; the alerts wait for the routing
        assert before == {first: None, second: None}
        assert all(due > MONDAY for due in due_before.values())
    else:  # PostgreSQL routes in the rescore's transaction: nothing waits between
        assert before == {first: ANA, second: BEN} and due_before == {first: MONDAY, second: MONDAY}


def claim_the_queued_lead(queued: int):
    def claim(pipeline: Pipeline) -> None:
        with pipeline.session() as session, session.begin():
            pql = session.get(Pql, queued)
            leads.claim(session, pql, leads.actor(session, ANA, manager=BOSS), now=MONDAY, tz=NY, cap=1)
    return claim


def test_a_claim_between_the_scoring_and_the_routing_counts_against_the_reps_cap(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL routes in the rescore's transaction: no claim lands in between")
    pipeline = team(engine, [ANA], cap=1)
    user = f"r{next(_users)}"
    with freeze_time(SUNDAY):  # closed: it waits in the queue, and does not hold up a high lead
        [waiting] = pipeline.ingest(trial(user, SUNDAY, "medium", None).events, at=SUNDAY).rescored.triggered
    pipeline.meanwhile = claim_the_queued_lead(waiting)
    stored_not_scored(pipeline, MONDAY, "high")
    [new] = rescore(pipeline, MONDAY)  # routed first, Ana would have had it, and her claim been refused at the cap

    assert reps(pipeline) == {waiting: ANA, new: None}
    with pipeline.session() as session:
        assert session.get(Pql, waiting).claimed_by == ANA
        assert session.get(Pql, new).state == PqlState.QUEUED
    [queued] = trail(pipeline, new, "pql_queued")
    assert queued["why"] == "every available rep is at today's cap of 1 (or outside their hours)"
    assert dms(pipeline, new) == []


def test_a_rescore_that_dies_before_routing_has_its_leads_routed_by_the_next_minutes_sweep_once(engine):
    pipeline = team(engine, [ANA, BEN], dies=True)
    stored_not_scored(pipeline, MONDAY)
    with pytest.raises(RoutingLeftToSweep, match="died"):
        rescore(pipeline, MONDAY)
    [lead] = reps(pipeline)
    sqlite = engine.dialect.name == "sqlite"
    assert reps(pipeline) == {lead: None if sqlite else ANA}  # PostgreSQL routed it in the committed transaction

    assert sweep(pipeline, MONDAY + timedelta(seconds=30)) == 0  # its own routing may still be under way
    assert reps(pipeline) == {lead: None if sqlite else ANA}
    assert sweep(pipeline, MONDAY + timedelta(minutes=1)) == (1 if sqlite else 0)
    assert reps(pipeline) == {lead: ANA}
    assert owed(pipeline) == []
    assert sweep(pipeline, MONDAY + timedelta(minutes=2)) == 0  # again: nothing changes

    assert reps(pipeline) == {lead: ANA}
    with pipeline.session() as session:
        assert len(session.exec(select(Assignment).where(Assignment.pql_id == lead)).all()) == 1
    assert dms(pipeline, lead) == [ANA]
    assert len(trail(pipeline, lead, "pql_assigned")) == 1
    assert alerts_due(pipeline)[lead] <= MONDAY + timedelta(minutes=1)  # let go with the routing


def test_the_sweep_leaves_alone_a_lead_recorded_with_no_router_as_it_always_has(engine):
    unrouted = Pipeline(engine, tz=NY, clock=now)  # `pqlbot`'s services with no roster, as tests and benches run
    stored_not_scored(unrouted, MONDAY)
    [lead] = rescore(unrouted, MONDAY)
    pipeline = team(engine, [ANA])

    assert sweep(pipeline, MONDAY + timedelta(minutes=5)) == 0
    assert reps(pipeline) == {lead: None}
    with pipeline.session() as session:
        assert session.get(Pql, lead).state == PqlState.QUALIFIED
