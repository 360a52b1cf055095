"""What reps and the manager may do to a lead, and what each action leaves behind."""

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services import audit, leads
from bot.services.leads import Refused
from bot.services.pipeline import Pipeline
from bot.store.models import Assignment, DispositionRecord, Notice, Pql, Rep, Touch, TrialUser
from tests.scoring.builders import NY, Trial, sarah

NOW = datetime(2026, 11, 6, 15, 0, tzinfo=NY)
ANA, BEN, BOSS, OUTSIDER = "U0ANA", "U0BEN", "U0BOSS", "U0EVE"
CAP = 5


@pytest.fixture
def store(engine):
    pipeline = Pipeline(engine, tz=NY)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], now=NOW)
    return pipeline


def make_lead(store, user="sarah", at=NOW):
    # Each at a company of their own: five users of one activating together would be one account's lead.
    trial = sarah() if user == "sarah" else \
        Trial(user, email=f"{user}@{user}.example").activate(1).invite(2).integrate(2)
    store.ingest(trial.events, at=at)
    with store.session() as session:
        return session.exec(select(Pql).where(Pql.user_id == user)).one().id


def act(store, fn, pql_id, user, **kwargs):
    """Run one service as `user` in its own transaction, as a Slack handler does."""
    with store.session() as session, session.begin():
        who = leads.actor(session, user, manager=BOSS)
        return fn(session, session.get(Pql, pql_id), who, **kwargs)


def claim(store, pql_id, user, **kwargs):
    return act(store, leads.claim, pql_id, user, now=kwargs.pop("now", NOW), tz=NY, cap=CAP, **kwargs)


def lead(store, pql_id):
    with store.session() as session:
        return session.get(Pql, pql_id)


def notices(store, kind=None):
    with store.session() as session:
        query = select(Notice).order_by(Notice.id)
        return [n for n in session.exec(query) if kind is None or n.kind == kind]


# Claiming --------------------------------------------------------------------------------------------

