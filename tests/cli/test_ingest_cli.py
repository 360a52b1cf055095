"""`pqlbot ingest`, `pqlbot rescore` and `pqlbot db` as an operator uses them, on each store backend."""

from __future__ import annotations

import gzip
import io
import json
import re
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from freezegun import freeze_time

from bot.cli import ingest, main
from bot.demo import sample
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.store import alembic_config, make_engine
from scoring import Status
from tests.scoring.builders import Trial, sarah

AT = "2026-11-09T18:00:00-05:00"  # Sarah (signed up Mon 2 Nov) qualified on Fri 6: medium, 6 points


@pytest.fixture(autouse=True)
def settings_of_our_own(tmp_path, monkeypatch):
    """The team's timezone and the default rules, whatever the environment or a local .env says."""
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("PQL_TIMEZONE", "America/New_York")
    for name in ("PQL_RULES_FILE", "RESCORE_EVERY_HOURS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db(store_url):
    """Read what the commands wrote: db("SELECT ...") -> rows."""
    engines = []

    def query(sql: str, **params) -> list[tuple]:
        if not engines:
            engines.append(make_engine(store_url))
        with engines[0].connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]

    yield query
    for engine in engines:
        engine.dispose()


def lines_of(trial: Trial) -> list[str]:
    return [json.dumps(event.to_json()) for event in trial.events]


def summary(out: str) -> dict[str, int]:
    """The summary's `name: number` lines as a dict."""
    return {name: int(value) for name, value in re.findall(r"^(\w[\w ]*): (\d+)$", out, re.MULTILINE)}


def sarah_for_ana(tmp_path, monkeypatch) -> Path:
    """Sarah's trial as a file, and Ana the one rep on the roster (PQL_REPS) for routing to fail on."""
    monkeypatch.setenv("PQL_REPS", "U0ANA:Ana Ruiz")
    path = tmp_path / "sarah.jsonl"
    path.write_text("\n".join(lines_of(sarah())) + "\n")
    return path


def stored_unscored(path: Path, capsys) -> None:
    assert main(["ingest", str(path), "--no-score"]) == 0
    capsys.readouterr()


@pytest.fixture
def sarah_file(tmp_path):
    """Sarah's trial (5 events), her first event again, and two bad lines (3 and 6) among them."""
    good = lines_of(sarah())
    lines = [good[0], good[1], "not json at all", good[2], good[3],
             '{"type": "track", "event": "invite_sent", "messageId": "x1", "timestamp": "2026-11-06T15:00:00Z"}',
             good[4], good[0]]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    return path, good


def test_ingesting_a_file_stores_the_good_events_and_names_each_bad_line(sarah_file, db, capsys):
    path, good = sarah_file
    assert main(["ingest", str(path), "--at", AT]) == 1
    out = capsys.readouterr().out
    assert summary(out) == {"accepted": 5, "duplicates": 1, "rejected": 2, "PQLs triggered": 1, "PQLs upgraded": 0}
    assert "  line 3: not valid JSON" in out
    assert "  line 6: userId: is required" in out
    stored = {row[0] for row in db("SELECT message_id FROM events")}
    assert stored == {json.loads(line)["messageId"] for line in good}
    assert db("SELECT user_id, tier, score FROM pqls") == [("sarah", "medium", 6)]


def test_replaying_the_same_file_finds_only_duplicates_and_adds_no_pql(sarah_file, db, capsys):
    path, good = sarah_file
    main(["ingest", str(path), "--at", AT])
    capsys.readouterr()
    assert main(["ingest", str(path), "--at", AT]) == 1  # the bad lines are still bad
    counts = summary(capsys.readouterr().out)
    assert (counts["accepted"], counts["duplicates"], counts["rejected"]) == (0, len(good) + 1, 2)
    assert (counts["PQLs triggered"], counts["PQLs upgraded"]) == (0, 0)
    assert db("SELECT count(*) FROM events") == [(len(good),)]
    assert db("SELECT count(*) FROM pqls") == [(1,)]


