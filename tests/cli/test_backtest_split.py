"""`pqlbot backtest FILE` shared out between processes (bot/cli/split.py) reports exactly what one process reports:
the same JSON bytes and the same table, with every option RevOps reads it through, the same invalid lines in the same
order, the same exit status; and a process that dies makes the command fail, saying so."""

from __future__ import annotations

import json
import os
import random
import signal
from datetime import timedelta

import pytest

from bot.cli import main, split
from scoring import DEFAULT_RULES
from tests.cli.test_score_split import START, _acting, _History, _history, _not_utf8


def _backtest_history(seed: int) -> list[str]:
    """A history to backtest: the score tests' trials (anonymous visitors identified later, aliased ids,
    cycles asked for, a group's calls, numeric and escaped ids, invalid and blank lines) with what a backtest reads
    besides: conversions and reps' touches, some sent under an id that is not the user's final one, and calls named
    by a tracking plan that only some rules files know."""
    h = _History(seed)
    h.n, rng = 10_000, h.rng  # message ids of their own, after the score tests' calls'
    for i in range(90):
        user = f"u{i:03d}"
        if rng.random() < 0.3:
            h.track(user, "trial_converted", START + timedelta(days=rng.randrange(5, 14), hours=rng.randrange(24)))
        if rng.random() < 0.3:
            h.track(user, "sales_touch", START + timedelta(days=rng.randrange(3, 9), hours=rng.randrange(24)))
        if rng.random() < 0.3:  # named by the tracking plan: the limit trigger, for rules that know the name
            h.track(user, "Limit Reached", START + timedelta(days=1, hours=rng.randrange(24)))
            h.track(user, "upgrade_clicked", START + timedelta(days=1, hours=rng.randrange(24, 30)))
    # Asks for a demo, converted and touched under ids that are not the user's final one, or that the cheap look at
    # a line misreads: an anonymous id, an aliased id, numeric ids, an escaped quote.
    for user in (42, 2**53 + 1, "old2", 'q"uote'):
        h.track(user, "demo_requested", START + timedelta(days=1, hours=3))
    h.track(None, "demo_requested", START + timedelta(days=2), "visitor-1")
    h.track(None, "trial_converted", START + timedelta(days=6), "visitor-1")
    h.track(None, "sales_touch", START + timedelta(days=1), "visitor-1")
    h.track("old2", "trial_converted", START + timedelta(days=5))
    h.track("old3", "sales_reply", START + timedelta(days=2), sentiment="positive")
    h.track(42, "trial_converted", START + timedelta(days=4))
    h.track(2**53 + 1, "sales_touch", START + timedelta(days=1))
    h.track('q"uote', "trial_converted", START + timedelta(days=7))
    # An account whose size only group calls say, sent by others (an anonymous visitor; two at the same moment, the
    # first in the file standing; one after everything else, the history's latest): its users are in the ICP or not
    # by it.
    for i in range(6):
        user, signup = f"s{i}", START + timedelta(hours=i)
        h.track(user, "signup_complete", signup, email=f"s{i}@stark.com", company_name="Stark", title="CTO")
        h.call("group", signup + timedelta(minutes=10), user=user, groupId="grp-s", traits={})
        for hours in (1, 26, 50):  # never activated: "ICP signup not activated" fires if the account is in the ICP
            h.track(user, "session_start", signup + timedelta(hours=hours))
    h.call("group", START - timedelta(days=1), anon="vis-s", groupId="grp-s", traits={"company_size": 20000})
    h.call("group", START + timedelta(days=2), user="u010", groupId="grp-s", traits={"employees": 600})
    h.call("group", START + timedelta(days=2), user="u011", groupId="grp-s", traits={"employees": 3})
    h.call("group", START + timedelta(days=40), user="u012", groupId="grp-s", traits={"industry": "Defense"})
    # An account whose six people activate within a week (seed 001's team activation), each most likely judged by
    # another process than some of the others; one of them pays after a rep touched another.
    for i in range(6):
        user, signup = f"w{i}", START + timedelta(hours=i)
        h.track(user, "signup_complete", signup, email=f"w{i}@wayne.com", company_name="Wayne", company_size=900)
        h.track(user, "activation_complete", signup + timedelta(days=1 + i))
    h.track("w1", "sales_touch", START + timedelta(days=8))
    h.track("w4", "trial_converted", START + timedelta(days=12))
    # Touched, never a trial: no history to replay, but the report says touches exist.
    h.track("ghost", "sales_touch", START + timedelta(days=2))
    # Activity weeks later: the replay's days run on, and a wait ends on a day without events. One user's calls
    # start the history a week early, another's end it weeks late: one process's users set each end of the report.
    for i in range(5):
        h.track(f"u{i:03d}", "session_start", START + timedelta(days=20 + i))
    h.track("early", "session_start", START - timedelta(days=9))
    h.track("straggler", "session_start", START + timedelta(days=33))
    lines = _history(seed) + h.lines
    random.Random(seed).shuffle(lines)
    return lines


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setattr(split, "APART_FROM", 0)  # split whatever its size
    monkeypatch.setenv("PQL_TIMEZONE", "America/New_York")
    for name in ("PQL_RULES_FILE", "PQL_REPS", "PQL_HOLIDAYS"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(_backtest_history(7)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shared(monkeypatch):
    """The runs split.backtest_file made (what each returned): a run that fell back to one process would compare
    one process with itself."""
    runs = []
    real = split.backtest_file

    def noted(*args, **kwargs):
        runs.append(found := real(*args, **kwargs))
        return found

    monkeypatch.setattr(split, "backtest_file", noted)
    return runs


def _rules(tmp_path, name: str, *, qualify: int | None = None, alias: str | None = None) -> str:
    """The seed rules, with another threshold to qualify, or another name the tracking plan sends."""
    text = DEFAULT_RULES.read_text()
    if qualify is not None:
        assert "\nqualify = 4\nhigh = 7\n" in text
        text = text.replace("\nqualify = 4\nhigh = 7\n", f"\nqualify = {qualify}\nhigh = {qualify}\n", 1)
    if alias is not None:
        text = text.replace("[events.aliases]\n", f'[events.aliases]\n"{alias}" = "usage_limit_hit"\n', 1)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _both(capsys, *argv: str, processes: str = "2") -> tuple[int, str, str]:
    """The command's output in one process and shared out: they must be the same; the one-process output."""
    alone = _run(capsys, *argv, "--processes", "1")
    assert _run(capsys, *argv, "--processes", processes) == alone
    return alone


@pytest.mark.parametrize("processes", ["2", "3"])
def test_the_json_report_shared_out_between_processes_is_byte_for_byte_that_of_one_process(
        history, shared, capsys, processes):
    code, out, err = _both(capsys, str(history), "--capacity", "2", "--cap", "3", "--json", processes=processes)
    assert len(shared) == 1 and shared[0] is not None and shared[0].replays[0].users
    team = next(row for row in json.loads(out)["triggers"] if row["name"] == "team_activation")
    assert team["level"] == "account" and team["fired"] >= 1 and team["converted"] >= 1  # Wayne's, across processes
    # The history is what it claims to be: every case is in the report it compares.
    report = json.loads(out)
    rows = {row["name"]: row for row in report["triggers"]}
    assert code == 1 and "5 invalid line(s) skipped" in err
    assert err.index("line ") < err.index("invalid line(s)") and err.count("\nline ") + err.startswith("line ") == 5
    assert report["raised"] > 20 and rows["points"]["converted"] > 0
    assert sum(row["contacted_converted"] for row in rows.values()) > 0
    assert sum(day["raised"] for day in report["days"]) == report["raised"]
    assert report["guardrails"]["days_over_capacity"] > 0
    replayed = {user.user_id: user for user in shared[0].replays[0].users}
    assert {"new2", "42", str(2**53 + 1), 'q"uote', "late1"} <= {user for user, found in replayed.items() if found.lead}
    assert replayed["late1"].converted_at and replayed["late1"].touches and replayed["new2"].converted_at
    assert not any(user.startswith(("anonymous:", "old", "visitor", "ghost")) for user in replayed)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_histories_and_the_table_come_out_the_same_too(tmp_path, monkeypatch, shared, capsys, seed):
    monkeypatch.setattr(split, "APART_FROM", 0)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(_backtest_history(seed)) + "\n", encoding="utf-8")
    _both(capsys, str(path), "--json")
    out = _both(capsys, str(path), "--capacity", "1")[1]
    assert all(shared) and len(shared) == 2
    assert "Capacity: 1 rep(s) x 5 a day" in out and " conv)" in out and "no touches" not in out


def test_a_window_and_a_minimum_sample_shared_out_are_those_of_one_process(history, shared, capsys):
    report = json.loads(_both(capsys, str(history), "--from", "2026-11-05", "--to", "2026-11-12", "--min-sample", "3",
                              "--json")[1])
    assert [day["date"] for day in report["days"]][:1] == ["2026-11-05"] and report["days"][-1]["date"] <= \
        "2026-11-13"
    assert any(row["recommendation"] != "too_few" for row in report["triggers"] if row["fired"] >= 3)
    text = _both(capsys, str(history), "--from", "2026-11-05", "--to", "2026-11-12", "--capacity", "1")[1]
    assert "2026-11-05 to " in text
    assert all(shared)


def test_against_rules_naming_events_alike_are_replayed_in_the_same_run(history, shared, capsys, tmp_path):
    stricter = _rules(tmp_path, "stricter.toml", qualify=6)
    report = json.loads(_both(capsys, str(history), "--against", stricter, "--json")[1])
    assert report["differences"] and {d["raised_by"] for d in report["differences"]} == {"rules"}
    assert len(shared) == 1 and len(shared[0].replays) == 2  # one run: both rules sets on the same events
    text = _both(capsys, str(history), "--against", stricter)[1]
    assert "Leads one raises and the other does not:" in text


def test_against_rules_naming_events_otherwise_are_replayed_on_the_file_parsed_their_way(
        history, shared, capsys, tmp_path):
    plan = _rules(tmp_path, "plan.toml", alias="Limit Reached")
    _, out, err = _both(capsys, str(history), "--against", plan, "--json")
    report = json.loads(out)
    theirs = {row["name"]: row["fired"] for row in report["against"]["triggers"]}
    mine = {row["name"]: row["fired"] for row in report["triggers"]}
    assert theirs["limit_then_upgrade"] > mine["limit_then_upgrade"]  # their name for the limit: more of them
    assert len(shared) == 2 and all(shared)  # a run each
    assert err.count("invalid line(s) skipped") == 1


def test_a_file_that_stops_being_utf8_fails_as_it_does_in_one_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(split, "APART_FROM", 0)
    found = _not_utf8(tmp_path, _backtest_history(7), capsys, "backtest", "FILE", "--json")
    assert found[0] == found[1] and found[0].out == ""


def test_a_process_that_is_killed_makes_the_command_fail_saying_so(history, monkeypatch, capsys):
    monkeypatch.setattr(split, "_replays", _acting(1, lambda: os.kill(os.getpid(), signal.SIGKILL), "_replays"))
    signal.alarm(60)  # a hang fails the test rather than the run
    try:
        code, out, err = _run(capsys, str(history), "--json", "--processes", "2")
    finally:
        signal.alarm(0)
    assert code == 2 and out == ""
    assert err == "pqlbot backtest: replay process 2 of 2 stopped (killed by SIGKILL) before handing back its " \
                  "users\n"


def test_a_process_that_fails_makes_the_command_fail_with_its_error(history, monkeypatch, capsys):
    def fail():
        raise MemoryError("no room")

    monkeypatch.setattr(split, "_replays", _acting(0, fail, "_replays"))
    signal.alarm(60)
    try:
        code, out, err = _run(capsys, str(history), "--json", "--processes", "2")
    finally:
        signal.alarm(0)
    assert code == 2 and out == ""
    assert "pqlbot backtest: replay process 1 of 2 failed:" in err and "MemoryError: no room" in err
