"""Continuous scoring over the store: one PQL per user per trial, upgrades recorded, sweeps that move clocks."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from freezegun import freeze_time
from sqlmodel import select

from bot.services import audit
from bot.services import rescore as qualify
from bot.services.pipeline import Pipeline
from bot.store import bulk
from bot.store import events as ingest
from bot.store.events import store_events
from bot.store.models import AuditEntry, DispositionRecord, EventRecord, Notice, Pql, TrialUser
from scoring import DEFAULT_RULES, parse_event
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


# Batched writes ------------------------------------------------------------------------------------

def test_a_batch_of_new_stored_and_repeated_events_is_counted_exactly(engine):
    p, first, second = pipeline(engine), sarah().events, Trial("tom", email="tom@acme.com").activate(1).events
    p.ingest(first[:3], score=False)
    # Two stored before, one new user's two events (one sent twice), and one more of Sarah's.
    done = p.ingest([first[0], second[0], second[1], second[0], first[2], first[3]], score=False).stored
    assert (done.accepted, done.duplicates, done.users) == (3, 3, {"tom", "sarah"})
    done = p.ingest([first[1], second[1], second[1]], score=False).stored
    assert (done.accepted, done.duplicates, done.users) == (0, 3, set())
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from events")).scalar() == 6


def test_an_event_another_writer_stores_at_the_same_moment_is_its_and_not_counted_twice(engine):
    p, events = pipeline(engine), sarah().events
    with engine.connect() as other, ThreadPoolExecutor(1) as pool:
        other.begin()
        store_events(other, events[:1], now=datetime.now(UTC))  # stored, not yet committed
        ours = pool.submit(p.ingest, events[:2], score=False)
        waiting_for_the_other(engine)
        other.commit()
        done = ours.result(timeout=30).stored
    assert (done.accepted, done.duplicates, done.fresh) == (1, 1, {events[1].message_id})
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from events")).scalar() == 2


def waiting_for_the_other(engine, timeout: float = 10) -> None:
    """Until a statement waits on the other writer's lock (PostgreSQL says so; on SQLite, a moment)."""
    if engine.dialect.name == "sqlite":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                                 "'Lock' AND datname = current_database()")).scalar()
            connection.rollback()  # a fresh snapshot of the activity each time
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the ingest never waited for the other writer")


def test_what_is_written_below_sqlalchemy_reads_as_what_sqlalchemy_writes(engine):
    arrived = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)  # a whole second: SQLite's text must still say .000000
    p = pipeline(engine, clock=lambda: arrived)
    p.ingest(sarah().events)
    dialect = engine.dialect
    events, users = EventRecord.__table__, TrialUser.__table__

    def as_sent(column, value):
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return process(value) if process else value

    with engine.connect() as connection:
        texts = sa.select(sa.cast(events.c.received_at, sa.Text), sa.cast(events.c.props, sa.Text))
        for received, props in connection.execute(texts.order_by(events.c.id)):
            if dialect.name == "sqlite":
                assert received == as_sent(events.c.received_at, arrived) == "2026-11-09 12:00:00.000000"
            assert json.loads(props) is not None
        row = connection.execute(sa.select(users).where(users.c.user_id == "sarah")).one()
        raw = connection.execute(sa.select(sa.cast(users.c.signup_at, sa.Text), sa.cast(users.c.verdict, sa.Text),
                                           sa.cast(users.c.scored_at, sa.Text))).one()
    assert row.signup_at == sarah().signup and row.verdict["status"] == "qualified"
    if dialect.name == "sqlite":
        assert raw == (as_sent(users.c.signup_at, row.signup_at), as_sent(users.c.verdict, row.verdict),
                       as_sent(users.c.scored_at, row.scored_at))
    stored = {tuple(e.props.items()) for e in sarah().events}
    with p.session() as session:
        assert {tuple(r.props.items()) for r in session.exec(select(EventRecord))} == stored


def test_events_at_the_same_instant_are_scored_in_the_order_they_were_stored(engine):
    trial = Trial().activate(1)
    at = trial.on(2)
    for kind, message_id in (("Snowflake", "z-stored-first"), ("dbt", "a-stored-second")):
        trial.events.append(parse_event({"type": "track", "event": "integration_connected", "userId": "ana",
                                         "timestamp": at.isoformat(), "messageId": message_id,
                                         "properties": {"integration_type": kind}}))
    pipeline(engine).ingest(trial.events, at=trial.on(3))
    [integration] = [s for s in user(engine, "ana").verdict["signals"] if s["name"] == "integration"]
    assert integration["values"] == ["Snowflake", "dbt"]


