"""How soon a command answers: each loads what it uses and no more, so `pqlbot --help` is instant and `pqlbot score`
or `pqlbot rules` does not wait for Slack's or the store's libraries (asserted by what a fresh process imports).
And how it stops when its reader does (`| head`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]

#: Libraries only the commands that talk to Slack, the store or HubSpot need.
SLACK_AND_STORE = {"slack_bolt", "slack_sdk", "sqlalchemy", "sqlmodel", "alembic", "bot.store", "bot.slack",
                   "bot.integrations"}

_RUN = """
import contextlib, sys
from bot.cli import main
with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print("\\n".join(sys.modules))
"""


def loaded_by(*argv: str, cwd: Path) -> set[str]:
    """The modules `pqlbot ARGV` has imported when it is done, run in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _RUN, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return set(done.stdout.split())


def among(modules: set[str], wanted: set[str]) -> set[str]:
    return {name for name in wanted if any(m == name or m.startswith(f"{name}.") for m in modules)}


def test_help_lists_every_command_without_loading_any_of_them(tmp_path):
    modules = loaded_by("--help", cwd=tmp_path)
    assert among(modules, SLACK_AND_STORE | {"scoring", "pydantic", "rich"}) == set()
    assert not {f"bot.cli.{module}" for module, _ in COMMANDS.values()} & modules


@pytest.mark.parametrize("argv", [["rules"], ["score", "--sample"], ["score", "--sample", "--json"]],
                         ids=" ".join)
def test_scoring_a_file_or_reading_the_rules_loads_neither_slack_nor_the_store(argv, tmp_path):
    assert among(loaded_by(*argv, cwd=tmp_path), SLACK_AND_STORE) == set()


def test_a_commands_own_help_still_shows_its_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        main(["score", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "print one PQL verdict per user" in " ".join(out.split())
    assert all(option in out for option in ("--sample", "--at", "--rules", "--json"))


def test_help_lists_every_command_with_what_it_does(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(f"{name} {' '.join(summary.split())}" in out for name, (_, summary) in COMMANDS.items())


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`pqlbot score FILE --all | head`: once head has its lines, pqlbot stops without a traceback."""
    path = tmp_path / "many.jsonl"
    path.write_text("".join(
        f'{{"type":"track","event":"signup_complete","userId":"u{i}","messageId":"m{i}",'
        f'"timestamp":"2026-11-02T15:00:00Z","properties":{{"email":"u{i}@acme{i}.com","company_size":800}}}}\n'
        for i in range(3000)))  # some 300 KB of lines, more than a pipe holds
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "score",
                           str(path), "--at", "2026-11-09T12:00:00Z", "--all"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as pqlbot:
        assert pqlbot.stdout.readline().startswith("user_id\temail")
        pqlbot.stdout.close()
        err = pqlbot.stderr.read()
    assert pqlbot.returncode == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err
