"""`pqlbot score FILE` shared out between processes (bot/cli/split.py) prints exactly what one process prints: the same
verdicts and account lines in the same order, the same invalid lines, the same exit status; and a process that dies
makes the command fail, saying so, rather than wait for ever."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import random
import signal
from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import main, split

AT = "2026-11-12T12:00:00Z"
START = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
COMPACT = (",", ":")  # as Segment's libraries write calls; the cheap look reads this form


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class _History:
    """Segment calls for a population of trials, as JSON lines, with everything that makes a call's user hard to
    tell from its raw text."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.n = 0

    def call(self, kind: str, at: datetime, *, user: object = None, anon: str | None = None, event: str | None = None,
             first: dict | None = None, compact: bool = True, **fields: object) -> None:
        """One call; `first`: keys written before the ids (a nested "userId" ahead of the real one)."""
        self.n += 1
        body: dict = dict(first or {})
        body |= {"type": kind, "messageId": f"m-{self.n}", "timestamp": _stamp(at)}
        if event is not None:
            body["event"] = event
        if user is not None:
            body["userId"] = user
        if anon is not None:
            body["anonymousId"] = anon
        body |= fields
        self.lines.append(json.dumps(body, separators=COMPACT if compact else None))

    def track(self, user: object, event: str, at: datetime, anon: str | None = None, **props: object) -> None:
        self.call("track", at, user=user, anon=anon, event=event, properties=props,
                  compact=self.rng.random() < 0.8)

    def trial(self, user: object, email: str, company: str, size: int, at: datetime, anon: str | None = None) -> None:
        self.track(user, "signup_complete", at, anon, email=email, company_name=company, company_size=size,
                   first_name=email.split("@")[0].title(), title="Head of Ops")


