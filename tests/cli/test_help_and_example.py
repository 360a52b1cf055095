"""What a new user meets first: `--version`, a description on every sub-command's `--help`, and the README's worked
example dated so that it answers today."""

from __future__ import annotations

import argparse
import json

import pytest

from bot.cli import _parser, main


def sub_commands(parser: argparse.ArgumentParser, prefix: str = "pqlbot"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from sub_commands(sub, f"{prefix} {name}")


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pqlbot {version('pqlbot')}"


def test_every_sub_command_has_a_description_on_its_help():
    found = dict(sub_commands(_parser()))
    assert {"pqlbot serve", "pqlbot rules", "pqlbot doctor", "pqlbot explain", "pqlbot db upgrade",
            "pqlbot owners list"} <= set(found)
    assert [name for name, parser in found.items() if not (parser.description or "").strip()] == []


@pytest.mark.parametrize("now", [
    "2026-12-03T15:00:00-05:00",  # a Thursday afternoon
    "2026-03-10T10:30:00-04:00",  # two days after the spring-forward (her trial spans it)
    "2026-11-03T09:30:00-05:00",  # two days after the fall-back
    "2026-11-09T08:00:00-05:00",  # a Monday before her day-5 times: today's calls come before now
])
def test_the_worked_example_qualifies_sarah_as_medium_on_her_day_5_whenever_it_is_run(now, tmp_path, capsys,
                                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["example", "--at", now]) == 0
    path = tmp_path / "sarah.jsonl"
    path.write_text(capsys.readouterr().out)
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    assert [c["event"] for c in calls] == ["signup_complete", "activation_complete", "invite_sent", "invite_sent",
                                           "integration_connected"]
    assert main(["score", str(path), "--at", now, "--json"]) == 0
    [result] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (result["status"], result["tier"], result["score"], result["trial_day"]) == ("qualified", "medium", 6, 5)
