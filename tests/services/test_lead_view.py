"""What a lead's card says about its account's past, read from the store."""

from datetime import timedelta

from sqlmodel import select

from bot.services import lead_view, leads
from bot.services.pipeline import Pipeline
from bot.store.models import Pql, Touch
from scoring import parse_event
from tests.scoring.builders import NY, Trial
from tests.services.test_qualify import START, qualifying

AT = START + timedelta(days=3)


def lead_of(p: Pipeline, user_id: str) -> Pql:
    with p.session() as session:
        return session.exec(select(Pql).where(Pql.user_id == user_id).order_by(Pql.id.desc())).first()


def history(p: Pipeline, pql: Pql) -> list[str]:
    with p.session() as session:
        return lead_view.build(session, pql.id, tz=NY, product_name="Acme", at=AT, kit=False).history


def test_a_leads_history_names_the_accounts_earlier_leads_newest_first_and_counts_their_touches(engine):
    p = Pipeline(engine, tz=NY)
    for name, domain in (("bo", "acme.com"), ("cy", "other.com"), ("ana", "acme.com")):
        p.ingest(qualifying(name).events if domain == "acme.com" else
                 [e._replace(props=e.props | {"email": f"{name}@other.com"}) if e.name == "signup_complete" else e
                  for e in qualifying(name).events], at=AT)
    bo, cy, ana = lead_of(p, "bo"), lead_of(p, "cy"), lead_of(p, "ana")
    with p.session() as session, session.begin():
        leads.sync_roster(session, [("U1", "Ana Ruiz", None)], now=AT)
        # ana's lead from an earlier trial, closed as no response; two touches on bo's, one on cy's.
        session.add(Pql(user_id="ana", trial_started_at=START - timedelta(days=60), state="dispositioned",
                        disposition="no_response", tier="medium", score=4, qualified_at=START - timedelta(days=58),
                        created_at=START - timedelta(days=58), updated_at=START - timedelta(days=50)))
        for pql_id, number in ((bo.id, 1), (bo.id, 2), (cy.id, 1)):
            session.add(Touch(pql_id=pql_id, rep_id="U1", number=number, channel="email", at=AT))
    with p.session() as session:
        earlier = session.exec(select(Pql).where(Pql.state == "dispositioned")).one()

    assert history(p, ana) == [
        f"PQL-{earlier.id}, {earlier.qualified_at:%d %b}: No Response",
        f"PQL-{bo.id} (bo), {bo.qualified_at:%d %b}: qualified",
        "2 earlier touches at this account",  # cy is at another account: neither their lead nor their touch
    ]
    assert history(p, cy) == []  # alone at other.com
    assert history(p, bo) == [f"PQL-{earlier.id} (ana), {earlier.qualified_at:%d %b}: No Response",
                              f"PQL-{ana.id} (ana), {ana.qualified_at:%d %b}: qualified"]


def test_the_handoff_package_gives_the_band_the_acv_potential_and_the_industry_it_was_estimated_from(engine):
    p = Pipeline(engine, tz=NY)
    trial = qualifying("dee")
    trial.events.append(parse_event({"type": "identify", "userId": "dee", "messageId": "dee-id",
                                     "timestamp": trial.on(1, 9).isoformat(), "traits": {"industry": "Fintech"}}))
    p.ingest(trial.events, at=AT)
    with p.session() as session:
        view = lead_view.build(session, lead_of(p, "dee").id, tz=NY, product_name="Acme", at=AT)
    assert (view.band, view.acv_potential) == ("mid_market", 25000)  # 800 people, fintech: $20,000 x 1.25
    assert view.handoff.company_profile[:3] == ["Acme Corp, 800 people", "Mid-market · ACV potential ≈ $25,000",
                                                "Industry: Fintech"]


def test_two_strangers_asking_from_gmail_are_not_shown_as_each_others_history_or_contacts(engine):
    p = Pipeline(engine, tz=NY)
    amy = Trial("amy", email="amy.w@gmail.com", company=None, size=None, first_name="Amy")
    bob = Trial("bob", email="bob.q@gmail.com", company=None, size=None, first_name="Bob")
    amy.add("demo_requested", amy.on(2))
    bob.add("contact_sales_requested", bob.on(2, 16))
    p.ingest(amy.events + bob.events, at=amy.on(2, 17))  # both fast lane now, unknown size or not
    for user in ("amy", "bob"):
        with p.session() as session:
            view = lead_view.build(session, lead_of(p, user).id, tz=NY, product_name="Acme", at=amy.on(2, 17))
        assert (view.tier, view.domain, view.history, view.handoff.contact_map) == ("fast_lane", None, [], [])
        assert view.handoff.company_profile == ["Size unknown · No ACV estimate without a company size"]