def _history(seed: int) -> list[str]:
    h = _History(seed)
    rng = h.rng
    domains = [("acme.com", "Acme", 800), ("globex.io", "Globex", 450), ("initech.com", "Initech", 1500),
               ("tiny.co", "Tiny", 12), ("gmail.com", None, None)]
    users = []
    for i in range(90):
        domain, company, size = domains[i % len(domains)]
        user = f"u{i:03d}"
        anon = f"a{i:03d}" if rng.random() < 0.7 else None
        at = START + timedelta(hours=rng.randrange(0, 96))
        h.trial(user, f"p{i}@{domain}", company, size, at, anon)
        users.append((user, anon, at, domain))
    # Activity, out of order in the file as a real pipe's is.
    for user, anon, at, domain in users:
        for _ in range(rng.randrange(1, 12)):
            when = at + timedelta(hours=rng.randrange(1, 150))
            kind = rng.choice(["activation_complete", "session_start", "invite_sent", "integration_connected",
                               "page_view", "seats_provisioned", "usage_limit_hit", "upgrade_clicked",
                               "demo_requested", "support_ticket_opened"])
            props: dict = {}
            if kind == "invite_sent":
                props = {"invitee_email": f"x{rng.randrange(9)}@{rng.choice(['a.com', 'b.com', 'c.com', domain])}"}
            elif kind == "integration_connected":
                props = {"integration_type": rng.choice(["slack", "jira", "github"])}
            elif kind == "page_view":
                props = {"page_path": rng.choice(["/pricing", "/billing", "/projects"])}
            elif kind == "seats_provisioned":
                props = {"count": rng.randrange(1, 8)}
            h.track(user, kind, when, anon if rng.random() < 0.5 else None, **props)
    # Anonymous visitors identified later: their early calls carry only the anonymous id.
    for i in range(6):
        anon, user = f"visitor-{i}", f"late{i}"
        h.call("page", START - timedelta(hours=5), anon=anon, name="Pricing", properties={"path": "/pricing"})
        h.track(None, "session_start", START - timedelta(hours=4), anon)
        h.trial(user, f"late{i}@acme.com", "Acme", 800, START + timedelta(hours=i))
        h.call("identify", START + timedelta(hours=i, minutes=5), user=user, anon=anon,
               traits={"title": "CTO", "industry": "Software"})
        h.track(user, "activation_complete", START + timedelta(hours=i + 2))
    # Aliases: an id used before the user's final one, and an anonymous id named by an alias call.
    for i in range(4):
        old, new = f"old{i}", f"new{i}"
        h.trial(old, f"aliased{i}@globex.io", "Globex", 450, START + timedelta(hours=i))
        h.track(old, "activation_complete", START + timedelta(hours=i + 1))
        h.call("alias", START + timedelta(hours=i + 2), user=new, previousId=old)
        h.track(new, "invite_sent", START + timedelta(hours=i + 3), invitee_email=f"z@{'abc'[i % 3]}.org")
        h.track(None, "session_start", START + timedelta(hours=i + 4), f"pre-{i}")
        h.call("alias", START + timedelta(hours=i + 5), user=new, previousId=f"pre-{i}")
    # Aliases asking for a cycle: the first asked for in the file stands, the other is not made.
    for i in range(3):
        one, other = f"cyc{i}a", f"cyc{i}b"
        h.trial(one, f"{one}@initech.com", "Initech", 1500, START + timedelta(hours=i))
        h.trial(other, f"{other}@initech.com", "Initech", 1500, START + timedelta(hours=i))
        h.call("alias", START + timedelta(hours=i + 1), user=other, previousId=one)
        h.call("alias", START + timedelta(hours=i + 2), user=one, previousId=other)
    # A group: its traits make the account, whoever sends them; a seat surge across its users.
    for i in range(7):
        user = f"g{i}"
        h.trial(user, f"g{i}@gmail.com", None, 300, START + timedelta(hours=i))
        h.call("group", START + timedelta(hours=i, minutes=30), user=user, groupId="grp-1",
               traits={"name": "Umbrella", "company_size": 950, "industry": "Health"})
        h.track(user, "activation_complete", START + timedelta(hours=i + 1))
        h.track(user, "seats_provisioned", START + timedelta(days=1, hours=i), count=3)
    h.call("group", START + timedelta(days=2), user="u001", groupId="grp-1", traits={"plan": "team"})
    # An account where nothing fires: no line of its own.
    for i in range(2):
        h.trial(f"duo{i}", f"duo{i}@duo.net", "Duo", 300, START + timedelta(hours=i))
        h.track(f"duo{i}", "activation_complete", START + timedelta(hours=i + 1))
    # Numeric ids (one beyond 2^53), a nested "userId" ahead of the real one, escaped quotes.
    big = 2**53 + 1
    h.trial(big, "big@initech.com", "Initech", 1500, START)
    h.track(big, "activation_complete", START + timedelta(hours=1))
    h.trial(42, "n42@initech.com", "Initech", 1500, START + timedelta(hours=2))
    h.call("track", START + timedelta(hours=3), event="invite_sent", first={"properties": {
        "userId": "u000", "invitee_email": "q@d.com"}}, user="u007")
    h.call("track", START + timedelta(hours=3), event="session_start", first={"properties": {"userId": "u001"}},
           anon="visitor-2")
    h.trial('q"uote', "quote@globex.io", "Globex", 450, START + timedelta(hours=4))
    h.track('q"uote', "activation_complete", START + timedelta(hours=5), note='say "hi" \\ there')
    h.trial("ünï", "uni@acme.com", "Acme", 800, START + timedelta(hours=6))
    h.track("u002", "session_start", START + timedelta(hours=7), label="caf\u00e9 \u2603 \"x\"")
    # Invalid lines and blank ones.
    h.lines += ["not json", "{}", "", "   ", '{"type":"track","event":"x","userId":"u003","messageId":"m-x",'
                '"timestamp":"2026-11-04T09:00:00"}', '{"type":"alias","userId":"u004","messageId":"m-y",'
                '"timestamp":"2026-11-04T09:00:00Z"}', "[1, 2]"]
    rng.shuffle(h.lines)
    return h.lines


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setattr(split, "APART_FROM", 0)  # split whatever its size
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(_history(7)) + "\n", encoding="utf-8")
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["score", *argv, "--at", AT])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("processes", ["2", "3"])
def test_the_json_lines_shared_out_between_processes_are_byte_for_byte_those_of_one_process(
        history, capsys, processes):
    alone = _run(capsys, str(history), "--json", "--processes", "1")
    shared = _run(capsys, str(history), "--json", "--processes", processes)
    assert shared == alone
    code, out, err = alone
    lines = [json.loads(line) for line in out.splitlines()]
    # The history is what it claims to be: every case is in the output it compares.
    by_user = {line["user_id"]: line for line in lines if line["level"] == "user"}
    assert code == 1 and "5 invalid line(s) skipped" in err
    assert {"new0", "new3", "late0", "late5", str(2**53 + 1), "42", 'q"uote', "ünï"} <= set(by_user)
    assert "old0" not in by_user and not any(user.startswith(("visitor", "pre-")) for user in by_user)
    assert by_user["new0"]["email"] == "aliased0@globex.io"
    assert by_user["g0"]["account"]["company_name"] == "Umbrella"  # from the group call's traits
    accounts = {line["account"]["key"]: line for line in lines if line["level"] == "account"}
    assert {"domain:acme.com", "group:grp-1"} <= set(accounts) and "domain:duo.net" not in accounts
    assert accounts["group:grp-1"]["status"] == "qualified"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_histories_come_out_the_same_too(tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setattr(split, "APART_FROM", 0)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(_history(seed)) + "\n", encoding="utf-8")
    assert _run(capsys, str(path), "--json", "--processes", "2") == _run(capsys, str(path), "--json",
                                                                           "--processes", "1")


def test_the_table_shared_out_between_processes_is_the_table_of_one_process(history, capsys):
    alone = _run(capsys, str(history), "--processes", "1")
    assert _run(capsys, str(history), "--processes", "2") == alone
    assert " qualified, " in alone[1] and "do_not_touch" in alone[1]


