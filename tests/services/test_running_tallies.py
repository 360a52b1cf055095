"""Ingestion adds events to users' running tallies, and the verdicts it stores are the ones scoring the whole
history gives: for generated streams, for identify and group calls, for anonymous visitors who sign in, for
replays, backfills and rules changes, and for two writers on PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.services.pipeline import Pipeline
from bot.store.events import events_of
from bot.store.models import Group, Pql, TallyRecord, TrialUser
from scoring import DEFAULT_RULES, Event, load_rules, parse_event, score_user
from scoring.identity import resolve
from tests.scoring.builders import NY, Trial

START = datetime(2026, 11, 2, 10, 0, tzinfo=NY)
RULES = load_rules()


def pipeline(engine, **kwargs) -> Pipeline:
    return Pipeline(engine, tz=NY, **kwargs)


def verdict(engine, user_id: str) -> dict | None:
    with pipeline(engine).session() as session:
        row = session.get(TrialUser, user_id)
        return None if row is None else row.verdict


def history(engine, user_id: str) -> list[Event]:
    with engine.connect() as connection:
        return next((events for user, events in events_of(connection, [user_id]) if user == user_id), [])


def whole(engine, user_id: str, at: datetime, rules=RULES) -> dict:
    """The verdict on the user's whole stored history, with the accounts' traits as the store keeps them."""
    from bot.store import tallies

    with engine.connect() as connection:
        groups = tallies.all_groups(connection)
    return json.loads(json.dumps(score_user(history(engine, user_id), rules, at, tz=NY, groups=groups).to_json()))


def call(kind: str, user: str | None, at: datetime, n: str, **fields) -> Event:
    body = {"type": kind, "timestamp": at.isoformat(), "messageId": n, **fields}
    if user is not None:
        body["userId"] = user
    return parse_event(body, RULES)


def track(user: str, at: datetime, name: str, n: str, **props) -> Event:
    return call("track", user, at, n, event=name, properties=props)


# -- generated streams ---------------------------------------------------------------------------------------

_NAMES = ["activation_complete", "invite_sent", "integration_connected", "page_view", "session_start",
          "demo_requested", "checkout_started", "support_ticket_opened", "support_ticket_closed", "sales_opt_out",
          # the default rules' trigger events
          "upgrade_clicked", "plan_comparison_viewed", "sso_config_started", "sso_config_completed",
          "security_doc_downloaded", "enterprise_feature_accessed", "integration_failed"]


@st.composite
def streams(draw):
    """A few users' events in the order they arrive (out of time order at times), cut into ingest groups, each
    ingested at a moment no earlier than its events."""
    users = ["ana", "bo", "cy"]
    events = []
    for user in users:
        size = draw(st.sampled_from([800, 50, None]))
        events.append(track(user, START, "signup_complete", f"{user}-s", email=f"{user}@acme.com",
                            company_name="Acme", **({"company_size": size} if size else {})))
    for n in range(draw(st.integers(min_value=3, max_value=30))):
        user, name = draw(st.sampled_from(users)), draw(st.sampled_from(_NAMES))
        at = START + timedelta(minutes=draw(st.integers(min_value=-60, max_value=11 * 24 * 60)))
        props = {"integration_connected": {"integration_type": draw(st.sampled_from(["dbt", "slack"]))},
                 "invite_sent": {"invitee_email": draw(st.sampled_from(["a@acme.com", "b@acme.com"]))},
                 "page_view": {"page_path": draw(st.sampled_from(["/pricing", "/docs", "/billing"]))},
                 "enterprise_feature_accessed": {"feature": "sso"},
                 "support_ticket_opened": {"ticket_id": "T1"}, "support_ticket_closed": {"ticket_id": "T1"}}
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            traits = {"employees": draw(st.sampled_from([900, 40, 5000])),
                      "industry": draw(st.sampled_from(["Fintech", "retail"]))}
            events.append(call("identify", user, at, f"i{n}", traits=traits))
        else:
            events.append(track(user, at, name, f"e{n}", **props.get(name, {})))
    order = draw(st.permutations(range(len(events))))
    arriving = [events[i] for i in order]
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(arriving) - 1), max_size=5)))
    groups = [arriving[a:b] for a, b in zip([0, *cuts], [*cuts, len(arriving)], strict=False)]
    return groups


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(groups=streams())
def test_every_stored_verdict_is_the_verdict_of_the_whole_stored_history(engine, groups):
    with engine.begin() as connection:
        for table in ("audit", "notices", "assignments", "dispositions", "pqls", "tallies", "trial_users", "events",
                      "identities", "groups"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    p, at = pipeline(engine), START
    for group in groups:
        at = max([at, *(e.at for e in group)]) + timedelta(minutes=5)
        p.ingest(group, at=at)
        for user in {e.user_id for e in group}:
            assert verdict(engine, user) == whole(engine, user, at), user


# -- identity and firmographics -------------------------------------------------------------------------------

def test_a_company_size_sent_only_by_identify_is_what_the_user_is_judged_on(engine):
    p = pipeline(engine)
    trial = Trial(size=None).activate(1).invite(1).integrate(1)
    p.ingest(trial.events, at=trial.on(1, 18))
    assert verdict(engine, "ana")["status"] == "excluded"  # size unknown
    p.ingest([call("identify", "ana", trial.on(1, 19), "id1", traits={"company": {"name": "Acme",
                                                                                   "employee_count": 800}})],
             at=trial.on(1, 20))
    assert verdict(engine, "ana")["status"] == "qualified"
    assert verdict(engine, "ana")["company_size"] == 800


def test_an_industry_sent_only_by_identify_moves_the_acv_potential_at_once(engine):
    p = pipeline(engine)
    trial = Trial(size=800).activate(1).invite(1).integrate(1)
    p.ingest(trial.events, at=trial.on(1, 18))
    assert verdict(engine, "ana")["acv_potential"] == 20000
    p.ingest([call("identify", "ana", trial.on(1, 19), "id1", traits={"industry": "Fintech"})], at=trial.on(1, 20))
    assert verdict(engine, "ana")["acv_potential"] == 25000  # the same day: no clock moved, the read did
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(1, 20))


def test_an_accounts_group_traits_reach_every_user_of_it_and_a_change_rejudges_them(engine):
    p = pipeline(engine)
    ana, bo = Trial("ana", size=None).activate(1).invite(1).integrate(1), \
        Trial("bo", email="bo@acme.com", size=None).activate(1).invite(1).integrate(1)
    p.ingest([*ana.events, *bo.events], at=ana.on(1, 18))
    p.ingest([call("group", "ana", ana.on(1, 19), "g1", groupId="acme", traits={"employees": 700}),
              call("group", "bo", ana.on(1, 19), "g2", groupId="acme")], at=ana.on(1, 20))
    assert verdict(engine, "bo")["company_size"] == 700 and verdict(engine, "bo")["status"] == "qualified"
    with pipeline(engine).session() as session:
        assert session.get(TrialUser, "bo").group_id == "acme"
    p.ingest([call("group", "ana", ana.on(1, 21), "g3", groupId="acme", traits={"employees": 9000})],
             at=ana.on(1, 22))
    assert verdict(engine, "bo")["company_size"] == 9000  # bo sent nothing: his account changed
    assert verdict(engine, "bo")["status"] == "excluded"
    with pipeline(engine).session() as session:
        assert session.get(Group, "acme").traits["company_size"][0] == 9000


def test_an_accounts_size_and_industry_move_its_users_band_and_acv_potential(engine):
    p = pipeline(engine)
    bo = Trial("bo", email="bo@acme.com", size=None).activate(1)
    p.ingest(bo.events, at=bo.on(1, 18))
    assert (verdict(engine, "bo")["band"], verdict(engine, "bo")["acv_potential"]) == ("unknown", None)
    p.ingest([call("group", "bo", bo.on(1, 19), "g1", groupId="acme", traits={"employees": 700})], at=bo.on(1, 20))
    assert (verdict(engine, "bo")["band"], verdict(engine, "bo")["acv_potential"]) == ("mid_market", 20000)
    p.ingest([call("group", "ana", bo.on(1, 21), "g2", groupId="acme", traits={"employees": 9000,
                                                                                "industry": "Legal"})],
             at=bo.on(1, 22))
    assert (verdict(engine, "bo")["band"], verdict(engine, "bo")["acv_potential"]) == ("enterprise", 62500)
    assert verdict(engine, "bo") == whole(engine, "bo", bo.on(1, 22))


def test_an_anonymous_visitors_pricing_views_join_the_user_who_signs_in(engine):
    p = pipeline(engine)
    trial = Trial().activate(1).invite(1)
    p.ingest(trial.events, at=trial.on(1, 18))
    anonymous = [call("page", None, trial.on(day, 11), f"p{day}", anonymousId="browser-1",
                      properties={"path": "/pricing"}) for day in (1, 2)]
    p.ingest(anonymous, at=trial.on(2, 12))
    assert verdict(engine, "ana")["score"] == 3  # the views are a visitor's, not yet hers
    assert verdict(engine, "anonymous:browser-1") is None  # a visitor is kept, never scored
    p.ingest([call("identify", "ana", trial.on(2, 13), "id", anonymousId="browser-1", traits={})],
             at=trial.on(2, 14))
    assert verdict(engine, "ana")["score"] == 5  # billing views on two days: +2
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(2, 14))
    later = call("page", None, trial.on(2, 15), "p3", anonymousId="browser-1", properties={"path": "/docs"})
    p.ingest([later], at=trial.on(2, 16))
    assert [e.message_id for e in history(engine, "ana")][-1] == "p3"  # linked: later visits are hers


def test_an_alias_moves_an_earlier_ids_events_to_the_user(engine):
    p = pipeline(engine)
    old = Trial("old-id").activate(1).invite(1)
    p.ingest(old.events, at=old.on(1, 18))
    p.ingest([call("alias", "ana", old.on(1, 19), "al", previousId="old-id"),
              track("ana", old.on(1, 20), "integration_connected", "int", integration_type="dbt")],
             at=old.on(1, 21))
    assert verdict(engine, "ana")["status"] == "qualified" and verdict(engine, "ana")["score"] == 6
    assert history(engine, "old-id") == []


def test_scoring_a_file_links_anonymous_calls_the_same_way():
    trial = Trial().activate(1).invite(1)
    views = [call("page", None, trial.on(day, 11), f"p{day}", anonymousId="b", properties={"path": "/pricing"})
             for day in (1, 2)]
    linked = resolve([*trial.events, *views, call("identify", "ana", trial.on(2, 13), "i", anonymousId="b")])
    assert {e.user_id for e in linked} == {"ana"}
    assert score_user(linked, RULES, trial.on(2, 14), tz=NY).score == 5


# -- replays, backfills, rules -------------------------------------------------------------------------------

def tally_of(engine, user_id):
    with pipeline(engine).session() as session:
        return session.get(TallyRecord, user_id)


def test_a_replayed_invite_is_counted_once_in_the_tallies(engine):
    p = pipeline(engine)
    trial = Trial().activate(1).invite(1, "li@acme.com").invite(2, "raj@acme.com")
    p.ingest(trial.events, at=trial.on(2, 18))
    p.ingest(trial.events[-1:], at=trial.on(2, 19))  # the same messageId again
    [invites] = [s for s in verdict(engine, "ana")["signals"] if s["name"] == "invites"]
    assert invites["evidence"] == "invited 2 teammates"


def test_events_stored_without_scoring_drop_the_tallies_and_the_next_event_builds_them_again(engine):
    p = pipeline(engine)
    trial = Trial().activate(1)
    p.ingest(trial.events, at=trial.on(1, 18))
    assert tally_of(engine, "ana") is not None
    trial.invite(2).integrate(2)
    p.ingest(trial.events[-2:], at=trial.on(2, 18), score=False)  # a backfill chunk
    assert tally_of(engine, "ana") is None
    trial.view(3)
    p.ingest(trial.events[-1:], at=trial.on(3, 18))
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(3, 18))
    assert verdict(engine, "ana")["score"] == 8  # activated, invites, integration, three active days


def test_tallies_made_under_other_rules_are_built_again(engine, tmp_path):
    trial = Trial().activate(1).invite(1).integrate(2)
    pipeline(engine).ingest(trial.events[:-1], at=trial.on(1, 16))
    stricter = tmp_path / "rules.toml"
    stricter.write_text(DEFAULT_RULES.read_text().replace("qualify = 4", "qualify = 7"))
    p = pipeline(engine, rules_path=stricter)
    assert p.basis != pipeline(engine).basis
    p.ingest(trial.events[-1:], at=trial.on(2, 18))
    assert verdict(engine, "ana")["status"] == "below_threshold"  # 6 points: under the new 7
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(2, 18), rules=p.rules)


def test_an_event_from_after_the_moment_judged_waits_for_its_time(engine):
    p = pipeline(engine)
    trial = Trial().activate(1).invite(1)
    p.ingest(trial.events, at=trial.on(1, 18))
    ahead = track("ana", trial.on(3), "integration_connected", "ahead", integration_type="dbt")
    p.ingest([ahead], at=trial.on(2))
    assert verdict(engine, "ana")["score"] == 3  # not yet
    p.ingest([track("ana", trial.on(3, 16), "session_start", "s")], at=trial.on(3, 17))
    assert verdict(engine, "ana")["score"] == 6 and verdict(engine, "ana") == whole(engine, "ana", trial.on(3, 17))


def test_a_verdict_stands_while_nothing_it_reads_changes_and_moves_with_the_clock(engine):
    """Another page view on a day already counted changes nothing a verdict reads: the user is not judged again,
    and the stored verdict is still the whole history's. The next day (a new trial day) they are."""
    p = pipeline(engine)
    trial = Trial().activate(1).invite(1, "li@acme.com").integrate(1)
    p.ingest(trial.events, at=trial.on(1, 16))
    assert verdict(engine, "ana")["status"] == "qualified"
    again = p.ingest([track("ana", trial.on(1, 17), "page_view", "pv", page_path="/docs")], at=trial.on(1, 17, 30))
    assert again.rescored.users == 0
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(1, 17, 30))
    tomorrow = p.ingest([track("ana", trial.on(2, 17), "page_view", "pv2", page_path="/docs")], at=trial.on(2, 17))
    assert tomorrow.rescored.users == 1
    assert verdict(engine, "ana")["trial_day"] == 2 and verdict(engine, "ana") == whole(engine, "ana", trial.on(2, 17))
    assert [pql.user_id for pql in _pqls(engine)] == ["ana"]


