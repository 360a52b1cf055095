"""A full rescore of a big store split between processes: the same verdicts, PQLs, audit and alerts as one
process would record, in the same order; and a process that fails leaves its users to the caller."""

import logging
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.services import audit
from bot.services import rescore as qualify
from bot.services.pipeline import Pipeline
from bot.store import open_store
from bot.store.models import DispositionRecord, Notice, Pql, TrialUser
from scoring import PriorDisposition, load_rules, score_users
from tests.scoring.builders import NY, Trial
from tests.services.test_qualify import START, qualifying

AT = START + timedelta(days=3)
NAMES = [f"u{i:02}" for i in range(12)]


def trials() -> list[Trial]:
    """Every third user qualifies, every third is activated only, the rest never activate; u04 was
    dispositioned on an earlier lead and must stay excluded. Each at a company of their own (users of one
    activating together would be one account's lead)."""
    made = []
    for index, name in enumerate(NAMES):
        if index % 3 == 0:
            made.append(qualifying(name, domain=f"{name}.example"))
        elif index % 3 == 1:
            made.append(qualifying(name, domain=f"{name}.example") if name == "u04" else
                        Trial(name, email=f"{name}@{name}.example").activate(1))
        else:
            made.append(Trial(name, email=f"{name}@{name}.example").invite(2))
    return made


U04 = Trial("u04", email="u04@u04.example")  # for the times of u04's earlier lead


def stored(p: Pipeline, events) -> None:
    p.ingest(events, score=False)
    p.rescore_users(["u04"], at=U04.on(1, 16))  # u04 is known (a lead points at its user) but not yet a lead
    with p.session() as session, session.begin():  # u04's earlier lead, closed as no response
        u04 = U04
        pql = Pql(user_id="u04", trial_started_at=u04.signup, state="dispositioned", tier="medium", score=4,
                  qualified_at=u04.on(2), created_at=u04.on(2), updated_at=u04.on(2))
        session.add(pql)
        session.flush()
        session.add(DispositionRecord(pql_id=pql.id, user_id="u04", disposition="no_response", at=u04.on(2, 12)))


def expected(events) -> dict:
    """What the scoring library alone says, user by user."""
    prior = {"u04": [PriorDisposition("no_response", U04.on(2, 12))]}
    return {r.user_id: r for r in score_users(events, load_rules(None), AT, tz=NY, dispositions=prior)}


def recorded(p: Pipeline) -> tuple[dict, list, list, list]:
    with p.session() as session:
        verdicts = {u.user_id: u.verdict for u in session.exec(select(TrialUser))}
        leads = [q for q in session.exec(select(Pql).order_by(Pql.id)) if q.state != "dispositioned"]
        trail = [(e.action, e.pql_id, e.user_id) for e in audit.trail(session)]
        notices = [(n.key, n.pql_id) for n in session.exec(select(Notice).order_by(Notice.id))]
    return verdicts, leads, trail, notices


@pytest.fixture
def split_everything(monkeypatch):
    """Any store counts as big, so three processes share even these twelve users, evenly."""
    monkeypatch.setattr(qualify, "_SPLIT_FROM", 0)
    monkeypatch.setattr(qualify, "_OWN_WEIGHT", 1.0)
    monkeypatch.setattr(qualify, "_PIECES", 1)


def test_a_rescore_split_three_ways_records_what_the_scorer_says_once_in_user_order(engine, split_everything,
                                                                                        caplog):
    made = trials()
    events = [e for t in made for e in t.events]
    p = Pipeline(engine, tz=NY, processes=3)
    stored(p, events)
    with engine.connect() as connection:
        spans = qualify._split(connection, 3)
    assert len(spans) == 3 and spans[0][0] is None and spans[-1][1] is None  # three slices, in user order

    with caplog.at_level(logging.WARNING, logger="bot.services.rescore"):
        report = p.rescore_all(at=AT)
    assert not caplog.records  # no slice fell back to this process

    want = expected(events)
    verdicts, leads, trail, notices = recorded(p)
    assert verdicts == {user_id: result.to_json() for user_id, result in want.items()}
    qualified = sorted(u for u, r in want.items() if r.status == "qualified")
    assert qualified == ["u00", "u03", "u06", "u09"]  # u04 is kept out by its disposition
    assert [q.user_id for q in leads] == qualified and report.triggered == [q.id for q in leads]
    assert trail == [("pql_triggered", q.id, q.user_id) for q in leads]
    assert notices == [(f"alert:{q.id}", q.id) for q in leads]
    assert (report.users, report.changed, report.processes) == (12, 12, 3)

    again = p.rescore_all(at=AT)  # every slice compares with what is stored: nothing moved
    assert (again.users, again.changed, again.triggered, again.upgraded) == (12, 0, [], [])

    made[-1].activate(1).integrate(2)  # the last slice's user activates and connects: now they qualify
    p.ingest(made[-1].events[-2:], score=False)
    moved = p.rescore_all(at=AT)
    [u11] = [q for q in recorded(p)[1] if q.user_id == "u11"]
    assert (moved.changed, moved.triggered) == (1, [u11.id])


