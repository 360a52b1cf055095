"""Account leads (seed 003's PQA) in the store: an account whose trigger fires becomes one lead, absorbing its users'
open leads (one conversation, one alert, one owner), taking in users who qualify later, and raised again only by
what happens after it closed; the same whichever way the events arrive, on both stores."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.domain.business_time import BusinessCalendar
from bot.services import account_leads, audit, lead_view, leads
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.store.models import AccountScore, Notice, Pql, TrialUser
from scoring import parse_event
from tests.scoring.accounts_rules import account_rules
from tests.scoring.builders import NY, Trial

RULES = account_rules()
START = datetime(2026, 11, 2, 10, 0, tzinfo=NY)  # a Monday
ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
_n = iter(range(10**6))


def pipeline(engine, *, router: Router | None = None) -> Pipeline:
    p = Pipeline(engine, tz=NY, router=router)
    p.rules, p.basis = RULES, None
    p.basis = p._basis()
    with p.session() as session, session.begin():
        leads.sync_roster(session, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], now=START)
    return p


def member(user: str, *, domain: str = "acme.com", signup: datetime = START, qualify: bool = False,
           activate_at: datetime | None = None) -> Trial:
    """A user of `domain`: activates at `activate_at` (an hour after signing up unless told); with `qualify`, also
    invites and connects an integration the next day (6 points: a medium lead of their own)."""
    trial = Trial(user, email=f"{user}@{domain}", company="Acme Corp", size=800, signup=signup,
                  first_name=user.title(), title="Engineer")
    trial.add("activation_complete", activate_at or signup + timedelta(hours=1))
    if qualify:
        trial.invite(2).integrate(2)
    return trial


def pqls(p: Pipeline) -> list[Pql]:
    with p.session() as session:
        return list(session.exec(select(Pql).order_by(Pql.id)))


def notices(p: Pipeline, kind: str | None = None) -> list[Notice]:
    with p.session() as session:
        return [n for n in session.exec(select(Notice).order_by(Notice.id)) if kind in (None, n.kind)]


def trail(p: Pipeline, action: str) -> list:
    with p.session() as session:
        return [e for e in audit.trail(session) if e.action == action]


def account_lead(p: Pipeline) -> Pql:
    [found] = [lead for lead in pqls(p) if lead.level == "account"]
    return found


def five(start: datetime = START, spacing: timedelta = timedelta(days=1), prefix: str = "u") -> list[Trial]:
    return [member(f"{prefix}{i}", activate_at=start + timedelta(hours=1) + spacing * i) for i in range(5)]


# -- raising one ----------------------------------------------------------------------------------------------

def test_five_users_activating_within_14_days_raise_one_routed_account_lead(engine):
    router = Router(BusinessCalendar(NY), cap=5, manager=BOSS)
    p = pipeline(engine, router=router)
    trials = five()
    for trial in reversed(trials):  # out of order, one user at a time
        p.ingest(trial.events, at=START + timedelta(days=4, hours=5))  # Friday afternoon: business is open
    lead = account_lead(p)
    assert len(pqls(p)) == 1 and lead.account_key == "domain:acme.com" and lead.tier == "high"
    assert lead.rep_id in (ANA, BEN) and lead.sla_due_at is not None  # routed like any new lead
    assert [n.key for n in notices(p, "alert")] == [f"alert:{lead.id}"]
    [triggered] = trail(p, "pql_triggered")
    assert triggered.detail["level"] == "account" and len(triggered.detail["users"]) == 5
    with p.session() as session:
        stored = session.get(AccountScore, "domain:acme.com").verdict
    assert stored["level"] == "account" and {u["user_id"] for u in stored["users"]} == {f"u{i}" for i in range(5)}
    p.ingest([], at=START + timedelta(days=6))
    p.rescore_all(at=START + timedelta(days=6))
    assert len(pqls(p)) == 1  # exactly once per account while it is open


@pytest.mark.parametrize(("gap", "raised"), [(timedelta(days=14), True),
                                             (timedelta(days=14, microseconds=1), False)])
def test_the_fifth_activation_counts_exactly_14_days_after_the_first_and_not_a_microsecond_later(engine, gap, raised):
    p = pipeline(engine)
    trials = [member(f"u{i}", activate_at=START + timedelta(hours=1, days=i)) for i in range(4)]
    trials.append(member("u4", activate_at=START + timedelta(hours=1) + gap))
    # The last activation arrives first, the others after it.
    p.ingest(trials[-1].events, at=START + timedelta(days=20))
    p.ingest([e for t in trials[:-1] for e in t.events], at=START + timedelta(days=20))
    assert [lead.level for lead in pqls(p)] == (["account"] if raised else [])


def test_users_with_personal_emails_are_never_pooled(engine):
    p = pipeline(engine)
    for i in range(6):
        p.ingest(member(f"g{i}", domain="gmail.com").events, at=START + timedelta(days=1))
    assert pqls(p) == []
    with p.session() as session:
        assert session.exec(select(AccountScore)).all() == []


def test_a_group_id_beats_the_email_domain(engine):
    p = pipeline(engine)
    trials = [member("u0"), member("u1"), member("u2", domain="acme-labs.io"), member("u3", domain="acme-labs.io"),
              member("u4", domain="other.org")]
    groups = [parse_event({"type": "group", "userId": t.user, "groupId": "g-acme", "messageId": f"g{next(_n)}",
                           "timestamp": (START + timedelta(minutes=5)).isoformat(), "traits": {"name": "Acme"}})
              for t in trials]
    p.ingest([e for t in trials for e in t.events] + groups, at=START + timedelta(days=1))
    lead = account_lead(p)
    assert lead.account_key == "group:g-acme"


# -- absorbing ------------------------------------------------------------------------------------------------

def absorbed_story(p: Pipeline) -> tuple[int, int]:
    """Two members qualify on their own (two user leads, two alerts); rep Ana claims the second; then three more
    members activate and the account's trigger fires."""
    first, second = member("u0", qualify=True), member("u1", qualify=True)
    p.ingest(first.events + second.events, at=START + timedelta(days=1, hours=8))
    a, b = [lead.id for lead in pqls(p)]
    with p.session() as session, session.begin():
        leads.claim(session, session.get(Pql, b), leads.actor(session, ANA, manager=BOSS), now=START, tz=NY, cap=5)
    rest = [member(f"u{i}", activate_at=START + timedelta(days=2, hours=i)) for i in range(2, 5)]
    p.ingest([e for t in rest for e in t.events], at=START + timedelta(days=3))
    return a, b


