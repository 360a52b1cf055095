"""Who gets a new PQL (seed 002, section 5): named-account owners first, then load-balanced round-robin
within the daily cap and each rep's hours; what nobody can take waits in the queue, in priority order."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.domain.business_time import BusinessCalendar
from bot.domain.routing import FastLane
from bot.services import audit, leads
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.store.models import Account, Assignment, Notice, Pql
from tests.conftest import pilot_rules
from tests.scoring.builders import NY, Trial

THANKSGIVING = date(2026, 11, 26)
CAL = BusinessCalendar(NY, holidays=frozenset({THANKSGIVING}))
ANA, BEN, CY, BOSS = "U0ANA", "U0BEN", "U0CY", "U0BOSS"
CAP = 5
_users = itertools.count(1)


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def now() -> datetime:
    return datetime.now(UTC)  # frozen by freezegun at each step


def trial(user: str, at: datetime, tier: str, domain: str | None) -> Trial:
    """A trial that qualifies at `at` (the last signal a minute before) in `tier`: signed up the day before,
    so every signal falls on two calendar days (no multi-day points, no hold)."""
    local = at.astimezone(NY)
    day_before = local - timedelta(days=1)
    domain = domain or f"{user}.example.com"
    t = Trial(user, email=f"{user}@{domain}", company=f"{user.title()} Inc", signup=day_before)
    if tier == "fast_lane":
        return t.add("demo_requested", local - timedelta(minutes=1))
    t.add("activation_complete", day_before + timedelta(minutes=5))
    t.add("invite_sent", day_before + timedelta(minutes=10), invitee_email=f"bo@{domain}")
    if tier == "high":  # + billing views on two days: 8 points
        t.add("page_view", day_before + timedelta(minutes=15), page_path="/pricing")
        t.add("page_view", local - timedelta(minutes=2), page_path="/pricing")
    return t.add("integration_connected", local - timedelta(minutes=1), integration_type="Snowflake")


class Team:
    """A store with a router over the team calendar, the roster, and the clock frozen at each step."""

    def __init__(self, engine, roster: list[tuple[str, str | None, str | None]], *, on_call: str | None = None,
                 rules_path: str | None = None) -> None:
        self.reps = [rep for rep, _, _ in roster]
        self.router = Router(CAL, cap=CAP, manager=BOSS, fast_lane=FastLane(on_call=on_call))
        self.pipeline = Pipeline(engine, tz=NY, router=self.router, clock=now,
                                 rules_path=None if rules_path is None else Path(rules_path))
        with self.pipeline.session() as session, session.begin():
            leads.sync_roster(session, roster, now=ny(2026, 10, 1, 9))

    def lead(self, at: datetime, tier: str = "medium", domain: str | None = None) -> int:
        user = f"u{next(_users)}"
        with freeze_time(at):
            done = self.pipeline.ingest(trial(user, at, tier, domain).events, at=at)
        [pql_id] = done.rescored.triggered
        assert self.pql(pql_id).tier == tier
        return pql_id

    def drain(self, at: datetime) -> list[tuple[int, str]]:
        with freeze_time(at), self.pipeline.session() as session, session.begin():
            return self.router.drain(session, now=now())

    def pause(self, rep: str, paused: bool = True, *, at: datetime) -> None:
        with self.pipeline.session() as session, session.begin():
            leads.set_paused(session, rep, paused, now=at)

    def close(self, pql_id: int, *, at: datetime) -> None:
        """The assigned rep claims the lead and sets a disposition: it no longer counts as active."""
        with self.pipeline.session() as session, session.begin():
            pql = session.get(Pql, pql_id)
            who = leads.actor(session, pql.rep_id, manager=BOSS)
            leads.claim(session, pql, who, now=at, tz=NY, cap=CAP)
            leads.set_disposition(session, pql, who, disposition="nurture", reason=None, now=at)

    def own(self, domain: str, rep: str) -> None:
        with self.pipeline.session() as session, session.begin():
            session.merge(Account(domain=domain, owner_rep_id=rep))

    def pql(self, pql_id: int) -> Pql:
        with self.pipeline.session() as session:
            return session.get(Pql, pql_id)

    def rep_of(self, pql_id: int) -> str | None:
        return self.pql(pql_id).rep_id

    def assignments(self) -> list[Assignment]:
        with self.pipeline.session() as session:
            return list(session.exec(select(Assignment).order_by(Assignment.id)))

    def notices(self, kind: str | None = None) -> list[Notice]:
        with self.pipeline.session() as session:
            return [n for n in session.exec(select(Notice).order_by(Notice.id)) if kind in (None, n.kind)]

    def audit(self, pql_id: int, action: str) -> list[dict]:
        with self.pipeline.session() as session:
            return [e.detail for e in audit.trail(session, pql_id=pql_id) if e.action == action]


@pytest.fixture
def two(engine) -> Team:
    return Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)])


def spread(values: Counter, reps: list[str]) -> int:
    counts = [values.get(rep, 0) for rep in reps]
    return max(counts) - min(counts)


# Round-robin and load balancing ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 3])
def test_over_a_week_of_four_leads_a_day_every_rep_is_within_one_lead_of_the_others_in_total_and_per_tier(
        engine, size):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None), (CY, "Cy Park", None)][:size])
    tiers = iter(random.Random(2).choices(["medium", "high", "fast_lane"], weights=[6, 3, 1], k=20))
    given = {}
    for day in range(9, 14):  # Monday 9 to Friday 13 November 2026
        for hour, minute in [(9, 40), (11, 15), (14, 5), (16, 50)]:
            tier = next(tiers)
            given[team.lead(ny(2026, 11, day, hour, minute), tier)] = tier
    owners = {pql_id: team.rep_of(pql_id) for pql_id in given}
    assert None not in owners.values()
    assert spread(Counter(owners.values()), team.reps) <= 1
    # Load comes first (seed 002), so a lead that must go to the lighter rep goes there whatever its tier:
    # with three reps a tier can end the week 2 apart (no rule keeps every tier and the total within 1).
    # The pilot's two reps stay within 1 on this week.
    allowed = 1 if size == 2 else 2
    for tier in ("medium", "high", "fast_lane"):
        of_tier = Counter(rep for pql_id, rep in owners.items() if given[pql_id] == tier)
        assert spread(of_tier, team.reps) <= allowed, (tier, of_tier)
    assert {a.reason for a in team.assignments()} == {"round_robin"}


def test_the_rep_with_fewer_active_leads_gets_the_next_one(two):
    monday = [two.lead(ny(2026, 11, 9, 9, 10 + 5 * n)) for n in range(10)]
    assert Counter(map(two.rep_of, monday)) == {ANA: 5, BEN: 5}
    for pql_id in [p for p in monday if two.rep_of(p) == BEN][:3]:
        two.close(pql_id, at=ny(2026, 11, 9, 16))
    # Tuesday: Ana has 5 active leads and Ben 2, as in the seed's example: Ben gets leads until they are even.
    tuesday = [two.lead(ny(2026, 11, 10, 10, 5 * n)) for n in range(4)]
    assert list(map(two.rep_of, tuesday)) == [BEN, BEN, BEN, ANA]


def test_paused_reps_are_skipped(two):
    two.pause(ANA, at=ny(2026, 11, 9, 8))
    given = [two.lead(ny(2026, 11, 9, 10, n)) for n in range(3)]
    assert list(map(two.rep_of, given)) == [BEN, BEN, BEN]


def test_a_rep_with_a_timezone_of_their_own_is_skipped_outside_their_hours(engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", "Europe/Berlin")])
    late = [team.lead(ny(2026, 11, 10, 15, n)) for n in range(3)]  # 21:00 in Berlin
    assert list(map(team.rep_of, late)) == [ANA, ANA, ANA]
    morning = team.lead(ny(2026, 11, 11, 10))  # 16:00 in Berlin: Ben is in and has fewer leads
    assert team.rep_of(morning) == BEN


def test_high_and_fast_lane_leads_alternate_between_equally_loaded_reps(two):
    # Each high (then fast-lane) lead arrives when both reps are equally loaded: by load and round-robin
    # alone, every one of them would go to the same rep; the count of the tier this week spreads them.
    days = {10: ["high", "medium"] * 4, 11: ["fast_lane", "medium"] * 4}
    given = [(two.lead(ny(2026, 11, day, 9 + n, 30), tier), tier) for day, tiers in days.items()
             for n, tier in enumerate(tiers)]
    for tier, each in (("high", 2), ("fast_lane", 2), ("medium", 4)):
        assert Counter(two.rep_of(p) for p, t in given if t == tier) == {ANA: each, BEN: each}, tier


# The fast lane at any company size (seed 000: "Demo / contact-sales request | Any | Fast-lane queue") -----------


def demo_request(user: str, at: datetime, size: int | None, *, opt_out: bool = False) -> Trial:
    """A signup the day before and a demo request a minute before `at` (after an opt-out, with `opt_out`): nothing
    else, not even activation."""
    local = at.astimezone(NY)
    t = Trial(user, email=f"{user}@{user}.example.com", company="Globex", size=size, signup=local - timedelta(days=1))
    t.add("demo_requested", local - timedelta(minutes=1))
    if opt_out:
        t.add("sales_opt_out", local - timedelta(minutes=2))
    return t


@pytest.mark.parametrize(("size", "band"), [(12, "smb"), (800, "mid_market"), (5000, "enterprise"), (None, "unknown")])
def test_a_demo_request_below_inside_or_above_the_icp_or_of_unknown_size_is_a_fast_lane_pql_routed_at_once(
        two, size, band):
    at = ny(2026, 11, 10, 10)  # Tuesday, business open
    with freeze_time(at):
        done = two.pipeline.ingest(demo_request(f"asks-{band}", at, size).events, at=at)
    [pql_id] = done.rescored.triggered
    pql = two.pql(pql_id)
    assert (pql.tier, pql.state, pql.rep_id, pql.sla_due_at) == ("fast_lane", "assigned", ANA, at + timedelta(hours=1))
    assert done.rescored.results[pql_id].band == band
    [dm] = two.notices("dm")
    assert dm.target == ANA and f"PQL-{pql_id}" in dm.text


def test_an_opted_out_demo_request_from_a_5000_person_company_raises_no_pql(two):
    at = ny(2026, 11, 10, 10)
    with freeze_time(at):
        done = two.pipeline.ingest(demo_request("opted", at, 5000, opt_out=True).events, at=at)
    assert done.rescored.triggered == [] and two.notices("dm") == []


# The daily cap and the queue ---------------------------------------------------------------------------


def test_the_cap_counts_the_new_york_day_and_what_waits_goes_out_when_business_opens(two):
    thursday = [two.lead(ny(2026, 11, 12, 10, 5 * n)) for n in range(10)]
    assert Counter(map(two.rep_of, thursday)) == {ANA: 5, BEN: 5}
    # 23:30 in New York is already Friday in UTC, but it is still Thursday for the cap: it waits.
    sixth = two.lead(ny(2026, 11, 12, 23, 30))
    assert two.pql(sixth).state == "queued" and two.rep_of(sixth) is None
    # Just after midnight the caps are clear, but the queue is first in line: the newcomer waits behind it.
    newcomer = two.lead(ny(2026, 11, 13, 0, 5))
    assert two.pql(newcomer).state == "queued"
    assert two.drain(ny(2026, 11, 13, 0, 5)) == [] and two.drain(ny(2026, 11, 13, 8, 59)) == []
    opening = ny(2026, 11, 13, 9, 0)
    given = two.drain(opening)
    assert [pql_id for pql_id, _ in given] == [sixth, newcomer]
    assert {rep for _, rep in given} == {ANA, BEN}
    for pql_id in (sixth, newcomer):
        pql = two.pql(pql_id)
        assert (pql.state, pql.assigned_at) == ("assigned", opening)
    assert [a.reason for a in two.assignments()][-2:] == ["queue", "queue"]


def test_the_queue_is_shared_out_at_the_next_business_days_start_fast_lane_then_high_then_medium_then_oldest(
        engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None)])
    friday = [team.lead(ny(2026, 11, 13, 9, 5 * n)) for n in range(CAP)]
    assert set(map(team.rep_of, friday)) == {ANA}
    waiting = {name: team.lead(at, tier) for name, at, tier in [
        ("m1", ny(2026, 11, 13, 10), "medium"), ("h1", ny(2026, 11, 13, 11), "high"),
        ("m2", ny(2026, 11, 13, 13), "medium"), ("h2", ny(2026, 11, 13, 14), "high"),
        ("m3", ny(2026, 11, 13, 15), "medium"), ("m4", ny(2026, 11, 13, 16), "medium"),
        # The fast lane waits only when nobody is in business hours (and nobody is on call): the weekend.
        ("f1", ny(2026, 11, 14, 10), "fast_lane"), ("f2", ny(2026, 11, 14, 11), "fast_lane")]}
    assert {team.pql(p).state for p in waiting.values()} == {"queued"}
    assert team.drain(ny(2026, 11, 14, 12)) == []  # Saturday: closed
    monday = team.drain(ny(2026, 11, 16, 9))
    # The fast lane first, and past the cap: it does not use up Ana's 5, which go to h1, h2, m1, m2, m3.
    assert [p for p, _ in monday] == [waiting[n] for n in ("f1", "f2", "h1", "h2", "m1", "m2", "m3")]
    assert team.pql(waiting["m4"]).state == "queued"  # the cap holds
    tuesday = team.drain(ny(2026, 11, 17, 9))
    assert [p for p, _ in tuesday] == [waiting["m4"]]


def test_a_rep_back_from_a_pause_is_not_flooded_the_cap_holds_and_the_queue_is_shared(two):
    two.pause(ANA, at=ny(2026, 11, 9, 8))
    monday = [two.lead(ny(2026, 11, 9, 9 + n // 4, 10 * (n % 4))) for n in range(12)]
    assert Counter(map(two.rep_of, monday)) == {BEN: 5, None: 7}
    two.pause(ANA, False, at=ny(2026, 11, 9, 16))
    back = two.drain(ny(2026, 11, 9, 16))
    assert Counter(rep for _, rep in back) == {ANA: CAP}  # not all seven
    assert len(two.drain(ny(2026, 11, 9, 17))) == 0
    tuesday = two.drain(ny(2026, 11, 10, 9))
    assert Counter(rep for _, rep in tuesday) == {ANA: 1, BEN: 1}


def test_when_every_rep_is_paused_the_lead_waits_the_manager_is_told_once_and_nothing_is_assigned(two):
    two.pause(ANA, at=ny(2026, 11, 9, 8))
    two.pause(BEN, at=ny(2026, 11, 9, 8))
    pql_id = two.lead(ny(2026, 11, 9, 10))
    two.drain(ny(2026, 11, 9, 10, 1))
    two.drain(ny(2026, 11, 9, 11))
    pql = two.pql(pql_id)
    assert (pql.state, pql.rep_id) == ("queued", None)
    assert two.assignments() == []
    [dm] = two.notices("dm")
    assert dm.target == BOSS and f"PQL-{pql_id}" in dm.text and "every rep is paused" in dm.text
    assert two.audit(pql_id, "pql_queued")[0]["why"] == "every rep is paused"


def test_the_assigned_rep_gets_a_dm_and_the_audit_says_why(two):
    pql_id = two.lead(ny(2026, 11, 9, 10))
    [dm] = two.notices("dm")
    assert dm.target == two.rep_of(pql_id) == ANA and f"PQL-{pql_id}" in dm.text
    [assigned] = two.audit(pql_id, "pql_assigned")
    assert assigned["rep"] == ANA and assigned["reason"] == "round_robin"
    assert assigned["why"].startswith("round-robin: fewest active leads (0)")


# The named-account override ----------------------------------------------------------------------------


def test_a_named_accounts_lead_goes_to_its_owner_even_past_the_cap(engine, tmp_path):
    # User leads only (no account triggers): with them, five of bigco's users would be one account lead (below).
    two = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], rules_path=pilot_rules(tmp_path))
    two.own("bigco.com", ANA)
    bigco = [two.lead(ny(2026, 11, 9, 9, 10 * n), domain="bigco.com") for n in range(CAP + 1)]
    assert set(map(two.rep_of, bigco)) == {ANA}
    assert {a.reason for a in two.assignments()} == {"override"}
    assert two.audit(bigco[-1], "pql_assigned")[0]["why"] == "named account owner"
    assert two.rep_of(two.lead(ny(2026, 11, 9, 11))) == BEN  # Ana is over the cap for everyone else


def test_five_users_of_a_named_account_are_one_account_lead_for_its_owner_and_a_sixth_joins_it(two):
    two.own("bigco.com", ANA)
    first = [two.lead(ny(2026, 11, 9, 9, 10 * n), domain="bigco.com") for n in range(4)]
    with freeze_time(ny(2026, 11, 9, 9, 50)):
        done = two.pipeline.ingest(trial("u-fifth", ny(2026, 11, 9, 9, 50), "medium", "bigco.com").events,
                                   at=ny(2026, 11, 9, 9, 50))
    assert done.rescored.triggered == []  # no alert of its own: the account lead is one of the four, kept
    with freeze_time(ny(2026, 11, 9, 10)), two.pipeline.session() as session:
        found = session.exec(select(Pql)).all()
    [account] = [q for q in found if q.level == "account"]
    assert account.id in first and account.account_key == "domain:bigco.com" and account.rep_id == ANA
    assert {q.state for q in found if q.id != account.id} == {"absorbed"}
    with freeze_time(ny(2026, 11, 9, 10, 30)):
        sixth = two.pipeline.ingest(trial("u-sixth", ny(2026, 11, 9, 10, 30), "medium", "bigco.com").events,
                                    at=ny(2026, 11, 9, 10, 30))
    assert sixth.rescored.triggered == []  # joins the account lead's contact map, no lead of its own
    with two.pipeline.session() as session:
        assert {q.user_id for q in session.exec(select(Pql))} == {q.user_id for q in found}


def test_a_paused_owners_account_falls_back_to_round_robin(two):
    two.own("bigco.com", ANA)
    two.pause(ANA, at=ny(2026, 11, 9, 8))
    pql_id = two.lead(ny(2026, 11, 9, 10), domain="bigco.com")
    assert two.rep_of(pql_id) == BEN
    assert two.assignments()[-1].reason == "round_robin"


# SLA due times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("recorded", "tier", "due"), [
    (ny(2026, 11, 13, 17, 30), "medium", ny(2026, 11, 16, 12, 30)),  # 30 min on Friday + 3.5 h on Monday
    (ny(2026, 11, 13, 17, 30), "high", ny(2026, 11, 16, 10, 30)),
    (ny(2026, 11, 13, 17, 30), "fast_lane", ny(2026, 11, 16, 9, 30)),
    (ny(2026, 11, 14, 11, 0), "medium", ny(2026, 11, 16, 13, 0)),  # Saturday: the clock starts Monday
    (ny(2026, 10, 30, 17, 0), "high", ny(2026, 11, 2, 10, 0)),  # clocks fell back on Sunday 1 November
    (ny(2026, 3, 6, 17, 0), "medium", ny(2026, 3, 9, 12, 0)),  # and went forward on Sunday 8 March
    (ny(2026, 11, 25, 16, 0), "medium", ny(2026, 11, 27, 11, 0)),  # Thanksgiving is skipped
])
def test_the_sla_clock_runs_in_business_hours_across_weekends_dst_and_holidays(two, recorded, tier, due):
    pql = two.pql(two.lead(recorded, tier))
    assert pql.sla_due_at == due
    assert pql.sla_due_at.astimezone(NY).hour == due.hour  # the wall clock, on either side of a DST change


def test_weekend_leads_wait_for_monday_and_count_against_mondays_cap(two):
    weekend = [two.lead(ny(2026, 11, 7, 11, n)) for n in range(8)]  # Saturday
    assert all(two.rep_of(pql_id) is None for pql_id in weekend)
    assert "outside business hours" in two.audit(weekend[0], "pql_queued")[0]["why"]
    two.drain(ny(2026, 11, 8, 12, 0))  # Sunday: still closed
    assert all(two.rep_of(pql_id) is None for pql_id in weekend)
    two.drain(ny(2026, 11, 9, 9, 0))  # Monday's opening shares them out
    given = Counter(two.rep_of(pql_id) for pql_id in weekend)
    assert given == {ANA: 4, BEN: 4}
    monday = [two.lead(ny(2026, 11, 9, 10, n)) for n in range(3)]
    assert Counter(two.rep_of(pql_id) for pql_id in monday) == {ANA: 1, BEN: 1, None: 1}  # 5 each: the cap


def test_a_claim_and_a_routing_racing_for_a_rep_one_under_the_cap_give_them_one_lead_not_two(engine, monkeypatch):
    """Ana has 4 new leads today. She claims a queued lead while a new lead is being routed to her. The claim
    counts her at 4 and is held there (as a slow transaction would be) while the routing runs: the routing
    must wait for it and then find her at the cap, not count 4 as well and give her a sixth lead."""
    team = Team(engine, [(ANA, "Ana Ruiz", None)])
    monday = ny(2026, 11, 9, 10, 0)
    team.pause(ANA, at=monday)
    waiting = team.lead(monday)  # nobody available: queued (medium), claimable
    team.pause(ANA, False, at=monday)
    for minute in range(1, 5):  # high leads do not wait behind a medium one
        assert team.rep_of(team.lead(monday + timedelta(minutes=minute), "high")) == ANA
    counted, routed = threading.Event(), threading.Event()
    real_count = leads.new_today

    def counted_then_held(session, rep_id, **kwargs):
        count = real_count(session, rep_id, **kwargs)
        if threading.current_thread().name == "claim":
            counted.set()
            routed.wait(1.5)  # without a hold on Ana the routing finishes meanwhile
        return count

    monkeypatch.setattr(leads, "new_today", counted_then_held)
    outcome = {}

    def claim() -> None:
        with team.pipeline.session() as session, session.begin():
            pql = session.get(Pql, waiting)
            who = leads.actor(session, ANA, manager=BOSS)
            try:
                leads.claim(session, pql, who, now=monday + timedelta(minutes=6), tz=NY, cap=CAP)
                outcome["claim"] = "won"
            except leads.Refused as refusal:
                outcome["claim"] = str(refusal)

    with freeze_time(monday + timedelta(minutes=6)):
        claimer = threading.Thread(target=claim, name="claim")
        claimer.start()
        assert counted.wait(10)
        newcomer = team.lead(monday + timedelta(minutes=6), "high")
        routed.set()
        claimer.join(10)
    with team.pipeline.session() as session:
        today = real_count(session, ANA, now=monday + timedelta(minutes=7), tz=NY)
    assert today == CAP
    assert outcome["claim"] == "won"  # it counted first, so it goes first
    assert team.pql(newcomer).state == "queued" and team.rep_of(newcomer) is None


# The fast lane: never capped, never stuck (seed 000: "the only acceptable response is speed") ---------------


def test_a_demo_request_when_every_rep_is_at_the_cap_is_assigned_within_the_minute_not_queued(two):
    monday = [two.lead(ny(2026, 11, 9, 9, 5 * n)) for n in range(2 * CAP)]
    assert Counter(map(two.rep_of, monday)) == {ANA: CAP, BEN: CAP}
    at = ny(2026, 11, 9, 10, 30)
    ask = two.pql(two.lead(at, "fast_lane"))
    assert (ask.state, ask.rep_id, ask.assigned_at) == ("assigned", ANA, at)
    assert ask.sla_due_at == at + timedelta(hours=1)  # its 1-hour clock
    assert two.audit(ask.id, "pql_queued") == []
    assert two.audit(ask.id, "pql_assigned")[0]["why"].startswith("fast lane (never capped)")
    # Ana sees it on her day, but it does not use up her 5: the cap still holds for everyone else's leads.
    with two.pipeline.session() as session:
        assert leads.new_today(session, ANA, now=at, tz=NY) == CAP
        assert leads.fast_lane_today(session, ANA, now=at, tz=NY) == 1
    assert two.pql(two.lead(ny(2026, 11, 9, 10, 40))).state == "queued"
    # A second ask goes to the other rep (load balance), also past the cap.
    assert two.rep_of(two.lead(ny(2026, 11, 9, 10, 45), "fast_lane")) == BEN


def test_fast_lane_leads_do_not_use_up_the_cap_a_rep_with_three_asks_still_gets_five_new_leads(engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None)])
    asks = [team.lead(ny(2026, 11, 10, 9, 5 * n), "fast_lane") for n in range(3)]
    given = [team.lead(ny(2026, 11, 10, 10, 5 * n)) for n in range(CAP + 1)]
    assert set(map(team.rep_of, asks)) == {ANA}
    assert [team.rep_of(p) for p in given] == [ANA] * CAP + [None]


@pytest.mark.parametrize("at", [
    ny(2026, 11, 10, 22, 0),  # Tuesday night
    ny(2026, 11, 14, 11, 0),  # Saturday
    ny(2026, 11, 26, 11, 0),  # Thanksgiving
    ny(2026, 3, 9, 8, 59),  # Monday, a minute before the first opening after clocks went forward
    ny(2026, 11, 2, 8, 59),  # Monday, a minute before the first opening after clocks fell back
])
def test_out_of_hours_a_demo_request_goes_to_the_on_call_rep_at_once(engine, at):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], on_call=BEN)
    ask = team.pql(team.lead(at, "fast_lane"))
    assert (ask.state, ask.rep_id, ask.assigned_at) == ("assigned", BEN, at)
    assert team.assignments()[-1].reason == "on_call"
    assert "the on-call rep" in team.audit(ask.id, "pql_assigned")[0]["why"]
    assert ask.sla_due_at == CAL.add(at, timedelta(hours=1))  # the clock is the same 1 business hour
    assert [n.target for n in team.notices("dm")] == [BEN]  # Ben is told; the manager is not bothered
    assert team.pql(team.lead(at - timedelta(minutes=1))).state == "queued"  # the rest still wait for the opening


@pytest.mark.parametrize(("at", "opening"), [
    (ny(2026, 11, 10, 22, 0), ny(2026, 11, 11, 9, 0)),  # Tuesday night
    (ny(2026, 11, 14, 11, 0), ny(2026, 11, 16, 9, 0)),  # Saturday
    (ny(2026, 11, 26, 11, 0), ny(2026, 11, 27, 9, 0)),  # Thanksgiving
    (ny(2026, 3, 7, 23, 0), ny(2026, 3, 9, 9, 0)),  # the weekend clocks went forward
    (ny(2026, 10, 31, 23, 0), ny(2026, 11, 2, 9, 0)),  # the weekend clocks fell back
])
def test_out_of_hours_with_nobody_on_call_the_manager_hears_at_once_once_and_it_goes_first_at_the_opening(
        two, at, opening):
    ask = two.lead(at, "fast_lane")
    assert (two.pql(ask).state, two.rep_of(ask)) == ("queued", None)
    [dm] = two.notices("dm")
    assert (dm.target, dm.key) == (BOSS, f"unroutable:{ask}") and f"PQL-{ask}" in dm.text
    assert "no on-call rep is set" in dm.text and "nobody is in business hours" in dm.text
    assert two.drain(at + timedelta(minutes=1)) == [] and two.drain(opening - timedelta(minutes=1)) == []
    medium = two.lead(opening - timedelta(minutes=1))  # waits for the opening too, behind the ask
    assert [n.key for n in two.notices("dm")] == [f"unroutable:{ask}"]  # once, however often the queue is read
    assert two.drain(opening) == [(ask, ANA), (medium, BEN)]
    assert two.pql(ask).assigned_at == opening
    assert "from the queue" in two.audit(ask, "pql_assigned")[0]["why"]


def test_a_demo_request_goes_to_a_rep_in_their_own_hours_while_the_team_is_closed(engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", "Europe/Berlin")])
    at = ny(2026, 11, 11, 4, 0)  # 10:00 in Berlin, 04:00 in New York
    assert team.rep_of(team.lead(at, "fast_lane")) == BEN
    assert team.pql(team.lead(at + timedelta(minutes=1))).state == "queued"  # the capped lane waits for New York


def test_when_every_rep_is_paused_a_demo_request_tells_the_manager_at_once_and_a_rep_past_the_cap_may_claim_it(
        engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None)], on_call=ANA)
    monday = [team.lead(ny(2026, 11, 9, 9, 5 * n)) for n in range(CAP)]
    assert set(map(team.rep_of, monday)) == {ANA}
    team.pause(ANA, at=ny(2026, 11, 9, 11))
    ask = team.lead(ny(2026, 11, 9, 11, 30), "fast_lane")
    assert team.pql(ask).state == "queued"
    [dm] = [n for n in team.notices("dm") if n.target == BOSS]
    assert dm.key == f"unroutable:{ask}" and "every rep is paused" in dm.text
    team.drain(ny(2026, 11, 9, 11, 31))
    assert len([n for n in team.notices("dm") if n.target == BOSS]) == 1
    team.pause(ANA, False, at=ny(2026, 11, 9, 11, 40))
    with team.pipeline.session() as session, session.begin():  # at 5 of 5, Ana may still take the ask
        pql = session.get(Pql, ask)
        leads.claim(session, pql, leads.actor(session, ANA, manager=BOSS), now=ny(2026, 11, 9, 11, 41), tz=NY,
                    cap=CAP)
    assert team.pql(ask).claimed_by == ANA


@pytest.mark.parametrize(("on_call", "goes_to"), [(None, None), (BEN, BEN)])
def test_a_lead_waiting_at_night_that_becomes_a_demo_request_goes_on_call_or_the_manager_hears_within_the_minute(
        engine, on_call, goes_to):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], on_call=on_call)
    night = ny(2026, 11, 10, 22, 0)
    t = trial("nightowl", night, "medium", None)
    with freeze_time(night):
        [pql_id] = team.pipeline.ingest(t.events, at=night).rescored.triggered
    assert team.pql(pql_id).state == "queued"
    asked = night + timedelta(minutes=30)
    t.add("demo_requested", asked - timedelta(minutes=1))
    with freeze_time(asked):
        team.pipeline.ingest(t.events[-1:], at=asked)
    assert team.pql(pql_id).tier == "fast_lane"
    given = team.drain(asked + timedelta(minutes=1))  # the next sweep's queue step
    assert given == ([(pql_id, goes_to)] if goes_to else [])
    told = [n for n in team.notices("dm") if n.target == BOSS]
    assert [n.key for n in told] == ([] if goes_to else [f"unroutable:{pql_id}"])
    team.drain(asked + timedelta(minutes=2))
    assert len([n for n in team.notices("dm") if n.target == BOSS]) == len(told)  # once


# Routing at scale: the leads one transaction raised, routed as a set -----------------------------------------


def _routed(session, pql_ids: list[int]) -> list[tuple]:
    """What routing left for these leads, in the order it was written, each lead named by its user (ids differ
    between two runs on PostgreSQL, whose sequences do not roll back)."""
    from bot.store.models import AuditEntry

    users = {pql.id: pql.user_id for pql in session.exec(select(Pql).where(Pql.id.in_(pql_ids)))}

    def named(text: str | None) -> str | None:
        for pql_id, user in sorted(users.items(), key=lambda item: -item[0]):
            text = text and text.replace(f"PQL-{pql_id}", f"PQL-<{user}>").replace(f":{pql_id}:", f":<{user}>:")
        return text and text.removesuffix(f":{pql_ids[0]}")

    leads_left = [(users[p.id], p.state, p.rep_id, p.tier, p.sla_due_at, p.assigned_at, p.version)
                  for p in session.exec(select(Pql).where(Pql.id.in_(pql_ids)).order_by(Pql.user_id))]
    given = [(users[a.pql_id], a.rep_id, a.reason, a.at)
             for a in session.exec(select(Assignment).where(Assignment.pql_id.in_(pql_ids)).order_by(Assignment.id))]
    entries = [(users[e.pql_id], e.action, e.detail) for e in session.exec(
        select(AuditEntry).where(AuditEntry.pql_id.in_(pql_ids), AuditEntry.action.in_(["pql_assigned", "pql_queued"]))
        .order_by(AuditEntry.id))]
    told = [(n.kind, n.target, named(n.key if not n.key.startswith("unroutable:") else f"unroutable:<"
                                     f"{users[n.pql_id]}>"), named(n.text))
            for n in session.exec(select(Notice).where(Notice.pql_id.in_(pql_ids), Notice.kind == "dm")
                                  .order_by(Notice.id))]
    return [leads_left, given, entries, told]


def test_leads_raised_together_are_routed_as_a_set_exactly_as_one_at_a_time(engine, tmp_path):
    """A backfill's leads are routed from one read of the roster and the queue, the counts kept as they go: each
    lead gets the rep, reason, audit entry, SLA and DM routing them one at a time in turn gives, past the cap,
    behind a growing queue, to a named account's owner, and the fast lane's to a rep at once."""
    from bot.services.rescore import rescore

    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None), (CY, "Cy Tan", "Europe/London")],
                rules_path=pilot_rules(tmp_path))
    team.own("bigco.com", BEN)
    at = ny(2026, 11, 23, 15)  # a Monday afternoon: London's Cy has gone home
    events = []
    for n, tier in enumerate(["medium", "high", "fast_lane", "medium", "high", "medium", "fast_lane", "medium"] * 3):
        events += trial(f"set{n:02d}", at - timedelta(minutes=30 - n), tier, "bigco.com" if n == 5 else None).events
    with freeze_time(at):
        team.pipeline.ingest(events, at=at, score=False)
    runs = []
    for one_at_a_time in (False, True):
        with freeze_time(at), team.pipeline.session() as session:
            session.begin()
            report = rescore(session, team.pipeline.rules, at=at, tz=NY, basis=team.pipeline.basis)
            assert len(report.triggered) == 24
            if one_at_a_time:
                for pql_id in report.triggered:
                    team.router.route(session, session.get(Pql, pql_id), now=at)
            else:
                team.router.route_all(session, report.triggered, now=at)
            runs.append(_routed(session, report.triggered))
            session.rollback()
    as_a_set, one_by_one = runs
    assert as_a_set == one_by_one
    leads_left, given, entries, told = as_a_set
    assert {rep for _, rep, _, _ in given} == {ANA, BEN}  # Cy is out of hours
    # The 6 fast-lane leads, then up to the cap: Ben's named account's lead counts against his.
    assert sum(reason == "round_robin" for _, _, reason, _ in given) == 6 + 2 * CAP - 1
    assert [detail["rep"] for user, action, detail in entries if user == "set05"] == [BEN]  # the named owner
    waiting = [detail["why"] for _, action, detail in entries if action == "pql_queued"]
    assert waiting[0].startswith("every available rep is at today's cap of 5")
    # Each lead's place counts those queued before it in this same set: every one waiting for a medium lead, only the
    # high ones for a high lead (the first high to wait has none ahead: the cap holds it).
    cap = "every available rep is at today's cap of 5 (or outside their hours)"
    ahead = "{} in the queue at its priority or above"
    assert waiting == [cap, ahead.format("1 earlier lead waits"), ahead.format("2 earlier leads wait"), cap,
                       ahead.format("4 earlier leads wait"), ahead.format("1 earlier lead waits"),
                       ahead.format("6 earlier leads wait"), ahead.format("7 earlier leads wait")]
    assert len([kind for kind, *_ in told]) == len(given)  # one DM per lead given, none for the queued



def test_a_lead_taken_back_and_given_again_the_same_day_counts_once_against_the_cap(engine):
    """Ana had three leads today; her manager took one back to the queue while she was paused, and three more came
    in. When she is back, the queue is shared out from one read of the counts (`_route_set`): the lead she had
    already comes back to her without counting a second time, so two new ones fit under the cap of 5, not one."""
    team = Team(engine, [(ANA, "Ana Ruiz", None)])
    mine = [team.lead(ny(2026, 11, 10, 9, 10 + n)) for n in range(3)]
    team.pause(ANA, at=ny(2026, 11, 10, 9, 50))
    with team.pipeline.session() as session, session.begin():
        leads.release(session, session.get(Pql, mine[0]), leads.actor(session, BOSS, manager=BOSS),
                      now=ny(2026, 11, 10, 10))
    waiting = [team.lead(ny(2026, 11, 10, 10, 10 + n)) for n in range(3)]
    assert [team.pql(pql_id).state for pql_id in (mine[0], *waiting)] == ["queued"] * 4
    team.pause(ANA, False, at=ny(2026, 11, 10, 11))
    team.drain(ny(2026, 11, 10, 11, 1))
    assert [team.rep_of(pql_id) for pql_id in (mine[0], *waiting)] == [ANA, ANA, ANA, None]


def test_a_set_knows_when_each_of_its_leads_was_last_given_to_each_rep(engine):
    """What keeps a set's counts those of routing each lead alone (`_given_before`): the latest time each lead went
    to each rep, read in one statement, whatever the store's types (an integer id, a datetime)."""
    from bot.services.routing import _given_before

    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)])
    first, second = team.lead(ny(2026, 11, 10, 9)), team.lead(ny(2026, 11, 10, 9, 5))
    with team.pipeline.session() as session, session.begin():
        for pql_id, rep, at in ((first, ANA, ny(2026, 11, 10, 12)), (first, ANA, ny(2026, 11, 10, 10)),
                                (first, BEN, ny(2026, 11, 10, 11))):
            session.add(Assignment(pql_id=pql_id, rep_id=rep, reason="manual", at=at))
    latest = {(a.pql_id, a.rep_id): a.at for a in team.assignments()}
    with team.pipeline.session() as session:
        found = _given_before(session.connection(), [first, 10_000])
    assert found == {(first, ANA): ny(2026, 11, 10, 12), (first, BEN): ny(2026, 11, 10, 11)}
    assert (second, team.rep_of(second)) in latest and all(pql_id == first for pql_id, _ in found)