def test_a_small_file_or_standard_input_stays_in_one_process(tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(_history(7)) + "\n")
    assert small.stat().st_size < split.APART_FROM
    assert not split.splits(str(small), 2) and not split.splits("-", 2)
    assert not split.splits(str(tmp_path / "missing.jsonl"), 2)
    assert split.processes_for(1) == 1 and split.processes_for(None) >= 1


def _not_utf8(tmp_path, lines: list[str], capsys, *argv: str) -> list:
    """What a command (`argv`, the file's path where "FILE" is) prints in one process and in two, on a file of `lines`
    that stops being UTF-8 after them: each run must fail as one process does, saying why in one line (exit 2; it
    was a traceback)."""
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"caf\xe9": 1}\n')
    found = []
    for processes in ("1", "2"):
        assert main([str(path) if word == "FILE" else word for word in argv] + ["--processes", processes]) == 2
        found.append(capsys.readouterr())
        assert found[-1].err.endswith(f": not UTF-8 text: {path}\n")
    return found


def test_a_file_that_stops_being_utf8_fails_as_it_does_in_one_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(split, "APART_FROM", 0)
    found = _not_utf8(tmp_path, _history(7), capsys, "score", "FILE", "--at", AT, "--json")
    assert found[0] == found[1] and "line " in found[0].err


@pytest.mark.parametrize("ending", ["\r\n", "\r", "\n"])
def test_carriage_returns_end_lines_in_two_processes_as_in_one(tmp_path, monkeypatch, capsys, ending):
    """Python reading text ends a line at a carriage return too: lines ending in CRLF or CR alone, and a line with a
    CR between its fields (read as two), are numbered and judged alike by one process and by two."""
    monkeypatch.setattr(split, "APART_FROM", 0)
    lines = _history(7)
    lines[len(lines) // 2] = ('{"type":"track","event":"x","userId":"u009",\r"messageId":"m-cr",'
                              '"timestamp":"2026-11-04T09:00:00Z"}')
    path = tmp_path / "endings.jsonl"
    path.write_bytes((ending.join(lines) + ending).encode())
    alone = _run(capsys, str(path), "--json", "--processes", "1")
    assert _run(capsys, str(path), "--json", "--processes", "2") == alone
    assert "7 invalid line(s) skipped" in alone[2]  # the CR line read as two lines, neither valid


def _acting(process: int, act, step: str = "_share"):
    """`split.<step>` (a process's conversation: `_share`, or the backtest's `_replays`), where process `process`
    (0-based) does `act` once it has handed over its first message."""
    real = getattr(split, step)

    def share(*args):
        conversation = real(*args)
        reply = yield next(conversation)
        if args[4] == process:
            act()
        try:
            while True:
                reply = yield conversation.send(reply)
        except StopIteration:
            return

    return share


def test_a_process_that_is_killed_makes_the_command_fail_saying_so(history, monkeypatch, capsys):
    monkeypatch.setattr(split, "_share", _acting(1, lambda: os.kill(os.getpid(), signal.SIGKILL)))
    signal.alarm(60)  # a hang fails the test rather than the run
    try:
        code, out, err = _run(capsys, str(history), "--json", "--processes", "2")
    finally:
        signal.alarm(0)
    assert code == 2 and out == ""
    assert "pqlbot score: scoring process 2 of 2 stopped (killed by SIGKILL) before handing back its users" in err


def test_a_process_that_fails_makes_the_command_fail_with_its_error(history, monkeypatch, capsys):
    def fail():
        raise MemoryError("no room")

    monkeypatch.setattr(split, "_share", _acting(0, fail))
    signal.alarm(60)
    try:
        code, out, err = _run(capsys, str(history), "--json", "--processes", "2")
    finally:
        signal.alarm(0)
    assert code == 2 and out == ""
    assert "pqlbot score: scoring process 1 of 2 failed:" in err and "MemoryError: no room" in err


def test_a_gzipped_file_or_one_with_a_byte_order_mark_reads_as_the_file_it_holds_in_one_process_and_in_two(
        history, tmp_path, capsys):
    # Storage destinations write .gz JSON lines, Windows tools a byte-order mark: both were "not UTF-8" tracebacks.
    plain = _run(capsys, str(history), "--json", "--processes", "1")
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(history.read_bytes()))
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(codecs.BOM_UTF8 + history.read_bytes())
    wide = tmp_path / "wide.jsonl"
    wide.write_text(history.read_text(encoding="utf-8"), encoding="utf-16")
    for path in (packed, marked, wide):
        for processes in ("1", "2"):
            assert _run(capsys, str(path), "--json", "--processes", processes) == plain
    backtests = []
    for path in (packed, history):
        main(["backtest", str(path), "--json"])
        backtests.append(capsys.readouterr())
    assert backtests[0] == backtests[1] and '"triggers"' in backtests[0].out
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[:-12])
    code, _, err = _run(capsys, str(cut), "--json", "--processes", "2")
    assert code == 2 and err.endswith(f"pqlbot score: it ends in the middle (a .gz file cut off?): {cut}\n")