def _pqls(engine):
    with pipeline(engine).session() as session:
        return list(session.exec(select(Pql)))


# -- two writers ---------------------------------------------------------------------------------------------

def test_two_writers_adding_to_one_users_tallies_at_once_lose_neither_event(engine, monkeypatch):
    """Each writer reads the tallies, then both would add to what they read and write it back, the second over the
    first. Each is held up after reading until the other has read too (or 2 s have passed): with the turns the
    tallies take per user, the second cannot read before the first has written."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite store has one writer at a time")
    from bot.store import tallies

    trial = Trial().activate(1)
    pipeline(engine).ingest(trial.events, at=trial.on(1, 18))
    invites = [track("ana", trial.on(2, 10 + n), "invite_sent", f"inv{n}", invitee_email=f"t{n}@acme.com")
               for n in range(2)]
    both_read = threading.Barrier(2, timeout=2)
    read = tallies.read

    def read_then_wait(connection, user_ids):
        found = read(connection, user_ids)
        try:
            both_read.wait()
        except threading.BrokenBarrierError:
            pass  # the other writer is waiting for its turn: the way it should be
        return found

    monkeypatch.setattr(tallies, "read", read_then_wait)
    threads = [threading.Thread(target=pipeline(engine).ingest, args=([e],), kwargs={"at": trial.on(2, 18)})
               for e in invites]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    monkeypatch.setattr(tallies, "read", read)
    pipeline(engine).ingest([track("ana", trial.on(2, 19), "session_start", "s")], at=trial.on(2, 20))
    [invites_signal] = [s for s in verdict(engine, "ana")["signals"] if s["name"] == "invites"]
    assert invites_signal["evidence"] == "invited 2 teammates"
    assert verdict(engine, "ana") == whole(engine, "ana", trial.on(2, 20))


# -- triggers ------------------------------------------------------------------------------------------------

def test_a_trigger_history_arriving_in_pieces_out_of_order_is_stored_as_the_whole_historys_verdict(engine):
    p = pipeline(engine)
    trial = Trial("omar", email="omar@globex.com", size=800).activate(1)
    for hour in (9, 10, 11):
        trial.view(2, "/pricing", hour)
    trial.add("upgrade_clicked", trial.on(2, 12)).add("plan_comparison_viewed", trial.on(2, 13))
    signup, *rest = trial.events
    p.ingest(list(reversed(rest[3:])), at=trial.on(2, 14))  # the clicks first, before the signup
    p.ingest([*rest[:3], signup], at=trial.on(2, 15))
    stored = verdict(engine, "omar")
    assert stored == whole(engine, "omar", trial.on(2, 15))
    assert (stored["status"], stored["tier"], stored["family"]) == ("qualified", "high", "buying")
    assert [t["name"] for t in stored["triggers"]] == ["active_buyer"]
    [pql] = _pqls(engine)
    assert (pql.user_id, pql.tier, pql.strongest_signal) == ("omar", "high", "active_buyer")


def test_a_started_and_not_completed_wait_that_ends_with_no_new_event_is_picked_up_by_the_next_ingest(engine):
    """SSO set-up started on day 1 at 12:00 is due on day 8 at 12:00. A page view at 12:30 that changes nothing the
    verdict otherwise reads (a second active day: multi-day use needs three) must still find the lead; and the
    periodic rescore finds it with no event at all."""
    p = pipeline(engine)
    trial = Trial("omar", email="omar@globex.com", size=5000).activate(1, 11)
    trial.add("sso_config_started", trial.on(1, 12))
    p.ingest(trial.events, at=trial.on(1, 13))
    p.ingest([track("omar", trial.on(8, 11), "page_view", "pv1", page_path="/docs")], at=trial.on(8, 11))
    assert (verdict(engine, "omar")["status"], verdict(engine, "omar")["triggers"]) == ("excluded", [])  # 5,000 people
    again = p.ingest([track("omar", trial.on(8, 12, 30), "page_view", "pv2", page_path="/docs")],
                     at=trial.on(8, 12, 30))
    assert again.rescored.users == 1
    stored = verdict(engine, "omar")
    assert stored == whole(engine, "omar", trial.on(8, 12, 30))
    assert (stored["status"], stored["tier"], stored["family"]) == ("qualified", "high", "blocker")
    assert [pql.user_id for pql in _pqls(engine)] == ["omar"]

    bo = Trial("bo", email="bo@globex.com", size=5000).activate(1, 11)
    bo.add("sso_config_started", bo.on(1, 12))
    p.ingest(bo.events, at=bo.on(1, 13))
    p.rescore_all(at=bo.on(8, 12))
    assert verdict(engine, "bo")["status"] == "qualified" and verdict(engine, "bo") == whole(engine, "bo", bo.on(8, 12))