def qualifying(name: str, day: int = 2, domain: str = "acme.com") -> Trial:
    return Trial(name, email=f"{name}@{domain}").activate(1).invite(day).integrate(day)


def test_a_few_users_events_read_as_a_backfills_many_and_as_everyones(engine, monkeypatch):
    trials = [qualifying(n) for n in ("amy", "ben", "cat")] + [Trial("zed", email="zed@acme.com").activate(1)]
    pipeline(engine).ingest([e for t in trials for e in t.events], score=False)
    read = []
    with engine.connect() as connection:
        everyone = dict(ingest.events_of(connection))
        for few in (1_000, 0):  # a live ingest's few users, then as many as a backfill's (PostgreSQL: a cursor)
            monkeypatch.setattr(ingest, "_FEW_USERS", few)
            read.append(list(ingest.events_of(connection, ["zed", "amy", "cat", "nobody"])))
    assert read[0] == read[1] == [(u, everyone[u]) for u in ("amy", "cat", "zed")]


def test_a_full_rescore_written_in_small_batches_records_each_pql_once_in_order(engine, monkeypatch):
    monkeypatch.setattr(qualify, "_FLUSH_EVERY", 2)
    names = ["amy", "ben", "cat", "dan", "eve"]
    # Five companies: five users of one activating together would be one account's lead (seed 001's 5+ users).
    trials = [qualifying(n, domain=f"{n}.example") for n in names] + [Trial("zed", email="zed@acme.com").activate(1)]
    p = pipeline(engine)
    p.ingest([e for t in trials for e in t.events], score=False)
    report = p.rescore_all(at=START + timedelta(days=3))
    assert (report.users, report.changed, report.upgraded) == (6, 6, [])
    recorded = pqls(engine)
    assert [q.user_id for q in recorded] == names and report.triggered == [q.id for q in recorded]
    assert [report.results[i].user_id for i in report.triggered] == names
    with p.session() as session:
        trail = [(e.action, e.pql_id, e.user_id) for e in audit.trail(session)]
        notices = [(n.key, n.kind, n.pql_id, n.state) for n in session.exec(select(Notice).order_by(Notice.id))]
    assert trail == [("pql_triggered", q.id, q.user_id) for q in recorded]
    assert notices == [(f"alert:{q.id}", "alert", q.id, "pending") for q in recorded]
    assert user(engine, "zed").status != "qualified"

    trials[1].add("demo_requested", trials[1].on(3, 9))  # ben asks for a demo: fast lane
    p.ingest(trials[1].events[-1:], score=False)
    report = p.rescore_all(at=START + timedelta(days=3))
    ben = next(q for q in pqls(engine) if q.user_id == "ben")
    assert (report.changed, report.triggered, report.upgraded) == (1, [], [ben.id])
    assert (ben.tier, ben.version, len(pqls(engine))) == ("fast_lane", 2, 5)
    assert report.results[ben.id].user_id == "ben"
    with p.session() as session:
        upgrades = [e for e in audit.trail(session) if e.action == "pql_upgraded"]
    assert [(e.pql_id, e.detail["old_tier"], e.detail["tier"]) for e in upgrades] == [(ben.id, "medium", "fast_lane")]

    again = p.rescore_all(at=START + timedelta(days=3))  # nothing moved: nothing written
    assert (again.users, again.changed, again.triggered, again.upgraded) == (6, 0, [], [])
    with p.session() as session:
        assert len(audit.trail(session)) == 6


def test_a_pql_another_writer_recorded_a_moment_ago_is_neither_audited_nor_alerted_twice(engine, monkeypatch):
    p, trial = pipeline(engine), qualifying("amy")
    p.ingest(trial.events, at=START + timedelta(days=3))
    [pql] = pqls(engine)
    # As if the lookup ran just before another process inserted the PQL (or upgraded it).
    monkeypatch.setattr(qualify._Writes, "_existing", lambda self, results: {})
    report = p.rescore_all(at=START + timedelta(days=3))
    assert (report.triggered, report.upgraded, report.results) == ([], [], {})
    monkeypatch.setattr(qualify._Writes, "_existing",
                        lambda self, results: {("amy", pql.trial_started_at): (pql.id, "high")})
    trial.add("demo_requested", trial.on(3, 9))
    p.ingest(trial.events[-1:], score=False)
    with p.session() as session, session.begin():
        session.get(Pql, pql.id).tier = "fast_lane"  # the other writer's upgrade
    report = p.rescore_all(at=START + timedelta(days=3))
    assert (report.triggered, report.upgraded) == ([], [])
    with p.session() as session:
        assert [e.action for e in audit.trail(session)] == ["pql_triggered"]
        assert len(session.exec(select(Notice)).all()) == 1
    assert pqls(engine)[0].version == 1


