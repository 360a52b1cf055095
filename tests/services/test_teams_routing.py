"""Routing with teams (bot/domain/teams.py, bot/services/routing.py): the matrix chooses the team, then the team's own
members, cap, hours, holidays, SLA and manager decide the rep; teams in other timezones open by their own clocks
across nights, weekends, DST changes and holidays. Both stores."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.domain.teams import parse
from bot.services import audit, leads
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.store.models import Account, Notice, Pql
from tests.scoring.builders import NY, Trial

BERLIN = ZoneInfo("Europe/Berlin")
ANA, BEN, NOOR, OLA, BOSS, EMEA_BOSS = "U0ANA", "U0BEN", "U0NOOR", "U0OLA", "U0BOSS", "U0EMEABOSS"
THANKSGIVING = date(2026, 11, 26)

TEAMS = f"""
default = "ny"

[teams.ny]
label = "New York SDRs"
timezone = "America/New_York"
holidays = ["{THANKSGIVING}"]
daily_cap = 1
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor", timezone = "America/Chicago" }}]

[teams.emea]
label = "EMEA desk"
timezone = "Europe/Berlin"
daily_cap = 2
escalate_to = "{EMEA_BOSS}"
members = [{{ id = "{NOOR}", name = "Noor Haddad", timezone = "Europe/Berlin" }},
           {{ id = "{OLA}", name = "Ola Berg", timezone = "Europe/Berlin" }}]
[teams.emea.sla]
fast_lane = "30m"
medium = "3h"

[[routes]]
why = "explicit asks: the EMEA desk answers them"
fast_lane = true
team = "emea"