def test_an_account_lead_absorbs_its_users_open_leads_one_conversation_one_owner(engine):
    p = pipeline(engine)
    a, b = absorbed_story(p)
    by_id = {lead.id: lead for lead in pqls(p)}
    assert len(by_id) == 2  # no third lead
    kept, gone = by_id[b], by_id[a]
    assert kept.level == "account" and kept.account_key == "domain:acme.com" and kept.claimed_by == ANA
    assert kept.tier == "high"  # the account's tier 1 raised it from medium
    assert kept.version > kept.posted_version  # its alert is edited to the account lead
    assert gone.state == "absorbed" and gone.absorbed_into == b and gone.version > gone.posted_version
    assert [n.key for n in notices(p, "alert")] == [f"alert:{a}", f"alert:{b}"]  # no new alert
    [reply] = [n for n in notices(p, "reply") if n.key == f"absorbed:{a}"]
    assert f"PQL-{b}" in reply.text and "part of the account lead" in reply.text
    assert [e.pql_id for e in trail(p, "pql_absorbed")] == [a]
    assert [e.pql_id for e in trail(p, "pql_became_account_lead")] == [b]
    assert kept.signals[0]["name"] == "team_activation"


def test_an_absorbed_lead_takes_no_more_work(engine):
    p = pipeline(engine)
    a, _ = absorbed_story(p)
    with p.session() as session, session.begin(), pytest.raises(leads.Refused, match="absorbed"):
        leads.claim(session, session.get(Pql, a), leads.actor(session, BEN, manager=BOSS), now=START, tz=NY, cap=5)