def test_the_other_process_judges_its_share_in_pieces_and_the_rescore_records_the_same(engine, monkeypatch):
    # This process takes less than its half (it also writes, rolls up and routes); the other judges the rest in four
    # pieces, one after another, each handed back as it is done: the same verdicts and leads, in user order.
    monkeypatch.setattr(qualify, "_SPLIT_FROM", 0)
    made = trials()
    events = [e for t in made for e in t.events]
    p = Pipeline(engine, tz=NY, processes=2)
    stored(p, events)
    with engine.connect() as connection:
        spans = qualify._split(connection, 2)
    assert len(spans) == 1 + qualify._PIECES and spans[0][0] is None and spans[-1][1] is None
    report = p.rescore_all(at=AT)
    assert report.processes == 2  # this one and the one that judged the pieces
    want = expected(events)
    verdicts, leads, trail, _ = recorded(p)
    assert verdicts == {user_id: result.to_json() for user_id, result in want.items()}
    assert [q.user_id for q in leads] == ["u00", "u03", "u06", "u09"] == [u for _, _, u in trail]


def fails(*args, **kwargs):
    raise RuntimeError("this rescore process could not read the store")


def test_a_rescore_process_that_fails_leaves_its_users_to_the_caller_and_says_so(engine, split_everything,
                                                                                   monkeypatch, caplog):
    events = [e for t in trials() for e in t.events]
    p = Pipeline(engine, tz=NY, processes=2)
    stored(p, events)
    monkeypatch.setattr(qualify, "judge_span", fails)  # what the spawned process is told to run

    with caplog.at_level(logging.WARNING, logger="bot.services.rescore"):
        report = p.rescore_all(at=AT)

    assert [r.getMessage() for r in caplog.records] == ["a rescore process failed; judging its users here instead"]
    want = expected(events)
    verdicts, leads, _, _ = recorded(p)
    assert verdicts == {user_id: result.to_json() for user_id, result in want.items()}
    assert [q.user_id for q in leads] == ["u00", "u03", "u06", "u09"] and report.users == 12


def test_a_small_store_or_one_in_memory_is_judged_by_this_process_alone(engine, monkeypatch):
    p = Pipeline(engine, tz=NY, processes=4)
    stored(p, [e for t in trials() for e in t.events])
    with engine.connect() as connection:
        assert qualify._split(connection, 4) == [(None, None)]  # 12 events: far under _SPLIT_FROM
    assert p.rescore_all(at=AT).processes == 1  # 4 allowed, 1 judged
    monkeypatch.setattr(qualify, "_SPLIT_FROM", 0)
    memory = Pipeline(open_store("sqlite://"), tz=NY, processes=4)
    stored(memory, [e for t in trials() for e in t.events])
    with memory.engine.connect() as connection:
        assert qualify._split(connection, 4) == [(None, None)]  # another process could not read it
    assert memory.rescore_all(at=AT).users == 12


def test_a_big_backfills_users_split_three_ways_record_what_the_scorer_says_and_nobody_else_is_judged(
        engine, monkeypatch, caplog):
    # `pqlbot ingest FILE` stores a file unscored, then judges the users it touched: a big file's users are
    # shared between processes as a full rescore's are. u10 and u11 are in the store but not in this backfill.
    monkeypatch.setattr(qualify, "_SPLIT_USERS_FROM", 0)
    monkeypatch.setattr(qualify, "_OWN_WEIGHT", 1.0)
    monkeypatch.setattr(qualify, "_PIECES", 1)
    made = trials()
    events = [e for t in made for e in t.events]
    p = Pipeline(engine, tz=NY, processes=3)
    stored(p, events)
    backfill = set(NAMES[:10])
    with engine.connect() as connection:
        spans = qualify._split_scope(connection, backfill, 3)
    assert len(spans) == 3 and spans[0][0] is None and spans[-1][1] is None  # three slices, in user order

    with caplog.at_level(logging.WARNING, logger="bot.services.rescore"):
        report = p.rescore_users(backfill, at=AT)
    assert not caplog.records  # no slice fell back to this process

    want = {user: result for user, result in expected(events).items() if user in backfill}
    verdicts, leads, trail, notices = recorded(p)
    assert {u: v for u, v in verdicts.items() if u != "u04"} == {
        user: result.to_json() for user, result in want.items() if user != "u04"}
    assert "u10" not in verdicts and "u11" not in verdicts  # outside the backfill: not judged
    assert verdicts["u04"] == want["u04"].to_json()
    assert [q.user_id for q in leads] == ["u00", "u03", "u06", "u09"]
    assert report.triggered == [q.id for q in leads] and report.users == 10
    assert trail == [("pql_triggered", q.id, q.user_id) for q in leads]
    assert notices == [(f"alert:{q.id}", q.id) for q in leads]


def test_a_rescore_holds_sqlites_page_cache_small_and_gives_the_store_its_own_back(engine, split_everything):
    # A full rescore reads every event once: the store's 256 MiB cache would hold pages never read again, in each
    # process. Ingestion, on the same pooled connection afterwards, needs it back for its hot indexes.
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page cache")
    p = Pipeline(engine, tz=NY, processes=1)
    stored(p, [e for t in trials() for e in t.events])
    cache = "PRAGMA cache_size"
    with engine.connect() as connection:
        store_cache = connection.exec_driver_sql(cache).scalar()
        with qualify._page_cache(connection, qualify._WRITER_CACHE_KIB):
            assert connection.exec_driver_sql(cache).scalar() == -qualify._WRITER_CACHE_KIB
        assert connection.exec_driver_sql(cache).scalar() == store_cache == -262144
    assert p.rescore_all(at=AT).users == 12
    with engine.connect() as connection:
        assert connection.exec_driver_sql(cache).scalar() == store_cache