[[routes]]
acv_min = 25000
team = "emea"
"""
_users = itertools.count(1)


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def now() -> datetime:
    return datetime.now(UTC)


def trial(at: datetime, tier: str, size: int | None, industry: str | None) -> Trial:
    """A trial that qualifies at `at` in `tier` (medium or fast_lane), with `size` employees (mid-market: an ACV
    estimate of $20,000, $25,000 in fintech)."""
    user = f"t{next(_users)}"
    local = at.astimezone(NY)
    day_before = local - timedelta(days=1)
    t = Trial(user, email=f"{user}@{user}.example.com", company=f"{user} Inc", size=size, signup=day_before,
              industry=industry)
    if tier == "fast_lane":
        return t.add("demo_requested", local - timedelta(minutes=1))
    t.add("activation_complete", day_before + timedelta(minutes=5))
    t.add("invite_sent", day_before + timedelta(minutes=10), invitee_email=f"bo@{user}.example.com")
    return t.add("integration_connected", local - timedelta(minutes=1), integration_type="Snowflake")


class Desk:
    def __init__(self, engine, text: str = TEAMS) -> None:
        self.teams = parse(text, "teams.toml")
        any_team = self.teams.teams[self.teams.default]
        self.router = Router(any_team.calendar, cap=5, manager=None, teams=self.teams)
        self.pipeline = Pipeline(engine, tz=NY, router=self.router, clock=now)
        with self.pipeline.session() as session, session.begin():
            leads.sync_roster(session, self.teams.members(), now=ny(2026, 1, 1, 9))

    def lead(self, at: datetime, tier: str = "medium", size: int | None = 800, domain_owner: str | None = None,
             big: bool = False) -> Pql:
        """A lead; `big`: in fintech, so $25,000 ACV: the EMEA desk's by the matrix's second row."""
        t = trial(at, tier, size, "fintech" if big else None)
        if domain_owner:
            with self.pipeline.session() as session, session.begin():
                session.merge(Account(domain=f"{t.user}.example.com", owner_rep_id=domain_owner))
        with freeze_time(at):
            done = self.pipeline.ingest(t.events, at=at)
        [pql_id] = done.rescored.triggered
        return self.pql(pql_id)

    def pql(self, pql_id: int) -> Pql:
        with self.pipeline.session() as session:
            return session.get(Pql, pql_id)

    def drain(self, at: datetime) -> dict[int, str]:
        with freeze_time(at), self.pipeline.session() as session, session.begin():
            return dict(self.router.drain(session, now=now()))

    def audit(self, pql_id: int, action: str) -> list[dict]:
        with self.pipeline.session() as session:
            return [e.detail for e in audit.trail(session, pql_id=pql_id) if e.action == action]

    def dms(self, to: str) -> list[str]:
        with self.pipeline.session() as session:
            return [n.text for n in session.exec(select(Notice).where(Notice.kind == "dm", Notice.target == to))]


@pytest.fixture
def desk(engine) -> Desk:
    return Desk(engine)


def test_the_matrix_chooses_the_team_and_only_its_members_get_its_leads(desk):
    monday = ny(2026, 11, 9, 10)  # 16:00 in Berlin: both teams open
    enterprise = desk.lead(monday, big=True)
    mid_market = desk.lead(monday + timedelta(minutes=5), size=800)
    assert (enterprise.team, enterprise.rep_id in {NOOR, OLA}) == ("emea", True)
    assert (mid_market.team, mid_market.rep_id in {ANA, BEN}) == ("ny", True)
    [given] = desk.audit(enterprise.id, "pql_assigned")
    assert (given["team"], given["row"]) == ("emea", 2)
    assert given["why"].startswith("team EMEA desk (routing matrix row 2): ACV $25,000-up; round-robin: ")
    [given] = desk.audit(mid_market.id, "pql_assigned")
    assert given["why"].startswith("team New York SDRs (the default team); round-robin: ")


def test_each_team_has_its_own_daily_cap(desk):
    monday = ny(2026, 11, 9, 10)
    ny_leads = [desk.lead(monday + timedelta(minutes=n)) for n in range(3)]
    assert [p.rep_id for p in ny_leads[:2]] in ([ANA, BEN], [BEN, ANA])  # a cap of 1 each
    assert ny_leads[2].state == "queued" and ny_leads[2].team == "ny"
    [queued] = desk.audit(ny_leads[2].id, "pql_queued")
    assert "today's cap of 1" in queued["why"]
    emea = [desk.lead(monday + timedelta(minutes=10 + n), big=True) for n in range(4)]
    assert sorted(p.rep_id for p in emea) == [NOOR, NOOR, OLA, OLA]  # a cap of 2 each, untouched by New York's
    # The next morning each queue goes to its own team: New York's waiting lead to a New York rep.
    assert desk.drain(ny(2026, 11, 10, 9, 5)) == {ny_leads[2].id: desk.pql(ny_leads[2].id).rep_id}
    assert desk.pql(ny_leads[2].id).rep_id in {ANA, BEN}


def test_across_a_night_each_team_opens_by_its_own_clock(desk):
    evening = ny(2026, 11, 9, 20)  # 02:00 in Berlin: both closed
    emea = desk.lead(evening, big=True)
    home = desk.lead(evening + timedelta(minutes=1))
    assert (emea.state, home.state) == ("queued", "queued")
    berlin_morning = datetime(2026, 11, 10, 9, 5, tzinfo=BERLIN)  # 03:05 in New York
    assert desk.drain(berlin_morning) == {emea.id: desk.pql(emea.id).rep_id}
    assert desk.pql(emea.id).rep_id in {NOOR, OLA} and desk.pql(home.id).state == "queued"
    [given] = desk.audit(emea.id, "pql_assigned")  # its team, as chosen when it was queued: not "the default team"
    assert given["why"].startswith("team EMEA desk; from the queue, in priority order")
    assert set(desk.drain(ny(2026, 11, 10, 9, 1))) == {home.id}
    # Each one's first touch is due by its own team's opening and SLA: 3 h in Berlin, 4 h in New York.
    assert desk.pql(emea.id).sla_due_at == datetime(2026, 11, 10, 12, tzinfo=BERLIN)
    assert desk.pql(home.id).sla_due_at == ny(2026, 11, 10, 13)


@pytest.mark.parametrize(("at", "berlin_open"), [
    (ny(2026, 3, 2, 3, 30), True),    # New York on EST: 09:30 in Berlin
    (ny(2026, 3, 9, 3, 30), False),   # New York on EDT since 8 March, Berlin not until the 29th: 08:30 there
    (ny(2026, 10, 26, 3, 30), False),  # Berlin back on CET since 25 October, New York on EDT: 08:30 there
    (ny(2026, 11, 2, 3, 30), True),   # New York back on EST since 1 November: 09:30 in Berlin
])
def test_across_the_dst_changes_a_berlin_team_opens_at_nine_berlin_time(desk, at, berlin_open):
    lead = desk.lead(at, big=True)
    assert (lead.state == "assigned", lead.team) == (berlin_open, "emea")
    opens = datetime.combine(at.astimezone(BERLIN).date(), datetime.min.time().replace(hour=9), BERLIN)
    assert desk.pql(lead.id).sla_due_at == (at if berlin_open else opens) + timedelta(hours=3)


def test_at_the_weekend_a_fast_lane_lead_waits_for_its_team_and_its_manager_hears_at_once(desk):
    saturday = ny(2026, 11, 14, 11)
    demo = desk.lead(saturday, "fast_lane", size=None)
    assert (demo.team, demo.state) == ("emea", "queued")
    assert [t for t in desk.dms(EMEA_BOSS) if demo.ref in t]  # the EMEA desk's manager, not New York's
    assert not desk.dms(BOSS)
    monday_berlin = datetime(2026, 11, 16, 9, 0, tzinfo=BERLIN)
    assert set(desk.drain(monday_berlin)) == {demo.id}
    assert desk.pql(demo.id).sla_due_at == monday_berlin + timedelta(minutes=30)  # the EMEA desk's 30 minutes


def test_on_a_team_s_holiday_its_leads_wait_while_the_other_team_works(desk):
    thanksgiving = ny(2026, 11, 26, 10)
    home = desk.lead(thanksgiving)
    emea = desk.lead(thanksgiving + timedelta(minutes=1), big=True)
    assert (home.state, emea.state) == ("queued", "assigned")
    [queued] = desk.audit(home.id, "pql_queued")
    assert "outside business hours" in queued["why"]
    assert desk.pql(home.id).sla_due_at == ny(2026, 11, 27, 13)  # Friday's opening + 4 h


def test_a_named_account_owner_still_comes_first(desk):
    lead = desk.lead(ny(2026, 11, 9, 10), big=True, domain_owner=ANA)
    assert (lead.rep_id, lead.team) == (ANA, "emea")
    [given] = desk.audit(lead.id, "pql_assigned")
    assert given["reason"] == "override" and given["why"].endswith("; named account owner")


def test_with_one_team_and_no_matrix_nothing_is_said_of_teams(engine):
    one = TEAMS.split("[teams.emea]")[0].replace("[[routes]]", "")
    desk = Desk(engine, one)
    lead = desk.lead(ny(2026, 11, 9, 10))
    [given] = desk.audit(lead.id, "pql_assigned")
    assert "team" not in given and given["why"].startswith("round-robin")


# Routing at scale: a set of leads with teams, decided as routing each alone in turn would -------------------------

SET_TEAMS = TEAMS.replace(f'escalate_to = "{EMEA_BOSS}"', f'escalate_to = "{EMEA_BOSS}"\non_call = "{NOOR}"\n'
                          'alert_channel = "#pql-emea"')


def _left(session, pql_ids: list[int]) -> list[tuple]:
    """What routing left for these leads, each named by its user (ids differ between two runs on PostgreSQL, whose
    sequences do not roll back): the lead, its assignments, its audit entries, the DMs, its alert's channel and
    HubSpot's owner change."""
    from bot.store.models import Assignment, AuditEntry

    users = {pql.id: pql.user_id for pql in session.exec(select(Pql).where(Pql.id.in_(pql_ids)))}

    def named(text: str | None) -> str | None:
        for pql_id, user in sorted(users.items(), key=lambda item: -item[0]):
            text = text and text.replace(f"PQL-{pql_id}", f"PQL-<{user}>")
        return text

    def key(notice: Notice) -> str:  # its lead named, its last part (a time, a version) left out
        parts = notice.key.split(":")[:-1]
        at = parts.index(str(notice.pql_id)) if str(notice.pql_id) in parts else len(parts)
        return ":".join(parts[:at] + [f"<{users[notice.pql_id]}>"] + parts[at + 1:])

    leads_left = [(p.user_id, p.state, p.rep_id, p.team, p.sla_due_at, p.version)
                  for p in session.exec(select(Pql).where(Pql.id.in_(pql_ids)).order_by(Pql.user_id))]
    given = [(users[a.pql_id], a.rep_id, a.reason)
             for a in session.exec(select(Assignment).where(Assignment.pql_id.in_(pql_ids)).order_by(Assignment.id))]
    entries = [(users[e.pql_id], e.action, e.detail) for e in session.exec(
        select(AuditEntry).where(AuditEntry.pql_id.in_(pql_ids), AuditEntry.action.in_(["pql_assigned", "pql_queued"]))
        .order_by(AuditEntry.id))]
    told = sorted((n.kind, users[n.pql_id], n.target, n.channel, key(n), named(n.text),
                   str(n.payload)) for n in session.exec(select(Notice).where(Notice.pql_id.in_(pql_ids))))
    return [leads_left, given, entries, told]