def test_a_user_lead_recorded_in_the_same_ingest_as_its_account_lead_is_never_alerted(engine):
    p = pipeline(engine)
    trials = [member("u0", qualify=True), member("u1", qualify=True)] + [member(f"u{i}") for i in range(2, 5)]
    p.ingest([e for t in trials for e in t.events], at=START + timedelta(days=1, hours=8))
    assert [(lead.level, lead.state) for lead in pqls(p)] == [("account", "qualified"), ("user", "absorbed")]
    assert len(notices(p, "alert")) == 1 and notices(p, "reply") == []  # one alert, nobody told of the other


def test_a_member_who_qualifies_later_joins_the_contact_map_with_no_alert_of_their_own(engine):
    p = pipeline(engine)
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=5, hours=5))
    lead = account_lead(p)
    late = member("late", signup=START + timedelta(days=6), qualify=True)
    p.ingest(late.events, at=START + timedelta(days=8))
    assert [x.id for x in pqls(p)] == [lead.id]  # no lead of their own
    assert len(notices(p, "alert")) == 1
    [added] = trail(p, "pql_account_member_added")
    assert added.user_id == "late" and added.pql_id == lead.id
    assert account_lead(p).version > lead.version  # the alert is edited to show them
    with p.session() as session:
        users = session.get(AccountScore, "domain:acme.com").verdict["users"]
    assert "late" in {u["user_id"] for u in users}


def nurtured_account_lead(p: Pipeline) -> Pql:
    """Acme's five activate; their account lead is raised, then dispositioned Nurture on day 6 (closed)."""
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=5, hours=5))
    lead = account_lead(p)
    with p.session() as session, session.begin():
        leads.set_disposition(session, session.get(Pql, lead.id), leads.actor(session, BOSS, manager=BOSS),
                              disposition="nurture", reason=None, now=START + timedelta(days=6))
    return lead


def test_a_closed_account_lead_is_raised_again_only_by_a_trigger_firing_after_it_closed(engine):
    p = pipeline(engine)
    nurtured_account_lead(p)
    p.rescore_all(at=START + timedelta(days=7))
    assert len(pqls(p)) == 1  # the same activations do not raise it again
    again = five(start=START + timedelta(days=8), prefix="v")
    p.ingest([e for t in again for e in t.events], at=START + timedelta(days=13, hours=5))
    assert [x.level for x in pqls(p)] == ["account", "account"] and pqls(p)[1].state == "qualified"