def test_a_clean_file_exits_zero(tmp_path, db, capsys):
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(lines_of(sarah())) + "\n")
    assert main(["ingest", str(path), "--at", AT]) == 0
    assert summary(capsys.readouterr().out)["rejected"] == 0


def test_the_bundled_sample_makes_sarah_a_pql_and_not_tom(db, capsys):
    code = main(["ingest", str(sample.SAMPLE_PATH), "--at", sample.SAMPLE_AS_OF.isoformat()])
    assert code == 0
    counts = summary(capsys.readouterr().out)
    qualified = [user for user, (status, _) in sample.expected_outcomes().items() if status is Status.QUALIFIED]
    assert counts["accepted"] == len(sample.SAMPLE_PATH.read_text().splitlines())
    assert counts["PQLs triggered"] >= len(qualified)
    pqls = dict(db("SELECT user_id, tier FROM pqls"))
    assert pqls["sarah"] == "medium"
    assert "tom" not in pqls
    assert set(qualified) <= set(pqls)
    assert db("SELECT status FROM trial_users WHERE user_id = 'tom'") == [("excluded",)]


def test_events_can_come_from_standard_input(monkeypatch, db, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines_of(sarah())) + "\n"))
    assert main(["ingest", "-", "--at", AT]) == 0
    assert summary(capsys.readouterr().out)["accepted"] == 5
    assert db("SELECT user_id FROM pqls") == [("sarah",)]


def test_no_score_only_stores_and_rescore_then_scores_everyone(tmp_path, db, capsys):
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(lines_of(sarah()) + lines_of(Trial("bo", email="bo@acme.com"))) + "\n")
    assert main(["ingest", str(path), "--no-score"]) == 0
    out = capsys.readouterr().out
    assert summary(out)["accepted"] == 6 and "PQLs triggered" not in out and "pqlbot rescore" in out
    assert db("SELECT count(*) FROM trial_users") == [(0,)]

    assert main(["rescore", "--at", AT]) == 0
    assert summary(capsys.readouterr().out) == {
        "users scored": 2, "verdicts changed": 2, "PQLs triggered": 1, "PQLs upgraded": 0}
    assert db("SELECT user_id FROM pqls") == [("sarah",)]

    assert main(["rescore", "--at", AT]) == 0  # the same moment again: nothing moved
    assert summary(capsys.readouterr().out) == {
        "users scored": 2, "verdicts changed": 0, "PQLs triggered": 0, "PQLs upgraded": 0}


def test_rescore_gives_the_new_leads_to_the_roster_as_it_prints_them_and_owes_no_routing(tmp_path, db, capsys,
                                                                                         monkeypatch):
    path = sarah_for_ana(tmp_path, monkeypatch)
    assert main(["ingest", str(path), "--no-score"]) == 0
    capsys.readouterr()

    assert main(["rescore", "--at", "2026-11-09T11:00:00-05:00"]) == 0  # Monday morning: business is open
    assert summary(capsys.readouterr().out) == {
        "users scored": 1, "verdicts changed": 1, "PQLs triggered": 1, "PQLs upgraded": 0}
    assert db("SELECT user_id, rep_id, state FROM pqls") == [("sarah", "U0ANA", "assigned")]
    assert db("SELECT target FROM notices WHERE kind = 'dm'") == [("U0ANA",)]
    assert db("SELECT count(*) FROM sweep_runs WHERE name LIKE 'routing-owed:%'") == [(0,)]


