"""Sweeps with teams: each lead's clock runs on its team's hours, holidays and timezone, its team's manager hears of
it (one digest per manager), a hand-off starts the ladder again for the receiving team, stale claims are judged by
the team's days, and each team gets its own Friday review. Both stores."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.domain.periods import parse_period
from bot.review import for_settings
from bot.services import handoffs, leads
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.slack.delivery import deliver_due
from bot.slack.gateway import Gateway
from bot.store.models import Notice, Pql
from bot.sweeps.escalate import escalate
from bot.sweeps.runner import Sweeps
from bot.sweeps.stale_claims import stale_claims
from bot.sweeps.weekly_review import weekly_review
from tests.scoring.builders import NY, Trial
from tests.standin import SlackStandIn

BERLIN = ZoneInfo("Europe/Berlin")
ANA, BEN, NOOR, FAY = "U0ANA", "U0BEN", "U0NOOR", "U0FAY"
BOSS, EMEA_BOSS, CS_BOSS = "U0BOSS", "U0EMEABOSS", "U0CSBOSS"
TEAMS = f"""
default = "ny"

[teams.ny]
label = "New York SDRs"
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor" }}]

[teams.emea]
label = "EMEA desk"
timezone = "Europe/Berlin"
escalate_to = "{EMEA_BOSS}"
members = [{{ id = "{NOOR}", name = "Noor Haddad", timezone = "Europe/Berlin" }}]

[teams.cs]
label = "Customer success"
escalate_to = "{CS_BOSS}"
members = [{{ id = "{FAY}", name = "Fay Quinn" }}]
[teams.cs.handoff]
when = "routed_to_cs"