# -- the same whichever way it comes ---------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["in time order", "shuffled"])
def test_ingesting_in_pieces_gives_the_account_lead_a_full_rescore_gives(engine, order):
    p = pipeline(engine)
    trials = [member("u0", qualify=True), *five()[1:], member("late", signup=START + timedelta(days=6))]
    events = sorted((e for t in trials for e in t.events), key=lambda e: e.at)
    if order == "shuffled":
        events.sort(key=lambda e: e.message_id, reverse=True)
    at = START + timedelta(days=9)
    for start in range(0, len(events), 3):
        p.ingest(events[start:start + 3], at=at)

    def snapshot():
        lead = account_lead(p)
        with p.session() as session:
            verdict = session.get(AccountScore, lead.account_key).verdict
        return (lead.account_key, lead.tier, lead.state, [s["name"] for s in lead.signals],
                {u["user_id"] for u in verdict["users"]}, [t["name"] for t in verdict["triggers"]],
                len(notices(p, "alert"))), lead.user_id

    pieces, anchor = snapshot()
    with engine.begin() as connection:
        for table in ("audit", "notices", "assignments", "pqls", "account_scores", "tallies", "trial_users"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    p.rescore_all(at=at)
    assert snapshot()[0] == pieces
    # The lead's user is whoever first made the account fire as the events arrived: in time order, the same one.
    if order == "in time order":
        assert snapshot()[1] == anchor == "u0"


# -- do-not-touch ------------------------------------------------------------------------------------------------

def test_a_members_support_ticket_holds_the_account_lead_and_its_closing_lets_it_go(engine):
    p = pipeline(engine)
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=5, hours=5))
    lead = account_lead(p)
    member_ = next(f"u{i}" for i in range(5) if f"u{i}" != lead.user_id)  # not the lead's own user

    def ticket(user: str, name: str, at: datetime) -> None:
        p.ingest([parse_event({"type": "track", "event": name, "userId": user, "messageId": f"t{next(_n)}",
                               "timestamp": at.isoformat(), "properties": {"ticket_id": f"T-{user}"}})], at=at)

    ticket("x", "support_ticket_opened", START + timedelta(days=5, hours=6))  # no member of it: no hold
    assert account_lead(p).held_since is None
    opened = START + timedelta(days=5, hours=7)
    ticket(member_, "support_ticket_opened", opened)
    held = account_lead(p)
    assert held.id == lead.id and held.held_since == opened and held.state == lead.state
    assert [e.pql_id for e in trail(p, "pql_held")] == [lead.id]
    ticket(member_, "support_ticket_closed", opened + timedelta(hours=2))
    assert account_lead(p).held_since is None
    assert [e.pql_id for e in trail(p, "pql_resumed")] == [lead.id]


# -- a member converts --------------------------------------------------------------------------------------------

def _product_event(p: Pipeline, user: str, name: str, at: datetime, **props) -> None:
    p.ingest([parse_event({"type": "track", "event": name, "userId": user, "messageId": f"c{next(_n)}",
                           "timestamp": at.isoformat(), "properties": props})], at=at)


def test_a_members_conversion_converts_the_account_lead_and_stops_its_outreach(engine):
    """The company paid: the account's one conversation ends, whoever of its people paid, and the rep is told who."""
    p = pipeline(engine, router=Router(BusinessCalendar(NY), cap=5, manager=BOSS))
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=4, hours=5))  # Friday, open
    lead = account_lead(p)
    owner = lead.rep_id
    assert owner in (ANA, BEN)
    with p.session() as session, session.begin():
        who = leads.actor(session, owner, manager=BOSS)
        leads.claim(session, session.get(Pql, lead.id), who, now=START + timedelta(days=4, hours=6), tz=NY, cap=5)
        leads.log_touch(session, session.get(Pql, lead.id), who, channel="email", email_key=None, note=None,
                        now=START + timedelta(days=4, hours=6, minutes=30))
    member_ = next(f"u{i}" for i in range(5) if f"u{i}" != lead.user_id)  # no lead of their own
    _product_event(p, "x", "trial_converted", START + timedelta(days=6), plan="team")  # nobody of the account
    assert account_lead(p).state == "working" and account_lead(p).conversion_source is None
    _product_event(p, member_, "sales_opt_out", START + timedelta(days=6, hours=1))  # theirs alone
    assert account_lead(p).state == "working"
    paid = START + timedelta(days=6, hours=2)
    _product_event(p, member_, "trial_converted", paid, plan="team", mrr=400)
    converted = account_lead(p)
    assert (converted.state, converted.conversion_source, converted.converted_at) == (
        "stopped_converted", "sales_assisted", paid)
    [stopped] = trail(p, "pql_stopped")
    assert (stopped.pql_id, stopped.user_id) == (lead.id, member_)
    told = [n for n in notices(p) if n.key in (f"stopped:{lead.id}", f"stopped-dm:{lead.id}")]
    assert [n.kind for n in told] == ["reply", "dm"] and told[1].target == owner
    assert f"{member_.title()}" in told[0].text and "Acme Corp" in told[0].text and "no more outreach" in told[0].text


