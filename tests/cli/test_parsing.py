"""Parsing a big file in worker processes (bot/cli/parsing.py) hands over exactly what parsing in the command's own
process gives: the same events and rejected lines, in the same order, with the same line numbers, and a file that
stops being readable stops at the same line with the same error."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import parsing
from bot.cli.common import parse_lines
from bot.cli.parsing import ParsedLines, blocks_of
from scoring import load_rules

RULES = load_rules()

_event = st.builds(
    lambda kind, user, n, day: json.dumps({
        "type": "track", "event": kind, "userId": user, "messageId": f"m-{n}",
        "timestamp": f"2026-11-{day:02d}T10:00:00Z", "properties": {"n": n}}),
    st.sampled_from(["signup_complete", "session_start", "invite_sent", "pricing_page_viewed"]),
    st.sampled_from(["ana", "bo", "cy"]), st.integers(0, 10**6), st.integers(1, 28))
_line = st.one_of(_event, _event, st.just(""), st.just("   "), st.just("nope"), st.just("{}"),
                  st.just('{"type": "track", "event": "x", "userId": "u", "timestamp": "2026-11-02T09:00:00"}'))


def _in_process(path):
    with open(path, encoding="utf-8") as stream:
        yield from blocks_of(parse_lines(stream, RULES), parsing.BLOCK)


def _by_workers(path, workers: int):
    with open(path, encoding="utf-8") as stream, ParsedLines(stream, RULES, workers=workers) as parsed:
        assert parsed.workers == workers  # really apart
        yield from parsed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=40), block=st.integers(1, 7), workers=st.integers(1, 3))
def test_workers_hand_over_what_parsing_in_process_gives(tmp_path, lines, block, workers):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "BLOCK", block)
        patch.setattr(parsing, "APART_FROM", 0)
        assert list(_by_workers(path, workers)) == list(_in_process(path))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_stops_being_utf8_stops_the_workers_at_the_same_line_with_the_same_error(
        tmp_path, monkeypatch, workers):
    lines = [json.dumps({"type": "track", "event": "session_start", "userId": f"u{n % 7}", "messageId": f"s-{n}",
                         "timestamp": "2026-11-03T10:00:00Z"}) for n in range(3000)]
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"caf\xe9": 1}\n' + b"\n".join(
        line.encode() for line in lines[:50]) + b"\n")
    monkeypatch.setattr(parsing, "BLOCK", 100)
    monkeypatch.setattr(parsing, "APART_FROM", 0)

    def until_stopped(blocks) -> tuple[list, str]:
        got = []
        with pytest.raises(UnicodeDecodeError) as stopped:
            for block in blocks:
                got.append(block)
        return got, str(stopped.value)

    apart = until_stopped(_by_workers(path, workers))
    here = until_stopped(_in_process(path))
    assert apart == here
    assert 0 < sum(len(block.events) for block in apart[0]) <= 3000


def test_standard_input_and_small_files_are_parsed_in_the_commands_own_process(tmp_path, monkeypatch):
    path = tmp_path / "small.jsonl"
    path.write_text("nope\n")
    with open(path, encoding="utf-8") as stream, ParsedLines(stream, RULES, workers=1) as parsed:
        assert parsed.workers == 0 and [block.rejected for block in parsed] == [[(1, "not valid JSON")]]
    monkeypatch.setattr(parsing, "APART_FROM", 0)
    with ParsedLines(io.StringIO("nope\n"), RULES, workers=1) as parsed:
        assert parsed.workers == 0 and len(list(parsed)) == 1


def test_one_cpu_gets_no_worker_and_two_get_one():
    assert parsing.workers_for(1) == 0
    assert parsing.workers_for(2) == 1
