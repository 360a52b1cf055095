"""A nurture lead with new signals is re-raised to its owner with what changed (issue 19)."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlmodel import select

from bot.services import leads
from bot.store.models import Notice, Pql
from tests.scoring.builders import Trial
from tests.services.test_routing import ANA, BEN, BOSS, CAP, NY, Team, ny, trial


def test_a_nurtured_lead_lifted_a_tier_is_re_raised_to_its_rep_with_the_new_signals(engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)])
    at = ny(2026, 11, 4, 10)
    t = trial("nina", at, "medium", None)
    with freeze_time(at):
        [pql_id] = team.pipeline.ingest(t.events, at=at).rescored.triggered
    rep = team.rep_of(pql_id)
    with team.pipeline.session() as session, session.begin():
        pql = session.get(Pql, pql_id)
        who = leads.actor(session, rep, manager=BOSS)
        leads.claim(session, pql, who, now=at, tz=NY, cap=CAP)
        leads.set_disposition(session, pql, who, disposition="nurture", reason=None, now=at)
    later = Trial("nina", email="nina@nina.example.com", signup=t.signup)
    later.events = []
    later.add("page_view", at + timedelta(days=1), page_path="/pricing")
    later.add("page_view", at + timedelta(days=2), page_path="/billing")
    with freeze_time(at + timedelta(days=2, minutes=1)):
        done = team.pipeline.ingest(later.events, at=at + timedelta(days=2, minutes=1))
    assert done.rescored.upgraded == [pql_id]
    assert team.pql(pql_id).tier == "high"
    with team.pipeline.session() as session:
        [dm] = [n for n in session.exec(select(Notice)) if n.key.startswith("nurture-reraise:")]
    assert dm.target == rep
    assert f"PQL-{pql_id}, which you put in Nurture, is back: up from medium to high." in dm.text
    assert "pricing" in dm.text.lower()
    assert [d["rep"] for d in team.audit(pql_id, "pql_reraised")] == [rep]


def test_an_upgrade_of_an_open_lead_is_not_a_re_raise(engine):
    team = Team(engine, [(ANA, "Ana Ruiz", None)])
    at = ny(2026, 11, 4, 10)
    t = trial("olga", at, "medium", None)
    with freeze_time(at):
        [pql_id] = team.pipeline.ingest(t.events, at=at).rescored.triggered
    more = Trial("olga", email="olga@olga.example.com", signup=t.signup)
    more.events = []
    more.add("page_view", at + timedelta(days=1), page_path="/pricing")
    more.add("page_view", at + timedelta(days=2), page_path="/billing")
    with freeze_time(at + timedelta(days=2)):
        assert team.pipeline.ingest(more.events, at=at + timedelta(days=2)).rescored.upgraded == [pql_id]
    assert team.audit(pql_id, "pql_reraised") == []