def test_one_persons_opt_out_leaves_the_account_lead_open_marks_them_and_tells_the_rep_until_nobody_is_left(engine):
    p = pipeline(engine, router=Router(BusinessCalendar(NY), cap=5, manager=BOSS))
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=4, hours=5))  # Friday, open
    lead = account_lead(p)
    others = [f"u{i}" for i in range(5) if f"u{i}" != lead.user_id]
    day = START + timedelta(days=7)  # Monday
    _product_event(p, others[0], "sales_opt_out", day)
    _product_event(p, others[0], "sales_opt_out", day + timedelta(minutes=5))  # sent again: said once
    after = account_lead(p)
    assert after.state == lead.state and after.version > lead.version  # open, its alert edited
    told = [n for n in notices(p) if n.key.startswith(f"member-opt-out:{lead.id}:") or
            n.key.startswith(f"member-opt-out-dm:{lead.id}:")]
    assert [(n.kind, n.target if n.kind == "dm" else None) for n in told] == [("reply", None), ("dm", lead.rep_id)]
    assert "opted out of sales contact: leave them out" in told[0].text and others[0].title() in told[0].text
    with p.session() as session:
        view = lead_view.build(session, lead.id, tz=NY, product_name="Acme", at=day)
    [marked] = [c for c in view.contacts if c.opted_out]
    assert marked.user_id == others[0]
    assert "opted out of sales contact: do not contact" in lead_view.contact_line(marked, tz=NY)
    _product_event(p, lead.user_id, "sales_opt_out", day + timedelta(hours=1))  # the anchor's own: theirs alone too
    assert account_lead(p).state == lead.state
    with p.session() as session:  # the lead is now addressed to someone who may be contacted, drafts and all
        view = lead_view.build(session, lead.id, tz=NY, product_name="Acme", at=day)
    to = view.email.split("@")[0]
    assert to in others[1:] and view.name == to.title()
    assert view.emails["email1"].body.startswith(f"Hi {to.title()}")
    for n, user in enumerate(others[1:]):  # the last of the five leaves nobody to contact: the lead stops
        _product_event(p, user, "sales_opt_out", day + timedelta(hours=2 + n))
    assert account_lead(p).state == "stopped_opt_out"
    assert len(trail(p, "pql_member_opted_out")) == 4 and len(trail(p, "pql_stopped")) == 1


def test_a_member_whose_own_lead_closed_before_the_account_lead_converts_the_account_lead(engine):
    p = pipeline(engine)
    trials = five()
    asks = trials[4]  # asks for a demo first: a lead of their own, dispositioned before the account fires
    asks.add("demo_requested", START + timedelta(days=1))
    p.ingest(asks.events, at=START + timedelta(days=1, hours=1))
    [own] = pqls(p)
    with p.session() as session, session.begin():
        leads.set_disposition(session, session.get(Pql, own.id), leads.actor(session, BOSS, manager=BOSS),
                              disposition="nurture", reason=None, now=START + timedelta(days=2))
    p.ingest([e for t in trials[:4] for e in t.events], at=START + timedelta(days=4, hours=5))
    lead = account_lead(p)
    assert lead.id != own.id and lead.user_id != "u4"
    _product_event(p, "u4", "trial_converted", START + timedelta(days=8), plan="team")
    by_id = {x.id: x for x in pqls(p)}
    assert (by_id[lead.id].state, by_id[lead.id].conversion_source) == ("stopped_converted", "self_serve")
    assert by_id[own.id].conversion_source is None  # the company's conversation, not their old one, converted


def test_a_member_converting_after_the_account_lead_closed_still_tags_how_it_converted(engine):
    p = pipeline(engine)
    lead = nurtured_account_lead(p)
    member_ = next(f"u{i}" for i in range(5) if f"u{i}" != lead.user_id)
    _product_event(p, member_, "trial_converted", START + timedelta(days=9), plan="team")
    closed = account_lead(p)
    assert (closed.state, closed.disposition, closed.conversion_source) == ("dispositioned", "nurture", "self_serve")
    assert trail(p, "pql_stopped") == []  # closed already: nothing to stop, nobody told


# -- racing writers --------------------------------------------------------------------------------------------