def test_a_rep_on_the_roster_claims_a_lead_and_the_thread_hears_of_it(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    pql = lead(store, pql_id)
    assert (pql.claimed_by, pql.rep_id, pql.state, pql.claimed_at) == (ANA, ANA, "claimed", NOW)
    assert pql.version > pql.posted_version  # the alert will be edited to say so
    [reply] = notices(store, "reply")
    assert reply.text == f"PQL-{pql_id} claimed by <@{ANA}>."


def test_someone_off_the_roster_cannot_claim(store):
    pql_id = make_lead(store)
    with pytest.raises(Refused, match="Only reps on the PQL roster"):
        claim(store, pql_id, OUTSIDER)
    assert lead(store, pql_id).claimed_by is None


def test_a_second_claim_is_told_who_has_it(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    with pytest.raises(Refused, match=f"already claimed by <@{ANA}>"):
        claim(store, pql_id, BEN)


def test_two_reps_clicking_at_once_make_exactly_one_winner(store):
    pql_id = make_lead(store)
    barrier, outcomes = threading.Barrier(2), {}

    def click(user):
        barrier.wait()
        try:
            claim(store, pql_id, user)
            outcomes[user] = "won"
        except Refused as refusal:
            outcomes[user] = str(refusal)
        except sa.exc.OperationalError:  # SQLite's writer lock: the loser waits, then sees the claim
            outcomes[user] = "locked"

    threads = [threading.Thread(target=click, args=(user,)) for user in (ANA, BEN)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()).count("won") == 1
    winner = next(user for user, outcome in outcomes.items() if outcome == "won")
    assert lead(store, pql_id).claimed_by == winner
    with store.session() as session:
        claims = [e for e in audit.trail(session, pql_id=pql_id) if e.action == "pql_claimed"]
    assert len(claims) == 1


def test_a_rep_at_the_daily_cap_is_told_so_and_the_manager_can_override(store):
    ids = [make_lead(store, f"u{n}") for n in range(CAP + 1)]
    for pql_id in ids[:CAP]:
        claim(store, pql_id, ANA)
    with pytest.raises(Refused, match="today's cap of 5"):
        claim(store, ids[CAP], ANA)
    claim(store, ids[CAP], BOSS, for_rep=ANA)
    assert lead(store, ids[CAP]).claimed_by == ANA


def test_the_cap_counts_the_team_timezone_day(store):
    ids = [make_lead(store, f"u{n}") for n in range(CAP + 1)]
    late = datetime(2026, 11, 6, 23, 30, tzinfo=NY)  # already Saturday in UTC, still Friday in New York
    for pql_id in ids[:CAP]:
        claim(store, pql_id, ANA, now=late - timedelta(hours=5))
    with pytest.raises(Refused, match="cap"):
        claim(store, ids[CAP], ANA, now=late)
    claim(store, ids[CAP], ANA, now=late + timedelta(minutes=31))  # 00:01 Saturday in New York


def test_only_the_manager_claims_on_someone_elses_behalf(store):
    pql_id = make_lead(store)
    with pytest.raises(Refused, match="Only the sales manager"):
        claim(store, pql_id, ANA, for_rep=BEN)


def test_a_lead_assigned_to_one_rep_cannot_be_taken_by_another(store):
    pql_id = make_lead(store)
    act(store, leads.reassign, pql_id, BOSS, to_rep=BEN, now=NOW)
    with pytest.raises(Refused, match=f"assigned to <@{BEN}>"):
        claim(store, pql_id, ANA)
    claim(store, pql_id, BEN)


def test_a_bare_claim_takes_the_oldest_unclaimed_lead(store):
    first = make_lead(store, "u1", at=NOW - timedelta(hours=2))
    make_lead(store, "u2")
    with store.session() as session:
        assert leads.oldest_claimable(session, leads.actor(session, ANA, manager=BOSS)).id == first


@pytest.mark.parametrize("ref", ["PQL-{id}", "pql-{id}", "{id}", "sarah@acme.com", "SARAH@ACME.COM", "sarah",
                                 "<mailto:sarah@acme.com|sarah@acme.com>"])
def test_a_lead_is_found_by_short_id_email_or_user_id(store, ref):
    pql_id = make_lead(store)
    with store.session() as session:
        assert leads.find(session, ref.format(id=pql_id)).id == pql_id


def test_an_unknown_reference_says_what_to_type(store):
    with store.session() as session, pytest.raises(Refused, match="Try a short id like PQL-42"):
        leads.find(session, "PQL-999")


# Reassigning -----------------------------------------------------------------------------------------

def test_only_the_manager_reassigns_and_a_claimed_lead_moves_with_its_claim(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    with pytest.raises(Refused, match="Only the sales manager"):
        act(store, leads.reassign, pql_id, ANA, to_rep=BEN, now=NOW)
    act(store, leads.reassign, pql_id, BOSS, to_rep=BEN, now=NOW)
    pql = lead(store, pql_id)
    assert (pql.rep_id, pql.claimed_by) == (BEN, BEN)
    with store.session() as session:
        reasons = [a.reason for a in session.exec(select(Assignment).where(Assignment.pql_id == pql_id))]
    assert reasons == ["claim", "manual"]


# Touches ---------------------------------------------------------------------------------------------

def test_touches_are_numbered_and_the_fourth_is_refused(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    for key in ("email1", "email2", "email3"):
        act(store, leads.log_touch, pql_id, ANA, channel="email", email_key=key, note="sent", now=NOW)
    with pytest.raises(Refused, match="already has 3 touches"):
        act(store, leads.log_touch, pql_id, ANA, channel="call", email_key=None, note=None, now=NOW)
    with store.session() as session:
        numbers = [t.number for t in session.exec(select(Touch).where(Touch.pql_id == pql_id))]
    assert numbers == [1, 2, 3] and lead(store, pql_id).state == "working"
    replies = [n.text for n in notices(store, "reply")]
    assert f"Touch 3 of 3 by <@{ANA}>: Email (Email 3) · sent" in replies


def test_only_the_claimant_or_the_manager_logs_touches(store):
    pql_id = make_lead(store)
    with pytest.raises(Refused, match="Claim PQL"):
        act(store, leads.log_touch, pql_id, ANA, channel="call", email_key=None, note=None, now=NOW)
    claim(store, pql_id, ANA)
    with pytest.raises(Refused, match=f"<@{ANA}>'s lead"):
        act(store, leads.log_touch, pql_id, BEN, channel="call", email_key=None, note=None, now=NOW)
    act(store, leads.log_touch, pql_id, BOSS, channel="linkedin", email_key=None, note="InMail", now=NOW)


# Dispositions ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("disposition", "next_action"),
    [("meeting_set", "run the meeting"), ("converted_self_serve", "warm handoff to CS"),
     ("nurture", "nurture sequence"), ("no_response", "won't be routed again"),
     ("disqualified", "out of PQL routing"), ("routed_to_cs", "open a CS ticket")],
)
def test_each_disposition_is_stored_and_answered_with_the_seeds_next_action(store, disposition, next_action):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    said = act(store, leads.set_disposition, pql_id, ANA, disposition=disposition, reason="wrong team", now=NOW)
    assert next_action in said
    pql = lead(store, pql_id)
    assert (pql.state, pql.disposition) == ("dispositioned", disposition)
    assert next_action in notices(store, "reply")[-1].text


def test_disqualified_needs_a_reason(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    with pytest.raises(Refused, match="Say why"):
        act(store, leads.set_disposition, pql_id, ANA, disposition="disqualified", reason="  ", now=NOW)


def test_no_response_keeps_the_user_out_of_routing_for_the_rest_of_the_trial(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    act(store, leads.set_disposition, pql_id, ANA, disposition="no_response", reason=None, now=NOW)
    trial = sarah()
    trial.view(6).view(7)  # new signals later in the trial
    store.ingest(trial.events, at=trial.on(7, 18))
    with store.session() as session:
        user = session.get(TrialUser, "sarah")
        assert user.status == "excluded" and user.verdict["reasons"][0]["code"] == "prior_disposition"
        assert len(session.exec(select(Pql)).all()) == 1
        assert session.exec(select(DispositionRecord)).one().disposition == "no_response"


def test_a_dispositioned_lead_takes_no_more_work(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    act(store, leads.set_disposition, pql_id, ANA, disposition="nurture", reason=None, now=NOW)
    with pytest.raises(Refused, match="is closed"):
        act(store, leads.log_touch, pql_id, ANA, channel="call", email_key=None, note=None, now=NOW)


# Product events after the alert ------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "state", "words"), [
    ("trial_converted", "stopped_converted", "converted to paid on their own"),
    ("sales_opt_out", "stopped_opt_out", "do not contact"),
])
def test_a_conversion_or_opt_out_after_the_alert_stops_the_lead_and_tells_the_rep(store, event, state, words):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    trial = sarah()
    trial.add(event, trial.on(6), plan="team", mrr=500) if event == "trial_converted" else trial.add(event, trial.on(6))
    store.ingest(trial.events[-1:], at=trial.on(6, 16))
    assert lead(store, pql_id).state == state
    [dm] = notices(store, "dm")
    assert dm.target == ANA and words in dm.text
    store.ingest(trial.events[-1:], at=trial.on(6, 17))  # a replay changes nothing
    assert len(notices(store, "dm")) == 1


def test_an_old_conversion_replayed_does_not_stop_a_later_trials_lead(store):
    earlier = Trial("sarah", email="sarah@acme.com", signup=NOW - timedelta(days=60))
    earlier.add("trial_converted", NOW - timedelta(days=55), plan="team", mrr=100)
    store.ingest(earlier.events, at=NOW - timedelta(days=55))
    pql_id = make_lead(store)
    store.ingest(earlier.events[-1:], at=NOW)
    assert lead(store, pql_id).state == "qualified"


# Roster and pausing ----------------------------------------------------------------------------------

def test_the_roster_follows_the_setting_and_keeps_pauses(store):
    with store.session() as session, session.begin():
        leads.set_paused(session, ANA, True, now=NOW)
        leads.sync_roster(session, [(ANA, "Ana Ruiz", "Europe/Madrid")], now=NOW)
    with store.session() as session:
        ana, ben = session.get(Rep, ANA), session.get(Rep, BEN)
    assert (ana.on_roster, ana.paused, ana.timezone) == (True, True, "Europe/Madrid")
    assert ben.on_roster is False


def test_pausing_is_audited_and_said_back(store):
    with store.session() as session, session.begin():
        assert "paused" in leads.set_paused(session, BEN, True, now=NOW)
        assert "Welcome back" in leads.set_paused(session, BEN, False, now=NOW)
    with store.session() as session:
        assert [e.action for e in audit.trail(session)][-2:] == ["rep_paused", "rep_resumed"]


def test_a_touch_records_email_1s_variant_and_whether_they_replied(store):
    pql_id = make_lead(store)  # Sarah: integration is her strongest signal, so Email 1 is variant A
    claim(store, pql_id, ANA)
    act(store, leads.log_touch, pql_id, ANA, channel="email", email_key="email1", note=None, now=NOW, replied=True)
    act(store, leads.log_touch, pql_id, ANA, channel="call", email_key="email2", note=None, now=NOW)
    with store.session() as session:
        first, call = session.exec(select(Touch).where(Touch.pql_id == pql_id).order_by(Touch.number)).all()
    assert (first.variant, first.replied) == ("A", True)
    assert (call.email_key, call.variant, call.replied) == (None, None, False)  # a call is not an email


def test_a_blocker_leads_email_1_is_recorded_as_the_unblock_variant_the_kit_gave_whatever_its_strongest_signal(
        store):
    pql_id = make_lead(store)  # Sarah's strongest signal is her integration (variant A) ...
    with store.session() as session, session.begin():
        user = session.get(TrialUser, "sarah")
        user.verdict = user.verdict | {"family": "blocker"}  # ... but a blocker made her a lead: she is helped
    claim(store, pql_id, ANA)
    act(store, leads.log_touch, pql_id, ANA, channel="email", email_key="email1", note=None, now=NOW)
    with store.session() as session:
        assert session.exec(select(Touch.variant).where(Touch.pql_id == pql_id)).one() == "U"


def test_a_note_cannot_ping_the_channel_or_mention_anyone(store):
    pql_id = make_lead(store)
    claim(store, pql_id, ANA)
    act(store, leads.log_touch, pql_id, ANA, channel="call", email_key=None, note="<!channel> ask <@U0BEN> & co",
        now=NOW)
    text = notices(store, "reply")[-1].text
    assert "<!channel>" not in text and "<@U0BEN>" not in text
    assert "&lt;!channel&gt; ask &lt;@U0BEN&gt; &amp; co" in text