def written(engine) -> dict[str, list]:
    """What a rescore writes, table by table, with JSON as the text stored."""
    found = {}
    with engine.connect() as connection:
        for table in (TrialUser.__table__, Pql.__table__, AuditEntry.__table__, Notice.__table__):
            columns = [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in table.c]
            found[table.name] = connection.execute(sa.select(*columns).order_by(*table.primary_key)).all()
    return found


def test_batches_copied_in_through_a_temporary_table_are_stored_as_batches_inserted_row_by_row(engine, monkeypatch):
    # On PostgreSQL a batch of STAGE_FROM rows (bot/store/bulk.py) or more is copied into a temporary table
    # and inserted from there.
    monkeypatch.setattr(qualify, "_FLUSH_EVERY", 2)  # the temporary tables serve several batches
    trials = [qualifying(n) for n in ("amy", "ben", "cat")] + [Trial("zed", email="zed@acme.com").activate(1)]
    p = pipeline(engine)
    p.ingest([e for t in trials for e in t.events], score=False)
    stored, reports = [], []
    for stage_from in (1, 1_000_000):  # every batch staged, then none
        monkeypatch.setattr(bulk, "STAGE_FROM", stage_from)
        report = p.rescore_all(at=START + timedelta(days=3))
        reports.append((report.users, report.changed, report.triggered, sorted(report.results)))
        stored.append(written(engine))
        with engine.begin() as connection:  # and again from scratch, ids and all
            if engine.dialect.name == "sqlite":
                for table in ("notices", "audit", "pqls", "trial_users"):
                    connection.execute(sa.text(f"DELETE FROM {table}"))
            else:
                connection.execute(sa.text("TRUNCATE notices, audit, pqls, trial_users RESTART IDENTITY CASCADE"))
    assert reports[0] == reports[1] == (4, 4, [1, 2, 3], [1, 2, 3])
    assert stored[0] == stored[1]
    assert [row.user_id for row in stored[0]["pqls"]] == ["amy", "ben", "cat"]
    assert [row.key for row in stored[0]["notices"]] == ["alert:1", "alert:2", "alert:3"]


def test_a_staged_pql_another_writer_recorded_a_moment_ago_is_neither_audited_nor_alerted_twice(engine, monkeypatch):
    monkeypatch.setattr(bulk, "STAGE_FROM", 1)
    p, trial = pipeline(engine), qualifying("amy")
    p.ingest(trial.events, at=START + timedelta(days=3))
    monkeypatch.setattr(qualify._Writes, "_existing", lambda self, results: {})  # as if it raced the insert
    report = p.rescore_all(at=START + timedelta(days=3))
    assert (report.triggered, report.upgraded, report.results) == ([], [], {})
    with p.session() as session:
        assert [e.action for e in audit.trail(session)] == ["pql_triggered"]
        assert len(session.exec(select(Notice)).all()) == 1
    assert len(pqls(engine)) == 1


def test_a_verdict_stored_as_other_but_equal_json_text_is_not_rewritten(engine):
    p = pipeline(engine)
    p.ingest(sarah().events, at=START + timedelta(days=5))
    users = TrialUser.__table__
    with engine.begin() as connection:
        verdict = connection.execute(sa.select(users.c.verdict)).scalar_one()
        spaced = json.dumps(verdict, indent=1)
        value = sa.literal(spaced) if engine.dialect.name == "sqlite" else sa.cast(sa.literal(spaced), sa.JSON)
        connection.execute(sa.update(users).values(verdict=value))
    report = p.rescore_all(at=START + timedelta(days=5))
    assert (report.users, report.changed) == (1, 0)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.cast(users.c.verdict, sa.Text))).scalar_one() == spaced


def test_a_new_lead_wakes_whoever_delivers_to_slack_and_replays_and_plain_activity_do_not(engine):
    p, woken = pipeline(engine), []
    p.on_new_work = lambda: woken.append(True)
    events = sarah().events
    p.ingest(events[:1], at=events[0].at)  # the signup alone: nothing is owed to Slack
    assert woken == []
    p.ingest(events, at=events[-1].at)
    p.ingest(events, at=events[-1].at)
    assert woken == [True]


def test_a_conversion_that_stops_a_lead_wakes_whoever_delivers_to_slack(engine):
    p, woken = pipeline(engine), []
    events = sarah().events
    p.ingest(events, at=events[-1].at)
    p.on_new_work = lambda: woken.append(True)
    converted = sarah().add("trial_converted", events[-1].at + timedelta(hours=1)).events[-1]
    p.ingest([converted], at=converted.at)
    assert woken == [True]
