"""What a lead's card says about its account's past, read from the store."""

import dataclasses
from datetime import timedelta
from types import SimpleNamespace

from sqlmodel import select

from bot.services import lead_view, leads
from bot.services.pipeline import Pipeline
from bot.store.models import AccountScore, Pql, Touch, TrialUser
from scoring import ScoreResult, Status, Tier, parse_event
from scoring.result import Account, Band, Contact, TriggerMet
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


# What fired: the lead's family, its triggers with their tiers of response, an account lead's contact map ---------

SSO_STALLED = TriggerMet("sso_stalled", "SSO setup stalled", "blocker", "high", 1, "user", AT,
                         "started single sign-on setup, not finished within 7 days", 3.0, "unblock")
NURTURE = TriggerMet("pricing_no_upgrade", "Pricing without an upgrade", "buying", "low", 3, "user", AT,
                     "looked at plans", 1.0, "billing")


def blocked_by_sso(p: Pipeline, user_id: str) -> Pql:
    """A qualified lead whose verdict says a blocker qualified it: the verdict and lead as the engine and the rescore
    store them (the trigger on `triggers`, and a signal for it on the lead, with the trigger's talk track)."""
    p.ingest(qualifying(user_id).events, at=AT)
    pql = lead_of(p, user_id)
    with p.session() as session, session.begin():
        user = session.get(TrialUser, user_id)
        user.verdict = user.verdict | {"family": "blocker", "triggers": [NURTURE.to_json(), SSO_STALLED.to_json()]}
        lead = session.get(Pql, pql.id)
        lead.signals = [*lead.signals, {"name": "sso_stalled", "label": "SSO setup stalled", "points": 0, "day": 3,
                                        "evidence": SSO_STALLED.evidence, "values": [], "talk_track": "unblock"}]
        lead.strongest_signal = "sso_stalled"
    return pql


def test_a_blocker_leads_view_says_help_not_pitch_lists_its_triggers_by_tier_and_offers_help_not_plans(engine):
    p = Pipeline(engine, tz=NY)
    pql = blocked_by_sso(p, "eve")
    with p.session() as session:
        view = lead_view.build(session, pql.id, tz=NY, product_name="Acme", at=AT)
    assert view.family == "blocker"
    assert [f.line for f in view.fired] == [
        "SSO setup stalled (tier 1, same day): started single sign-on setup, not finished within 7 days",
        "Pricing without an upgrade (tier 3, automated nurture only): looked at plans",
    ]
    assert "single sign-on" not in view.signal_summary  # listed once, with its tier, not again as a signal
    assert view.talk_track.startswith("Help, don't pitch: this team at Acme Corp (800 people) looks stuck")
    assert view.handoff.family == "Adoption blocker: help them unblock, not a pitch."
    assert view.handoff.triggers == [f.line for f in view.fired]
    assert view.emails["email1"].subject == "A hand with your Acme setup"
    assert "plan" not in (view.emails["email1"].body + view.emails["email3"].body).lower()


def test_a_points_lead_is_a_buying_lead_with_nothing_fired(engine):
    p = Pipeline(engine, tz=NY)
    p.ingest(qualifying("flo").events, at=AT)
    with p.session() as session:
        view = lead_view.build(session, lead_of(p, "flo").id, tz=NY, product_name="Acme", at=AT)
    assert (view.fired, view.contacts, view.level, view.handoff.triggers) == ([], [], "user", [])
    assert view.handoff.family == "Buying signal: they are evaluating, help them buy."


def account_verdict(*contacts: Contact) -> dict:
    """What the account roll-up stores for an account lead: the account's verdict, built by hand here."""
    expansion = dataclasses.replace(SSO_STALLED, name="seat_surge", label="Seat provisioning surge", family="buying",
                                    level="account", evidence="provisioned 14 seats within 3 days",
                                    talk_track="expansion", users=("ana", "bo"))
    result = ScoreResult(
        user_id="ana", email="ana@acme.com", account=Account("Acme Corp", "acme.com", "domain:acme.com"),
        company_size=2500, score=0, max_score=10, tier=Tier.HIGH, status=Status.QUALIFIED, signals=(), reasons=(),
        strongest_signal="seat_surge", trial_day=None, days_left=None, band=Band.ENTERPRISE, acv_potential=50000,
        level="account", family="buying", triggers=(expansion,), users=contacts)
    return result.to_json()


ANA = Contact("ana", "Ana Ruiz", "ana@acme.com", "Head of Data", START + timedelta(days=2, hours=9),
              ("provisioned 14 seats",), "qualified")
BO = Contact("bo", "Bo Li", "bo@acme.com", None, START + timedelta(days=2, hours=13), ("activated",), "below_threshold")
CY = Contact("cy", None, "cy@acme.com", None, None, (), "excluded")


def test_an_account_leads_view_is_the_account_its_triggers_and_its_contact_map_in_the_handoff(engine, monkeypatch):
    p = Pipeline(engine, tz=NY)
    p.ingest(qualifying("ana").events, at=AT)
    # The account roll-up's stored verdict, as `account_of` reads it for an account lead.
    monkeypatch.setattr(lead_view, "account_of", lambda session, pql: account_verdict(ANA, BO, CY))
    with p.session() as session:
        view = lead_view.build(session, lead_of(p, "ana").id, tz=NY, product_name="Acme", at=AT)
    assert (view.level, view.account_name, view.family) == ("account", "Acme Corp", "buying")
    assert [f.line for f in view.fired] == ["Seat provisioning surge (tier 1, same day): provisioned 14 seats "
                                            "within 3 days"]
    # Most recently active first; last active in the team's timezone (Bo: 23:00 Wed 4 Nov in New York, Thu in UTC).
    assert [c.user_id for c in view.contacts] == ["bo", "ana", "cy"]
    assert view.handoff.contact_map == [
        "Bo Li · bo@acme.com · last active Wed 4 Nov · activated",
        "Ana Ruiz, Head of Data · ana@acme.com · last active Wed 4 Nov · provisioned 14 seats",
        "cy@acme.com",
    ]
    assert view.handoff.company_profile[:2] == ["Acme Corp, 2,500 people", "Enterprise · ACV potential ≈ $50,000"]
    assert view.handoff.family == "Buying signal: they are evaluating, help them buy."
    assert (view.band, view.acv_potential) == ("enterprise", 50000)


def test_an_account_leads_verdict_is_read_from_the_account_scores_by_its_key(engine):
    """The seam the account roll-up fills: a lead with an `account_key` is shown from the verdict stored under it."""
    p = Pipeline(engine, tz=NY)
    with p.session() as session:
        session.add(AccountScore(account_key="domain:acme.com", verdict=account_verdict(ANA), scored_at=AT))
        session.commit()
        lead = SimpleNamespace(level="account", account_key="domain:acme.com")
        assert lead_view.account_of(session, lead)["users"][0]["name"] == "Ana Ruiz"
        assert lead_view.account_of(session, SimpleNamespace(level="account", account_key="domain:other.com")) is None
        assert lead_view.account_of(session, Pql(user_id="ana", state="qualified", tier="high", score=0)) is None