[[routes]]
acv_min = 25000
team = "emea"
"""
MONDAY = datetime(2026, 11, 9, 10, 0, tzinfo=NY)  # 16:00 in Berlin


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


class Floor:
    def __init__(self, engine, tmp_path, teams: str = TEAMS) -> None:
        path = tmp_path / "teams.toml"
        path.write_text(teams, encoding="utf-8")
        self.settings = Settings(_env_file=None, pql_manager=BOSS, pql_timezone="America/New_York",
                                 pql_teams_file=path)
        self.router = Router(self.settings.calendar, cap=5, manager=BOSS, teams=self.settings.teams)
        self.pipeline = Pipeline(engine, tz=NY, router=self.router)
        self.sweeps = Sweeps(self.pipeline, self.router, self.settings, steps=[])
        with self.pipeline.session() as session, session.begin():
            leads.sync_roster(session, self.settings.roster, now=ny(2026, 10, 1, 9))

    def lead(self, user: str, at: datetime, *, emea: bool = False) -> int:
        signup = datetime.combine((at - timedelta(days=4)).astimezone(NY).date(), time(8, 0), NY)
        trial = Trial(user, email=f"{user}@{user}.example", first_name=user.capitalize(), signup=signup,
                      industry="fintech" if emea else None)
        self.pipeline.ingest(trial.activate(1).invite(2).integrate(2).events, at=at)
        with self.pipeline.session() as session:
            pql = session.exec(select(Pql).where(Pql.user_id == user)).one()
            assert pql.team == ("emea" if emea else "ny")
            return pql.id

    def pql(self, pql_id: int) -> Pql:
        with self.pipeline.session() as session:
            return session.get(Pql, pql_id)

    def escalate(self, at: datetime) -> int:
        return escalate(self.sweeps, at)

    def dms(self, to: str) -> list[Notice]:
        with self.pipeline.session() as session:
            return list(session.exec(select(Notice).where(Notice.kind == "dm", Notice.target == to,
                                                          ~Notice.key.startswith("assigned:"),
                                                          ~Notice.key.startswith("handoff-dm:"))
                                     .order_by(Notice.id)))

    def keys(self, prefix: str) -> list[str]:
        with self.pipeline.session() as session:
            return [n.key for n in session.exec(select(Notice).order_by(Notice.id)) if n.key.startswith(prefix)]


@pytest.fixture
def floor(engine, tmp_path) -> Floor:
    return Floor(engine, tmp_path)


def test_each_lead_escalates_on_its_own_team_s_clock_to_its_own_team_s_manager(floor):
    evening = ny(2026, 11, 9, 15)  # 21:00 in Berlin: the EMEA desk is closed
    home = floor.lead("ana", evening)
    away = floor.lead("eva", evening, emea=True)
    floor.escalate(ny(2026, 11, 9, 16, 5))
    assert floor.keys("esc-here:") == [f"esc-here:{home}"]  # New York's hour is up; Berlin's clock has not started
    floor.escalate(ny(2026, 11, 9, 17, 5))
    assert [n.key for n in floor.dms(BOSS)] == [f"esc-2h:{home}"] and floor.dms(EMEA_BOSS) == []
    floor.escalate(datetime(2026, 11, 10, 9, 55, tzinfo=BERLIN))  # 03:55 in New York: 55 min of Berlin's day
    assert floor.keys("esc-here:") == [f"esc-here:{home}"]
    floor.escalate(datetime(2026, 11, 10, 10, 5, tzinfo=BERLIN))
    assert floor.keys("esc-here:") == [f"esc-here:{home}", f"esc-here:{away}"]
    floor.escalate(datetime(2026, 11, 10, 11, 5, tzinfo=BERLIN))
    assert [n.key for n in floor.dms(EMEA_BOSS)] == [f"esc-2h:{away}"]  # the EMEA desk's manager, not New York's
    assert [n.key for n in floor.dms(BOSS)] == [f"esc-2h:{home}"]


def test_leads_due_together_make_one_digest_per_manager(floor):
    home = [floor.lead(f"ny{n}", MONDAY + timedelta(minutes=n)) for n in range(2)]
    away = [floor.lead(f"eu{n}", MONDAY - timedelta(minutes=30 - n), emea=True) for n in range(2)]  # 15:30 there
    floor.escalate(ny(2026, 11, 9, 12, 30))  # 2 h 30 of New York's day; 2 h 30 of Berlin's, which closed at 18:00
    for manager, mine in ((BOSS, home), (EMEA_BOSS, away)):
        sent = [n for n in floor.dms(manager) if n.state == "pending"]
        [digest] = [n for n in sent if n.key.startswith("digest-manager:")]
        assert all(f"PQL-{pql_id} ·" in digest.text for pql_id in mine)
        assert not any(f"PQL-{pql_id} ·" in digest.text for pql_id in (away if manager == BOSS else home))


def test_a_hand_off_starts_the_ladder_again_for_the_receiving_team(floor):
    pql_id = floor.lead("ana", MONDAY)
    owner = floor.pql(pql_id).rep_id
    floor.escalate(ny(2026, 11, 9, 12, 5))
    assert [n.key for n in floor.dms(BOSS)] == [f"esc-2h:{pql_id}"]  # the SDRs let it wait
    handed = ny(2026, 11, 9, 12, 30)
    with floor.pipeline.session() as session, session.begin():
        lead = session.get(Pql, pql_id)
        who = leads.actor(session, owner, manager=BOSS)
        assert handoffs.hand_off(session, lead, who, "cs", router=floor.router, now=handed, tz=NY,
                                 product_name="Quarry") == FAY
    floor.escalate(handed + timedelta(minutes=55))
    assert floor.keys("esc-here:") == [f"esc-here:{pql_id}"]  # the receiving team's hour is not up yet
    floor.escalate(handed + timedelta(hours=1, minutes=5))
    tail = f"{pql_id}:20261109T173000"  # the hand-off, in UTC
    assert floor.keys("esc-here:") == [f"esc-here:{pql_id}", f"esc-here:{tail}"]
    floor.escalate(handed + timedelta(hours=2, minutes=5))
    assert [n.key for n in floor.dms(CS_BOSS)] == [f"esc-2h:{tail}"]  # customer success's manager hears of it
    assert [n.key for n in floor.dms(BOSS)] == [f"esc-2h:{pql_id}"]  # and the SDRs' manager no more



def test_a_team_that_escalates_to_a_channel_has_its_manager_cards_posted_there(engine, tmp_path):
    floor = Floor(engine, tmp_path, TEAMS.replace(f'escalate_to = "{EMEA_BOSS}"', 'escalate_to = "#emea-desk"'))
    pql_id = floor.lead("eva", MONDAY - timedelta(minutes=30), emea=True)
    floor.escalate(ny(2026, 11, 9, 12, 30))
    [card] = floor.dms("#emea-desk")
    assert card.key == f"esc-2h:{pql_id}"
    with SlackStandIn(channels={"#emea-desk": "C0EMEADESK"}) as slack:
        gateway = Gateway.connect("xoxb-test", slack.url, backoff=0.01)
        deliver_due(engine, gateway, render_alert=lambda s, pql_id: (f"PQL-{pql_id}", None),
                    alerts_channel="#pql-alerts", now=ny(2026, 11, 9, 12, 31))
        [posted] = slack.posted("C0EMEADESK")
        assert f"PQL-{pql_id}" in posted.params["text"]
        assert all(c.params.get("users") != "#emea-desk" for c in slack.calls_to("conversations.open"))


def test_a_stale_claim_is_judged_by_its_team_s_business_day_and_flagged_to_its_manager(floor):
    pql_id = floor.lead("eva", datetime(2026, 11, 9, 9, 15, tzinfo=BERLIN), emea=True)  # 03:15 in New York
    claimed = datetime(2026, 11, 9, 9, 30, tzinfo=BERLIN)
    with floor.pipeline.session() as session, session.begin():
        lead = session.get(Pql, pql_id)
        leads.claim(session, lead, leads.actor(session, NOOR, manager=BOSS), now=claimed, tz=BERLIN, cap=5)
    assert stale_claims(floor.sweeps, datetime(2026, 11, 10, 9, 25, tzinfo=BERLIN)) == 0
    assert stale_claims(floor.sweeps, datetime(2026, 11, 10, 9, 35, tzinfo=BERLIN)) == 1  # a Berlin day later
    assert [n.key for n in floor.dms(EMEA_BOSS)] == [f"stale:{pql_id}:{claimed.astimezone(UTC).isoformat()}"]
    assert floor.dms(BOSS) == []


def test_each_team_gets_its_own_friday_review_of_its_own_leads_in_its_channel(floor):
    for n in range(2):
        floor.lead(f"ny{n}", MONDAY + timedelta(minutes=n))
    floor.lead("eva", MONDAY, emea=True)
    assert weekly_review(floor.sweeps, ny(2026, 11, 13, 9, 30)) == 1  # 15:30 in Berlin: the EMEA desk's is due
    assert floor.keys("weekly-review:") == ["weekly-review:2026-W46:emea"]
    assert weekly_review(floor.sweeps, ny(2026, 11, 13, 10, 5)) == 2  # New York's teams' Friday 10:00
    assert weekly_review(floor.sweeps, ny(2026, 11, 13, 10, 6)) == 0  # once per team
    with floor.pipeline.session() as session:
        reviews = {n.key: (n.target, n.text) for n in session.exec(select(Notice).where(Notice.kind == "review"))}
        assert reviews["weekly-review:2026-W46:emea"] == ("#pql-alerts", "2026-W46|emea")
        week = parse_period("2026-W46", today=MONDAY.date())
        counted = {team: for_settings(session, week, settings=floor.settings, now=ny(2026, 11, 13, 10, 5),
                                      team=team).metrics.pqls for team in ("ny", "emea", "cs", None)}
    assert counted == {"ny": 2, "emea": 1, "cs": 0, None: 3}