def test_two_writers_rolling_up_one_account_at_once_open_one_lead(engine, monkeypatch):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite store has one writer at a time")
    p = pipeline(engine)
    trials = five()
    p.ingest([e for t in trials[:4] for e in t.events], at=START + timedelta(days=5))
    both_read = threading.Barrier(2, timeout=5)
    read = account_leads._account_leads

    def read_then_wait(connection, keys):
        found = read(connection, keys)
        try:
            both_read.wait()  # both have seen no open lead for the account
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(account_leads, "_account_leads", read_then_wait)
    sixth = member("u5", activate_at=START + timedelta(days=4, hours=3))
    threads = [threading.Thread(target=pipeline(engine).ingest, args=(t.events,),
                                kwargs={"at": START + timedelta(days=5, hours=1)}) for t in (trials[4], sixth)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    monkeypatch.setattr(account_leads, "_account_leads", read)
    assert [lead.level for lead in pqls(p)] == ["account"]
    assert len(notices(p, "alert")) == 1
    with p.session() as session:  # neither writer failed: both users' events are in, and judged
        assert {u.user_id for u in session.exec(select(TrialUser)) if u.scored_at} >= {"u4", "u5"}


def test_a_members_lead_another_writer_beat_to_its_account_stays_a_user_lead_and_the_other_accounts_still_turn(
        engine, monkeypatch):
    """The members' leads that become their accounts' leads are turned in one statement; when the store refuses one
    (another writer opened that account's lead since this roll-up read the account's leads), the rest are turned
    one at a time and only that one is left as it was."""
    p = pipeline(engine)
    firsts = [member("a0", qualify=True), member("b0", domain="beta.io", qualify=True)]
    p.ingest([e for t in firsts for e in t.events], at=START + timedelta(days=1, hours=8))
    mine = {lead.user_id: lead.id for lead in pqls(p)}
    assert set(mine) == {"a0", "b0"}  # each a user lead of their own
    rest = [member(f"{a}{i}", domain=domain, activate_at=START + timedelta(days=2, hours=i))
            for a, domain in (("a", "acme.com"), ("b", "beta.io")) for i in range(1, 5)]
    p.ingest([e for t in rest for e in t.events], score=False)
    with engine.begin() as connection:  # the other writer's account lead for acme.com, made after our read
        connection.execute(sa.insert(Pql.__table__).values(
            user_id="a0", trial_started_at=START - timedelta(days=30), state="qualified", tier="high", score=0,
            signals=[], qualified_at=START, created_at=START, updated_at=START, level="account",
            account_key="domain:acme.com"))
    read = account_leads._account_leads
    monkeypatch.setattr(account_leads, "_account_leads",
                        lambda connection, keys: {k: v for k, v in read(connection, keys).items()
                                                  if k != "domain:acme.com"})
    p.rescore_all(at=START + timedelta(days=3))
    by_id = {lead.id: lead for lead in pqls(p)}
    assert (by_id[mine["b0"]].level, by_id[mine["b0"]].account_key) == ("account", "domain:beta.io")
    assert (by_id[mine["a0"]].level, by_id[mine["a0"]].account_key, by_id[mine["a0"]].state) == \
        ("user", None, "qualified")  # left as it was: acme.com's lead is the other writer's
    assert [e.pql_id for e in trail(p, "pql_became_account_lead")] == [mine["b0"]]
    assert sorted((lead.account_key, lead.state) for lead in by_id.values() if lead.level == "account") == \
        [("domain:acme.com", "qualified"), ("domain:beta.io", "qualified")]


def test_the_store_holds_one_open_account_lead_per_account(engine):
    p = pipeline(engine)
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=5, hours=5))
    lead = account_lead(p)
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(sa.insert(Pql.__table__).values(
            user_id="u1", trial_started_at=START, state="qualified", tier="high", score=0, signals=[],
            qualified_at=START, created_at=START, updated_at=START, level="account", account_key=lead.account_key))


