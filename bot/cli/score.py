"""`pqlbot score` (verdicts from a JSON-lines file, no database: the top of the table and everyone counted, every
user with --all, or --json) and `pqlbot rules` (check a rules file)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.common import UNREADABLE, count, moment, not_json_lines, open_lines, parse_lines, some, unreadable
from bot.clock import utc_now
from bot.settings import Settings
from scoring import EventError, Rules, load_rules, paused_gc, score_users
from scoring.rules import suspect_event_names

if TYPE_CHECKING:
    from bot.cli.split import Scored

TOP = 50  # users the table shows unless told: the leads a rep would read first, not a whole population


def add(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "rules":
        rules = parser
        rules.usage = "pqlbot rules [check] [FILE]"
        rules.description = (
            "Validate a rules file and print what it means: the points model, the bands and ACV model, and the "
            "trigger catalogue (per trigger: level, family, strength, tier of response, window, conditions in words "
            "and the seed row it cites). `pqlbot rules check FILE` is the same for a copy you are editing.")
        rules.add_argument("words", nargs="*", metavar="FILE",
                           help="rules file, optionally after `check` (default PQL_RULES_FILE or the seed model)")
        rules.set_defaults(run=run_rules)
        return
    score = parser
    score.description = ("Read Segment calls (JSON lines: track, page, identify, group, alias...) and print one PQL "
                         "verdict per user.")
    score.add_argument("file", nargs="?", help="events file, or - for standard input")
    score.add_argument("--sample", action="store_true", help="score the bundled sample (Sarah, Tom and ~50 more)")
    score.add_argument("--at", type=moment, help="judge as of this time (ISO 8601; default now)")
    score.add_argument("--rules", type=Path, help="rules file (default PQL_RULES_FILE or the seed 002 model)")
    score.add_argument("--processes", type=some, metavar="N",
                       help="share a big file's users between N processes (default one per CPU; 1: this one only)")
    shown = score.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="one JSON object per user instead of a table")
    shown.add_argument("--all", action="store_true",
                       help="every user, one tab-separated line each, instead of a table (for grep or a spreadsheet)")
    shown.add_argument("--top", type=count, default=TOP, metavar="N",
                       help=f"how many users the table shows, leads first (default {TOP}); everyone is counted")
    score.set_defaults(run=run_score)


def run_score(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import split

    if args.sample == bool(args.file):
        print("pqlbot score: give an events FILE (or -), or --sample", file=sys.stderr)
        return 2
    rules = load_rules(args.rules or settings.pql_rules_file)
    at, tz, path = args.at or utc_now(), settings.tz, args.file
    if args.sample:
        from bot.demo import sample

        path, at, tz = str(sample.SAMPLE_PATH), args.at or sample.SAMPLE_AS_OF, sample.SAMPLE_TZ
    if (shape := not_json_lines(path)) is not None:
        print(f"pqlbot score: {path} is {shape}", file=sys.stderr)
        return 2
    processes = split.processes_for(args.processes)
    scored = None
    if split.splits(path, processes):  # a big file: its users shared out between processes (bot/cli/split.py)
        try:
            scored = split.score_file(path, rules, at, tz, processes=processes, as_json=args.json)
        except split.Failed as exc:
            print(f"pqlbot score: {exc}", file=sys.stderr)
            return 2
        for number, why in scored.invalid if scored else ():
            print(f"line {number}: {why}", file=sys.stderr)
    if scored is None:  # in this process: standard input, a small file, one CPU, or a file not read through
        try:
            scored = _score_here(path, rules, at, tz, as_json=args.json)
        except UNREADABLE as exc:
            print(f"pqlbot score: {unreadable(exc)}: {path}", file=sys.stderr)
            return 2
    if args.json:
        if lines := scored.users + scored.accounts:
            sys.stdout.write("\n".join(lines) + "\n")
    else:
        from bot.cli import report

        if args.all:
            report.write_rows(scored.users, sys.stdout)
        elif not scored.users:  # an empty file, or every line invalid: an empty table would say nothing
            print(f"No users to score in {'standard input' if path == '-' else path}"
                  + (f" ({len(scored.invalid)} invalid line(s), listed above)." if scored.invalid else "."))
        else:
            report.print_results(scored.users, at=at, tz=tz, rules=rules, product_name=settings.product_name,
                                 top=args.top)
    if scored.invalid:
        print(f"{len(scored.invalid)} invalid line(s) skipped; {scored.events} events scored", file=sys.stderr)
    return 1 if scored.invalid else 0


def _score_here(path: str, rules: Rules, at: datetime, tz: tzinfo, *, as_json: bool) -> Scored:
    """`pqlbot score` in this process: the invalid lines reported as they are read, then every user judged (and
    with `as_json`, each verdict as its JSON line, then the accounts' lines)."""
    from bot.cli.split import Scored, line_of

    events, invalid = [], []
    with paused_gc(), open_lines(path) as stream:
        for number, item in parse_lines(stream, rules):
            if isinstance(item, EventError):
                invalid.append((number, str(item)))
                print(f"line {number}: {item}", file=sys.stderr)
            else:
                events.append(item)
    if not as_json:
        return Scored(users=score_users(events, rules, at, tz=tz), invalid=invalid, events=len(events))
    from scoring.accounts import score_users_and_accounts

    results = score_users_and_accounts(events, rules, at, tz=tz)
    lines = [line_of(result) for result in results]
    return Scored(users=lines, invalid=invalid, events=len(events))


def run_rules(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import report

    words = list(args.words)
    if words[:1] == ["check"] and (len(words) == 2 or not Path("check").exists()):
        words = words[1:]
    if len(words) > 1:
        print("pqlbot rules: give one rules FILE (or `check FILE`)", file=sys.stderr)
        return 2
    path = Path(words[0]) if words else settings.pql_rules_file
    rules = load_rules(path)
    report.print_rules(rules, source=str(path or "built-in seed 002 model"))
    for where, name, instead in suspect_event_names(rules):
        renamed = rules.events.aliases.get(name) == instead
        print(f"Look at {where}: it reads {name!r}, "
              + (f"which the aliases rename to {instead!r} before anything reads it: read {instead!r}" if renamed
                 else f"a name pqlbot does not know: did you mean {instead!r}? (fine if your product sends "
                      f"{name!r} itself)"))
    return 0
