"""Continuous scoring over the store: one PQL per user per trial, upgrades recorded, sweeps that move clocks."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from freezegun import freeze_time
from sqlmodel import select

from bot import audit
from bot.pipeline import Pipeline
from bot.store.models import DispositionRecord, Pql, TrialUser
from scoring import DEFAULT_RULES
from tests.scoring.builders import NY, Trial, sarah

START = datetime(2026, 11, 2, 10, 0, tzinfo=NY)


def pipeline(engine, **kwargs):
    return Pipeline(engine, tz=NY, **kwargs)


def pqls(engine):
    with pipeline(engine).session() as session:
        return list(session.exec(select(Pql).order_by(Pql.id)))


def user(engine, user_id):
    with pipeline(engine).session() as session:
        return session.get(TrialUser, user_id)


def feed(p, events):
    """Ingest one event at a time, each at its own moment, as a live stream would."""
    return [p.ingest([e], at=e.at) for e in events]


def test_a_user_qualifies_exactly_once_however_often_events_replay(engine):
    p, events = pipeline(engine), sarah().events
    feed(p, events)
    feed(p, events)  # a replay: duplicates only
    p.ingest(events, at=events[-1].at + timedelta(hours=1))  # and as one batch
    [pql] = pqls(engine)
    assert (pql.user_id, pql.tier, pql.score, pql.state) == ("sarah", "medium", 6, "qualified")
    with p.session() as session:
        triggered = [e for e in audit.trail(session, user_id="sarah") if e.action == "pql_triggered"]
    assert len(triggered) == 1 and triggered[0].detail["tier"] == "medium"
    assert {s["name"] for s in triggered[0].detail["signals"]} == {"activation", "invites", "integration"}


def test_the_pql_is_recorded_when_the_qualifying_event_arrives(engine):
    p, events = pipeline(engine), sarah().events
    results = feed(p, events)
    assert [bool(r.rescored.triggered) for r in results] == [False] * (len(events) - 1) + [True]
    assert pqls(engine)[0].qualified_at == events[-1].at


def test_a_replayed_event_changes_nothing(engine):
    p, events = pipeline(engine), sarah().events
    first = p.ingest(events, at=events[-1].at)
    again = p.ingest(events, at=events[-1].at)
    assert (first.stored.accepted, first.stored.duplicates) == (len(events), 0)
    assert (again.stored.accepted, again.stored.duplicates, again.stored.users) == (0, len(events), set())
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from events")).scalar() == len(events)


def test_an_upgrade_from_medium_to_high_updates_the_pql_and_is_audited(engine):
    trial = Trial().activate(1).invite(1).integrate(1).view(6)
    p = pipeline(engine)
    feed(p, trial.events)
    assert pqls(engine)[0].tier == "medium"
    trial.view(7)
    feed(p, trial.events[-1:])
    [pql] = pqls(engine)
    assert (pql.tier, pql.score) == ("high", 10)
    with p.session() as session:
        upgrade = [e for e in audit.trail(session, pql_id=pql.id) if e.action == "pql_upgraded"]
    assert len(upgrade) == 1 and (upgrade[0].detail["old_tier"], upgrade[0].detail["tier"]) == ("medium", "high")


def test_a_fast_lane_ask_after_qualifying_upgrades_the_same_pql(engine):
    trial = Trial().activate(1).invite(2).integrate(2)
    p = pipeline(engine)
    feed(p, trial.events)
    trial.add("demo_requested", trial.on(3))
    feed(p, trial.events[-1:])
    [pql] = pqls(engine)
    assert pql.tier == "fast_lane"


def test_events_before_their_signup_are_kept_and_scored_when_it_arrives(engine):
    trial = sarah()
    signup, *activity = trial.events
    p = pipeline(engine)
    for event in activity:
        p.ingest([event], at=activity[-1].at)
    assert pqls(engine) == []
    assert user(engine, "sarah").status == "excluded"  # no signup yet
    p.ingest([signup], at=activity[-1].at + timedelta(minutes=5))
    assert [q.user_id for q in pqls(engine)] == ["sarah"]


def test_a_no_response_disposition_keeps_the_user_out_of_routing(engine):
    p, trial = pipeline(engine), Trial().activate(1).invite(2)
    feed(p, trial.events)
    with p.session() as session, session.begin():
        pql = Pql(user_id="ana", trial_started_at=trial.signup, state="dispositioned", tier="medium", score=4,
                  qualified_at=trial.on(2), created_at=trial.on(2), updated_at=trial.on(2))
        session.add(pql)
        session.flush()
        session.add(DispositionRecord(pql_id=pql.id, user_id="ana", disposition="no_response", at=trial.on(3)))
    trial.integrate(4)
    feed(p, trial.events[-1:])
    assert user(engine, "ana").status == "excluded"
    assert user(engine, "ana").verdict["reasons"][0]["code"] == "prior_disposition"


# Sweeps --------------------------------------------------------------------------------------------

def one_day_rules(tmp_path):
    text = DEFAULT_RULES.read_text()
    text = text.replace('label = "Teammate invites"', 'label = "Teammate invites"\npoints = 2', 1)
    invites = 'distinct = "invitee_email"\nmin_count = 1'
    text = text.replace(invites + "\npoints = 3", invites)
    text = text.replace("min_count = 2\nmin_days = 2", "min_count = 2\nmin_days = 1")
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_the_daily_sweep_turns_an_expired_hold_into_monitor(engine, tmp_path):
    trial = Trial().activate(1, 10).invite(1, hour=11).view(1, hour=12).view(1, hour=13)
    with freeze_time(trial.on(1, 13, 30)):
        p = pipeline(engine, rules_path=one_day_rules(tmp_path))
        p.ingest(trial.events)
        assert p.rescore_if_due() is not None  # first sweep ever
        assert user(engine, "ana").status == "held"
    with freeze_time(trial.on(2, 13, 29)):
        assert p.rescore_if_due() is None  # 24 h have not passed since the last sweep
        assert user(engine, "ana").status == "held"
    with freeze_time(trial.on(2, 13, 30)):
        report = p.rescore_if_due()
        assert report is not None and report.changed == 1
    assert user(engine, "ana").status == "monitor"
    assert pqls(engine) == []


def test_a_sweep_after_the_window_closes_moves_the_trial_clock_without_new_pqls(engine):
    p, trial = pipeline(engine), Trial().activate(1).integrate(2)
    feed(p, trial.events)
    p.rescore_all(at=trial.on(13, 9))
    verdict = user(engine, "ana").verdict
    assert (verdict["trial_day"], verdict["days_left"], verdict["status"]) == (13, 2, "excluded")
    assert pqls(engine) == []


def test_changing_the_rules_file_rescores_everyone_at_the_next_check(engine, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text())
    trial = sarah()
    with freeze_time(trial.on(6)):
        p = pipeline(engine, rules_path=rules)
        p.ingest(trial.events)
        p.rescore_all()
        assert user(engine, "sarah").status == "qualified"
        rules.write_text(DEFAULT_RULES.read_text().replace("qualify = 4", "qualify = 7"))
        assert p.rescore_if_due() is not None  # not 24 h, but the rules changed
        assert user(engine, "sarah").status == "below_threshold"
        assert len(pqls(engine)) == 1  # a recorded PQL stays recorded


def test_stored_times_come_back_in_utc(engine):
    p = pipeline(engine)
    p.ingest(sarah().events, at=datetime(2026, 11, 6, 20, tzinfo=UTC))
    pql = pqls(engine)[0]
    assert pql.qualified_at.tzinfo is not None and pql.qualified_at.utcoffset() == timedelta(0)
    assert pql.trial_started_at == sarah().signup
