"""The `pqlbot` command: one sub-command per job, each a thin shell over a library call."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from bot.settings import Settings
from scoring import Event, EventError, Rules, RulesError, load_rules, parse_event, score_users


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    # A bare date or time without a zone means UTC, as every stored time is.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pqlbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = commands.add_parser(
        "score",
        help="score users from a JSON-lines events file, without a database",
        description="Read Segment track events (JSON lines) and print one PQL verdict per user.",
    )
    score.add_argument("file", nargs="?", help="events file, or - for standard input")
    score.add_argument("--sample", action="store_true", help="score the bundled sample (Sarah, Tom and ~50 more)")
    score.add_argument("--at", type=_moment, help="judge as of this time (ISO 8601; default now)")
    score.add_argument("--rules", type=Path, help="rules file (default PQL_RULES_FILE or the seed 002 model)")
    score.add_argument("--json", action="store_true", help="one JSON object per user instead of a table")

    rules = commands.add_parser("rules", help="check a rules file and show what it means")
    rules.add_argument("file", nargs="?", type=Path, help="rules file (default PQL_RULES_FILE or the seed model)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"pqlbot: bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        if args.command == "score":
            return _score(args, settings)
        return _rules(args, settings)
    except RulesError as exc:
        print(f"pqlbot: {exc}", file=sys.stderr)
        return 2


def _read_events(stream: TextIO, rules: Rules) -> tuple[list[Event], list[tuple[int, str]]]:
    events, invalid = [], []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_event(line, rules))
        except EventError as exc:
            invalid.append((number, str(exc)))
    return events, invalid


def _open(name: str) -> contextlib.AbstractContextManager[TextIO]:
    return contextlib.nullcontext(sys.stdin) if name == "-" else open(name, encoding="utf-8")


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from bot import report

    if args.sample == bool(args.file):
        print("pqlbot score: give an events FILE (or -), or --sample", file=sys.stderr)
        return 2
    rules = load_rules(args.rules or settings.pql_rules_file)
    at = args.at or datetime.now(UTC)
    tz = settings.tz
    if args.sample:
        from bot import sample

        path, at, tz = sample.SAMPLE_PATH, args.at or sample.SAMPLE_AS_OF, sample.SAMPLE_TZ
    else:
        path = args.file
    try:
        with _open(str(path)) as stream:
            events, invalid = _read_events(stream, rules)
    except OSError as exc:
        print(f"pqlbot score: {exc.strerror}: {path}", file=sys.stderr)
        return 2
    for number, reason in invalid:
        print(f"line {number}: {reason}", file=sys.stderr)

    results = score_users(events, rules, at, tz=tz)
    if args.json:
        for result in results:
            print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        report.print_results(results, at=at, tz=tz, rules=rules, product_name=settings.product_name)
    if invalid:
        print(f"{len(invalid)} invalid line(s) skipped; {len(events)} events scored", file=sys.stderr)
    return 1 if invalid else 0


def _rules(args: argparse.Namespace, settings: Settings) -> int:
    from bot import report

    path = args.file or settings.pql_rules_file
    report.print_rules(load_rules(path), source=str(path or "built-in seed 002 model"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