# -- what people see -------------------------------------------------------------------------------------------

def test_the_alerts_say_which_lead_is_the_accounts_and_which_is_now_part_of_it(engine):
    from bot.services import lead_view
    from bot.slack.blocks.alert import alert

    p = pipeline(engine)
    a, b = absorbed_story(p)
    at = START + timedelta(days=3)
    with p.session() as session:
        gone = lead_view.build(session, a, tz=NY, product_name="Acme", at=at)
        kept = lead_view.build(session, b, tz=NY, product_name="Acme", at=at)
    assert gone.stopped_reason == f"now part of the account lead PQL-{b}: work it there" and not gone.is_open
    text = str(alert(gone, now=at, tz=NY)[1])
    assert f"PQL-{b}" in text and "Claim" not in text
    assert kept.account_key == "domain:acme.com" and kept.account_users == 5
    assert "Account lead: Acme Corp, 5 users" in str(alert(kept, now=at, tz=NY)[1])
    # The handoff package's contact map: every user of the account, with what they did.
    assert len(kept.handoff.contact_map) == 5
    [u0] = [line for line in kept.handoff.contact_map if "u0@acme.com" in line]
    assert u0.startswith("U0, Engineer · u0@acme.com · last active ") and "activated" in u0


def test_a_full_rescore_split_between_processes_rolls_up_the_accounts_one_process_would(engine, monkeypatch):
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        pytest.skip("a store in memory is not split")
    from bot.services import rescore as qualify

    monkeypatch.setattr(qualify, "_SPLIT_FROM", 0)  # any store counts as big: three processes share these users
    monkeypatch.setattr(qualify, "_OWN_WEIGHT", 1.0)
    trials = [member("u0", qualify=True), member("u1", qualify=True), *five()[2:], member("x", domain="other.org")]
    events = [e for t in trials for e in t.events]
    at = START + timedelta(days=9)
    results = {}
    for processes in (1, 3):
        with engine.begin() as connection:
            for table in ("audit", "notices", "assignments", "pqls", "account_scores", "tallies", "trial_users",
                          "events"):
                connection.execute(sa.text(f"DELETE FROM {table}"))
        p = pipeline(engine)
        p.processes = processes
        p.ingest(events, score=False)
        p.rescore_all(at=at)
        with p.session() as session:
            verdict = session.get(AccountScore, "domain:acme.com").verdict
        results[processes] = ([(x.user_id, x.level, x.state, x.account_key, x.tier) for x in pqls(p)],
                              verdict["users"], verdict["triggers"])
    assert results[3] == results[1]
    # u0's and u1's own leads, recorded in the same rescore: one became the account's, the other is part of it.
    assert [lead[1:3] for lead in results[1][0]] == [("account", "qualified"), ("user", "absorbed")]


def test_a_full_rescore_records_each_accounts_verdict_as_scoring_the_file_gives_it(engine):
    """A full rescore keeps only what accounts read of each user's verdict and tallies while it judges a population
    (`Facts`, `Slots`), and judges nobody again: the verdict it records (contact map, triggers, anchor,
    firmographics) is the one `pqlbot score --json` prints for the same events, where nothing fired as well."""
    from scoring.accounts import score_users_and_accounts

    trials = [member("u0", qualify=True), member("u1", qualify=True), *five()[2:],
              # Three of widget.io's users activate: nothing fires for it (nor for other.org's one user).
              *(member(f"w{i}", domain="widget.io", activate_at=START + timedelta(days=i)) for i in range(3)),
              member("x", domain="other.org")]
    events = [e for t in trials for e in t.events]
    at = START + timedelta(days=9)
    p = pipeline(engine)
    p.ingest(events, score=False)
    p.rescore_all(at=at)
    expected = {line.account.key: line.to_json() for line in score_users_and_accounts(events, RULES, at, tz=NY)
                if line.level == "account"}
    with p.session() as session:
        recorded = {score.account_key: score.verdict for score in session.exec(select(AccountScore))}
        [lead] = [lead for lead in session.exec(select(Pql)) if lead.level == "account"]
    assert list(expected) == ["domain:acme.com"]
    assert recorded == {"domain:acme.com": orjson.loads(orjson.dumps(expected["domain:acme.com"]))}
    assert [user["user_id"] for user in recorded["domain:acme.com"]["users"]] == ["u0", "u1", "u2", "u3", "u4"]
    assert lead.account_key == "domain:acme.com"