@pytest.mark.parametrize("at", [ny(2026, 11, 9, 10), ny(2026, 11, 9, 13, 30)], ids=["both-open", "berlin-closed"])
def test_a_set_of_leads_with_teams_is_routed_as_each_alone_in_turn(engine, at, monkeypatch):
    """A backfill's leads with a teams file, decided from one read per team: each gets the team (matrix row or
    default), rep, reason, `/pql why`, SLA, alert channel, DM and HubSpot owner change routing them one at a time
    gives, across the fast lane (to EMEA, its on-call rep once Berlin has closed), both teams' caps binding behind a
    queue already waiting, named-account owners (one on the other team, one paused) and a paused rep. On PostgreSQL
    the set's writes go as a backfill's thousands do, staged in one statement each (`BulkWriter`), and one lead's
    row by row: they must leave the same."""
    import random

    from bot.services import tracking
    from bot.services.rescore import rescore
    from bot.store import bulk

    monkeypatch.setattr(bulk, "STAGE_FROM", 2)

    desk = Desk(engine, SET_TEAMS)
    desk.lead(at - timedelta(minutes=50))  # New York's cap of 1 each, then one waiting in its queue
    desk.lead(at - timedelta(minutes=45))
    assert desk.lead(at - timedelta(minutes=40)).state == "queued"
    with desk.pipeline.session() as session, session.begin():
        leads.set_paused(session, OLA, True, now=at)
    mix = random.Random(17)
    events = []
    for n in range(30):
        tier = mix.choice(["medium", "medium", "fast_lane"])
        t = trial(at - timedelta(minutes=30 - n), tier, mix.choice([800, None]), mix.choice(["fintech", None]))
        if owner := mix.choice([None, None, None, ANA, NOOR, OLA]):
            with desk.pipeline.session() as session, session.begin():
                session.merge(Account(domain=f"{t.user}.example.com", owner_rep_id=owner))
        events += t.events
    with freeze_time(at):
        desk.pipeline.ingest(events, at=at, score=False)
    tracking.configure({"hubspot"})
    try:
        runs = []
        for how in ("as a set", "one at a time", "with the verdicts in hand"):
            with freeze_time(at), desk.pipeline.session() as session:
                session.begin()
                report = rescore(session, desk.pipeline.rules, at=at, tz=NY, basis=desk.pipeline.basis)
                if how == "one at a time":
                    for pql_id in report.triggered:
                        desk.router.route_all(session, [pql_id], now=at)
                else:  # the matrix reading each lead's verdict from the store, or from those the rescore wrote
                    held = report.results if how == "with the verdicts in hand" else None
                    desk.router.route_all(session, report.triggered, now=at, verdicts=held)
                runs.append(_left(session, report.triggered))
                session.rollback()
    finally:
        tracking.configure(set())
    as_a_set, one_by_one, from_memory = runs
    assert as_a_set == one_by_one == from_memory
    leads_left, given, entries, told = as_a_set
    assert len(leads_left) >= 15
    whys = [detail["why"] for _, _, detail in entries]
    assert {detail["team"] for _, _, detail in entries} == {"ny", "emea"}
    assert any("(routing matrix row 1)" in why for why in whys) and any("(routing matrix row 2)" in why for why in whys)
    assert any("(the default team)" in why for why in whys)
    assert any(why.endswith("named account owner") for why in whys)
    assert any("today's cap of 1" in why or "earlier lead" in why for why in whys)  # New York's cap binds
    assert OLA not in {rep for _, rep, _ in given}  # paused, even as a named account's owner
    fast = [why for why in whys if "fast lane (never capped)" in why]
    assert fast and all(("on-call" in why) == (at.hour == 13) for why in fast)
    assert {kind for kind, *_ in told} >= {"dm", "hubspot"}
    assert {channel for kind, _, _, channel, *_ in told if kind == "alert"} == {"#pql-alerts", "#pql-emea"}