def test_rescore_if_due_runs_only_when_the_last_sweep_is_old_enough(monkeypatch, db, capsys):
    monkeypatch.setenv("RESCORE_EVERY_HOURS", "24")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines_of(sarah())) + "\n"))
    main(["ingest", "-", "--no-score"])
    assert main(["rescore", "--if-due", "--at", "2026-11-09T12:00:00Z"]) == 0
    assert summary(capsys.readouterr().out)["users scored"] == 1
    assert main(["rescore", "--if-due", "--at", "2026-11-10T11:59:00Z"]) == 0
    assert capsys.readouterr().out.startswith("not due")
    assert main(["rescore", "--if-due", "--at", "2026-11-10T12:00:00Z"]) == 0
    assert summary(capsys.readouterr().out)["users scored"] == 1


def test_at_most_twenty_rejected_lines_are_listed_and_the_rest_counted(tmp_path, store_url, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("nope\n" * 25)
    assert main(["ingest", str(path)]) == 1
    out = capsys.readouterr().out
    assert summary(out)["rejected"] == 25
    assert re.findall(r"^  line (\d+): not valid JSON$", out, re.MULTILINE) == [str(n) for n in range(1, 21)]
    assert "  ... and 5 more" in out


def test_a_backfill_judges_each_user_on_their_whole_history_however_it_is_chunked(db, monkeypatch, capsys):
    # Chunks of 50 split users' histories; judged chunk by chunk, users who end up do-not-touch
    # (a ticket, an opt-out, a checkout) would be made PQLs on the first half of their story.
    monkeypatch.setattr(ingest, "CHUNK", 50)
    assert main(["ingest", str(sample.SAMPLE_PATH), "--at", sample.SAMPLE_AS_OF.isoformat()]) == 0
    qualified = {user for user, (status, _) in sample.expected_outcomes().items() if status is Status.QUALIFIED}
    pqls = {user for (user,) in db("SELECT user_id FROM pqls")}
    assert qualified <= pqls
    assert not pqls & {"hannah", "victor", "leo"}
    verdicts = dict(db("SELECT user_id, status FROM trial_users"))
    assert {user for user, status in verdicts.items() if status == "qualified"} == pqls


@pytest.mark.parametrize("chunk", [50_000, 2])
def test_a_visitor_browsing_before_signing_up_is_joined_to_the_user_and_the_file_is_scored(
        tmp_path, db, monkeypatch, capsys, chunk):
    # Sarah looks at pricing as an anonymous visitor on day 3 (her only activity that day), then her trial's
    # events arrive under her userId, the signup carrying the same anonymousId. With the visitor's day joined
    # to hers she was active on three days: multi-day usage (2 more points) makes her 8, high. Chunks of 2
    # link the visitor in a later transaction than the one that stored the page view.
    monkeypatch.setattr(ingest, "CHUNK", chunk)
    page = {"type": "page", "anonymousId": "a-77f1", "messageId": "sarah-visit", "name": "Pricing",
            "timestamp": "2026-11-04T16:00:00Z", "properties": {"path": "/pricing"}}
    trial = [json.loads(line) for line in lines_of(sarah())]
    trial[0]["anonymousId"] = "a-77f1"
    path = tmp_path / "visitor.jsonl"
    path.write_text("\n".join(json.dumps(call) for call in [page, *trial]) + "\n")
    assert main(["ingest", str(path), "--at", AT]) == 0
    assert summary(capsys.readouterr().out)["accepted"] == 6
    assert db("SELECT user_id, tier, score FROM pqls") == [("sarah", "high", 8)]
    assert db("SELECT DISTINCT user_id FROM events") == [("sarah",)]


def test_events_go_to_the_store_in_chunks_of_fifty_thousand(tmp_path, store_url, monkeypatch, capsys):
    path = tmp_path / "many.jsonl"
    path.write_text(sessions(100_001))
    chunks = []
    original = Pipeline.ingest

    def recording(self, events, **kwargs):
        chunks.append(len(events))
        return original(self, events, **kwargs)

    monkeypatch.setattr(Pipeline, "ingest", recording)
    assert main(["ingest", str(path), "--no-score"]) == 0
    assert chunks == [ingest.CHUNK, ingest.CHUNK, 1] and ingest.CHUNK == 50_000
    assert summary(capsys.readouterr().out)["accepted"] == 100_001


def test_an_unreadable_file_is_exit_code_2_and_touches_no_store(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/never.db"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["ingest", str(tmp_path / "missing.jsonl")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path)]) == 2
    assert "Is a directory" in capsys.readouterr().err
    assert not (tmp_path / "never.db").exists()


def sessions(count: int) -> str:
    return "".join(json.dumps({"type": "track", "event": "session_start", "userId": f"u{n % 300}",
                               "messageId": f"s-{n}", "timestamp": "2026-11-03T10:00:00Z"}) + "\n"
                   for n in range(count))


def test_a_file_that_is_not_utf8_stops_with_exit_code_2_keeping_the_chunks_stored(tmp_path, db, monkeypatch, capsys):
    monkeypatch.setattr(ingest, "CHUNK", 5000)  # a tenth of the real size: the same story, quicker told
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(sessions(5300).encode() + b'{"caf\xe9": 1}\n')
    assert main(["ingest", str(path), "--no-score"]) == 2
    out, err = capsys.readouterr()
    assert "pqlbot ingest: not UTF-8 text" in err and "running it again skips them" in err
    assert summary(out)["accepted"] == 5000  # the first chunk; the rest of the file is for a fixed copy
    assert db("SELECT count(*) FROM events") == [(5000,)]


def test_no_progress_is_drawn_when_output_is_not_a_terminal(sarah_file, store_url, capsys):
    main(["ingest", str(sarah_file[0]), "--at", AT])
    assert capsys.readouterr().err == ""


def test_a_progress_bar_is_drawn_on_stderr_when_both_outputs_are_terminals(sarah_file, store_url, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    main(["ingest", str(sarah_file[0]), "--at", AT])
    out, err = capsys.readouterr()
    assert "ingesting" in err and "ingesting" not in out
    assert summary(out)["accepted"] == 5


def test_standard_input_on_a_terminal_gets_a_spinner_with_counts(store_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines_of(sarah())) + "\n"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    main(["ingest", "-", "--at", AT])
    assert "5 lines 5 new · 0 duplicate · 0 rejected" in capsys.readouterr().err


def test_db_upgrade_is_idempotent_and_db_current_names_the_head(store_url, capsys):
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    assert main(["db", "upgrade"]) == 0
    first = capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    second = capsys.readouterr().out
    assert f"revision {head} (head)" in first and f"already at revision {head} (head)" in second
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"revision {head} (head)")


def test_db_current_does_not_create_a_missing_sqlite_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/later.db")
    assert main(["db", "current"]) == 0
    assert "no database yet" in capsys.readouterr().out
    assert not (tmp_path / "later.db").exists()


def test_a_store_that_cannot_be_opened_is_exit_code_2_without_its_password(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://pqlbot:s3cret@127.0.0.1:1/pqlbot")
    path = tmp_path / "one.jsonl"
    path.write_text(lines_of(sarah())[0] + "\n")
    for argv in (["ingest", str(path)], ["rescore"], ["db", "upgrade"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cannot open the store postgresql+psycopg://pqlbot:***@127.0.0.1:1/pqlbot" in err
        assert "s3cret" not in err


def test_a_lead_ingested_from_a_file_is_routed_to_the_roster_like_any_other(tmp_path, db, monkeypatch, capsys):
    path = sarah_for_ana(tmp_path, monkeypatch)
    monday_morning = "2026-11-09T10:00:00-05:00"  # business hours: assigned at once
    assert main(["ingest", str(path), "--at", monday_morning]) == 0
    assert db("SELECT user_id, rep_id, state FROM pqls") == [("sarah", "U0ANA", "assigned")]
    assert db("SELECT reason FROM assignments") == [("round_robin",)]


def test_a_file_parsed_by_a_worker_is_stored_and_judged_as_a_full_rescore_judges_it(db, monkeypatch, capsys):
    # The sample parsed apart (bot/cli/parsing.py) in blocks of 7 lines, stored in chunks of 50: every event once,
    # the expected PQLs, and a full rescore at the same moment finds no verdict to change.
    from bot.cli import parsing

    monkeypatch.setattr(parsing, "APART_FROM", 0)
    monkeypatch.setattr(parsing, "BLOCK", 7)
    monkeypatch.setattr(ingest, "workers_for", lambda: 2)
    monkeypatch.setattr(ingest, "CHUNK", 50)
    at = sample.SAMPLE_AS_OF.isoformat()
    assert main(["ingest", str(sample.SAMPLE_PATH), "--at", at]) == 0
    counts = summary(capsys.readouterr().out)
    lines = len(sample.SAMPLE_PATH.read_text().splitlines())
    assert counts["accepted"] == lines == db("SELECT count(*) FROM events")[0][0]
    qualified = {user for user, (status, _) in sample.expected_outcomes().items() if status is Status.QUALIFIED}
    assert qualified <= {user for (user,) in db("SELECT user_id FROM pqls")}
    before = db("SELECT user_id, status, score FROM trial_users ORDER BY user_id")
    assert main(["rescore", "--at", at]) == 0
    assert summary(capsys.readouterr().out)["verdicts changed"] == 0
    assert db("SELECT user_id, status, score FROM trial_users ORDER BY user_id") == before


def test_a_rescore_whose_routing_fails_says_in_one_line_that_its_scoring_is_saved_and_the_queue_sweep_routes(
        tmp_path, db, capsys, monkeypatch, store_url):
    if not store_url.startswith("sqlite"):
        pytest.skip("PostgreSQL routes in the rescore's own transaction: a failure there saves nothing")
    stored_unscored(sarah_for_ana(tmp_path, monkeypatch), capsys)
    routes = Router.route_all

    def locked(*args, **kwargs):
        raise sa.exc.OperationalError("UPDATE pqls SET ...", {}, sqlite3.OperationalError("database is locked"))

    monday = datetime(2026, 11, 9, 11, 0, tzinfo=ZoneInfo("America/New_York"))  # business is open
    monkeypatch.setattr(Router, "route_all", locked)
    with freeze_time(monday):
        assert main(["rescore", "--at", monday.isoformat()]) == 1
    out, err = capsys.readouterr()
    assert summary(out) == {"users scored": 1, "verdicts changed": 1, "PQLs triggered": 1, "PQLs upgraded": 0}
    assert err == ("pqlbot rescore: scoring saved, but routing failed (database is locked): 1 new lead left for the "
                   "queue sweep to route (`pqlbot serve` runs it every minute, or run `pqlbot tick`)\n")
    assert db("SELECT user_id, rep_id FROM pqls") == [("sarah", None)]

    monkeypatch.setattr(Router, "route_all", routes)
    later = monday + timedelta(minutes=2)
    with freeze_time(later):
        assert main(["tick", "--at", later.isoformat()]) == 0
    assert db("SELECT user_id, rep_id, state FROM pqls") == [("sarah", "U0ANA", "assigned")]


def test_an_ingest_whose_routing_fails_says_so_too_and_exits_non_zero(tmp_path, db, capsys, monkeypatch, store_url):
    if not store_url.startswith("sqlite"):
        pytest.skip("PostgreSQL routes in the rescore's own transaction: a failure there saves nothing")
    path = sarah_for_ana(tmp_path, monkeypatch)
    monkeypatch.setattr(Router, "route_all", lambda *args, **kwargs: 1 / 0)
    assert main(["ingest", str(path), "--at", "2026-11-09T11:00:00-05:00"]) == 1
    out, err = capsys.readouterr()
    assert summary(out)["PQLs triggered"] == 1
    assert err.startswith("pqlbot ingest: scoring saved, but routing failed (division by zero): 1 new lead left ")
    assert err.count("\n") == 1


def test_on_postgresql_a_rescore_whose_routing_fails_saves_nothing_and_says_so_in_one_line(
        tmp_path, db, capsys, monkeypatch, store_url):
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite routes after the rescore's transaction: its scoring is saved (the test above)")
    stored_unscored(sarah_for_ana(tmp_path, monkeypatch), capsys)
    routes = Router.route_all

    def gone(*args, **kwargs):
        lost = Exception("server closed the connection\nunexpectedly")
        raise sa.exc.OperationalError("UPDATE pqls SET ...", {}, lost)

    monday = datetime(2026, 11, 9, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    monkeypatch.setattr(Router, "route_all", gone)
    with freeze_time(monday):
        assert main(["rescore", "--at", monday.isoformat()]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no counts of work that was undone
    assert err == ("pqlbot rescore: nothing saved: routing its 1 new lead failed (server closed the connection), and "
                   "routing is part of scoring's transaction here; the store is as it was: run it again once that "
                   "is fixed\n")
    assert db("SELECT count(*) FROM pqls") == [(0,)]
    assert db("SELECT count(*) FROM trial_users WHERE scored_at IS NOT NULL") == [(0,)]

    monkeypatch.setattr(Router, "route_all", routes)
    with freeze_time(monday):
        assert main(["rescore", "--at", monday.isoformat()]) == 0
    assert db("SELECT user_id, rep_id, state FROM pqls") == [("sarah", "U0ANA", "assigned")]


def test_on_postgresql_an_ingest_whose_routing_fails_keeps_the_events_and_undoes_only_their_scoring(
        tmp_path, db, capsys, monkeypatch, store_url):
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite routes after the rescore's transaction: its scoring is saved (the test above)")
    path = sarah_for_ana(tmp_path, monkeypatch)
    monkeypatch.setattr(Router, "route_all", lambda *args, **kwargs: 1 / 0)
    assert main(["ingest", str(path), "--at", "2026-11-09T11:00:00-05:00"]) == 1
    out, err = capsys.readouterr()
    assert summary(out)["accepted"] == len(lines_of(sarah()))
    assert summary(out)["PQLs triggered"] == 0
    assert err == ("pqlbot ingest: the events are stored, but their scoring was undone: routing its 1 new lead "
                   "failed (division by zero), and routing is part of scoring's transaction here; run `pqlbot "
                   "rescore` once that is fixed\n")
    assert db("SELECT count(*) FROM events") == [(len(lines_of(sarah())),)]
    assert db("SELECT count(*) FROM pqls") == [(0,)]



@pytest.mark.parametrize("workers", [0, 2])
def test_a_gzipped_export_is_ingested_as_the_file_it_holds_with_or_without_the_parsing_workers(
        sarah_file, db, capsys, monkeypatch, workers):
    # Segment's and RudderStack's storage destinations write .gz JSON lines: it was a traceback (not UTF-8).
    from bot.cli import parsing

    if workers:
        monkeypatch.setattr(parsing, "APART_FROM", 0)
        monkeypatch.setattr(parsing, "BLOCK", 2)
        monkeypatch.setattr(ingest, "workers_for", lambda: workers)
    path, good = sarah_file
    packed = path.with_name("events.jsonl.gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert main(["ingest", str(packed), "--at", AT]) == 1
    out = capsys.readouterr().out
    assert summary(out) == {"accepted": 5, "duplicates": 1, "rejected": 2, "PQLs triggered": 1, "PQLs upgraded": 0}
    assert "  line 3: not valid JSON" in out
    assert db("SELECT user_id, tier, score FROM pqls") == [("sarah", "medium", 6)]
    cut = path.with_name("cut.jsonl.gz")
    cut.write_bytes(gzip.compress(path.read_bytes())[:-12])
    assert main(["ingest", str(cut), "--at", AT]) == 2
    assert "pqlbot ingest: it ends in the middle (a .gz file cut off?)" in capsys.readouterr().err