def test_a_members_new_name_or_title_reaches_the_open_account_leads_contact_map_at_once(engine):
    """A rep reads the contact map to choose whom to call: a member's identify call (a new title, a new name) shows
    there with that call, and the alert is edited. The same call again (products send one at every login) edits
    nothing."""
    p = pipeline(engine, router=Router(BusinessCalendar(NY), cap=5, manager=BOSS))
    p.ingest([e for t in five() for e in t.events], at=START + timedelta(days=4, hours=5))  # Friday, open
    lead = account_lead(p)
    member_ = next(f"u{i}" for i in range(5) if f"u{i}" != lead.user_id)
    day = START + timedelta(days=7)
    p.ingest([parse_event({"type": "identify", "userId": member_, "messageId": "who-1", "timestamp": day.isoformat(),
                           "traits": {"title": "VP Sales", "firstName": "Dana", "lastName": "Reyes"}})], at=day)
    assert account_lead(p).version == lead.version + 1  # its alert edited
    with p.session() as session:
        view = lead_view.build(session, lead.id, tz=NY, product_name="Acme", at=day)
    [contact] = [c for c in view.contacts if c.user_id == member_]
    assert (contact.name, contact.title) == ("Dana Reyes", "VP Sales")
    assert "VP Sales" in lead_view.contact_line(contact, tz=NY)
    p.ingest([parse_event({"type": "identify", "userId": member_, "messageId": "who-2",
                           "timestamp": (day + timedelta(hours=1)).isoformat(),
                           "traits": {"title": "VP Sales", "firstName": "Dana", "lastName": "Reyes"}})],
             at=day + timedelta(hours=1))
    assert account_lead(p).version == lead.version + 1


def test_a_first_rescore_absorbing_many_members_leads_at_once_writes_what_absorbing_them_row_by_row_writes(
        engine, monkeypatch):
    """A backfill where five people of one account each qualify and the account's trigger fires: one pass records
    their leads, makes one of them the account's and absorbs the other four. On PostgreSQL a first rescore's
    thousands go staged, one statement each (`BulkWriter`); here staged from 2 rows against row by row."""
    from bot.store import bulk

    trials = [member(f"q{i}", qualify=True, activate_at=START + timedelta(hours=1 + i)) for i in range(5)]
    at = START + timedelta(days=4)

    def backfill(stage_from: int) -> tuple:
        monkeypatch.setattr(bulk, "STAGE_FROM", stage_from)
        with engine.begin() as connection:
            for table in ("audit", "notices", "assignments", "pqls", "account_scores", "tallies", "trial_users",
                          "events"):
                connection.execute(sa.text(f"DELETE FROM {table}"))
        p = pipeline(engine)
        p.ingest([e for t in trials for e in t.events], at=at, score=False)
        p.rescore_all(at=at)
        leads_left = [(lead.user_id, lead.level, lead.state, lead.version,
                       None if lead.absorbed_into is None else by_user[lead.absorbed_into], lead.updated_at)
                      for by_user in [{lead.id: lead.user_id for lead in pqls(p)}] for lead in pqls(p)]
        return leads_left, sorted((e.action, e.user_id) for e in trail(p, "pql_absorbed"))

    staged, row_by_row = backfill(2), backfill(10**6)
    assert staged == row_by_row
    leads_left, absorbed = staged
    assert [state for _, level, state, *_ in leads_left if level == "user"].count("absorbed") == 4
    assert len(absorbed) == 4 and {into for *_, into, _ in leads_left if into} == {
        user for user, level, *_ in leads_left if level == "account"}
