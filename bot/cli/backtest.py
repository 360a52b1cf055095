"""`pqlbot backtest`: replay a history of events through a rules file and read, per trigger, who converted
(bot/calibration/backtest.py).

    pqlbot backtest events.jsonl                             # the rules in PQL_RULES_FILE (or the seed model)
    pqlbot backtest events.jsonl --rules new.toml --against scoring/default_rules.toml --capacity 4
    pqlbot backtest --store --from 2026-11-02 --to 2026-11-29 --json

A big events file is replayed on every core, as `pqlbot score` scores one (bot/cli/split.py): each process parses
and replays its share of the users, and the report is the one a single process makes (`--processes 1`: this process
alone). Standard input, a small file and the store are replayed here.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bot.cli.common import UNREADABLE, count, not_json_lines, open_lines, some, unreadable
from bot.settings import Settings
from scoring import EventError, Rules, load_rules, paused_gc

if TYPE_CHECKING:
    from bot.calibration.backtest import Backtest


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def add(backtest: argparse.ArgumentParser, name: str) -> None:
    backtest.usage = ("pqlbot backtest (EVENTS | --store) [--rules FILE] [--against FILE] [--capacity REPS] [--cap N] "
                      "[--from D --to D] [--min-sample N] [--processes N] [--json]")
    backtest.description = (
        "Replay a history of events day by day in PQL_TIMEZONE through a rules file. Per trigger: fired, converted "
        "within 60 days (trial_converted), the conversion rate with its 95% Wilson interval, contacted or not (the "
        "store's touches; sales_touch or sales_reply events in a file), dark-funnel rate, assisted lift and seed "
        "001's recommendation; an account trigger counts accounts, converted when any of their people paid. Per "
        "business day: leads raised against capacity (reps x cap), and seed 002's volume guardrail.")
    backtest.add_argument("events", nargs="?", metavar="EVENTS", help="events file (JSON lines), or - for stdin")
    backtest.add_argument("--store", action="store_true", help="replay the store's events (DATABASE_URL) instead")
    backtest.add_argument("--rules", type=Path, help="rules file (default PQL_RULES_FILE or the seed 002 model)")
    backtest.add_argument("--against", type=Path, metavar="FILE",
                          help="another rules file, side by side, with the leads one raises and the other not")
    backtest.add_argument("--capacity", type=count, metavar="REPS", help="reps taking leads (default: PQL_REPS)")
    backtest.add_argument("--cap", type=count, metavar="N", help="new leads per rep per day (default PQL_DAILY_CAP)")
    backtest.add_argument("--from", dest="start", type=_day, metavar="D", help="first day replayed (YYYY-MM-DD)")
    backtest.add_argument("--to", dest="end", type=_day, metavar="D", help="last day replayed, inclusive")
    backtest.add_argument("--min-sample", type=count, default=None, metavar="N",
                          help="fewer fired than this: too few to judge (default 20)")
    backtest.add_argument("--processes", type=some, metavar="N",
                          help="share a big file's users between N processes (default one per CPU; 1: this one only)")
    backtest.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    backtest.set_defaults(run=run)


def _problem(args: argparse.Namespace) -> str | None:
    if args.store == bool(args.events):
        return "give an EVENTS file (or -), or --store"
    if args.start and args.end and args.end < args.start:
        return "--to is before --from"
    if args.events and (shape := not_json_lines(args.events)) is not None:
        return f"{args.events} is {shape}"
    return None


def _parse(lines: list[str], rules: Rules) -> tuple[list, list[tuple[int, str]]]:
    from scoring import parse_event

    events, invalid = [], []
    with paused_gc():
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                events.append(parse_event(line, rules))
            except EventError as exc:
                invalid.append((number, str(exc)))
    return events, invalid


def _read_file(name: str) -> list[str]:
    with open_lines(name) as stream:
        return stream.readlines()


def _read_store(settings: Settings) -> tuple[list, dict]:
    from bot import store
    from bot.store.events import events_of
    from bot.store.queries import touches_by_user

    engine = store.open_store(settings.database_url)
    try:
        with store.session(engine) as session:
            events = [event for _, batch in events_of(session.connection()) for event in batch]
            touches = touches_by_user(session)
    finally:
        engine.dispose()
    return events, touches


#: The rules' report, --against's (None without it), the invalid lines (number, why) and how many events were valid.
Sides = tuple["Backtest", "Backtest | None", list[tuple[int, str]], int]


def _replay_store(settings: Settings, sets: list[Rules], options: dict) -> Sides:
    """The store's events replayed through each rules set, with the store's touches as contact."""
    from bot.calibration.backtest import replay

    events, touches = _read_store(settings)
    with paused_gc():
        reports = [replay(events, rules, tz=settings.tz, touches=touches, **options) for rules in sets]
    return reports[0], reports[1] if len(sets) > 1 else None, [], len(events)


def _replay_file(name: str, sets: list[Rules], tz: tzinfo, options: dict, processes: int) -> Sides:
    """File `name` replayed through each rules set: a big file's users shared out between processes
    (bot/cli/split.py), else in this process (standard input, a small file, one CPU, a file not read through)."""
    from bot.cli import split

    if split.splits(name, processes) and (found := _replay_apart(name, sets, tz, options, processes)) is not None:
        return found
    from bot.calibration.backtest import replay

    lines = _read_file(name)
    events, invalid = _parse(lines, sets[0])
    with paused_gc():
        reports = []
        for rules in sets:
            # Each rules file names the events its own way: parsed again with another's names.
            named = events if rules.events.aliases == sets[0].events.aliases else _parse(lines, rules)[0]
            reports.append(replay(named, rules, tz=tz, **options))
    return reports[0], reports[1] if len(sets) > 1 else None, invalid, len(events)


def _replay_apart(name: str, sets: list[Rules], tz: tzinfo, options: dict, processes: int) -> Sides | None:
    """File `name` replayed by `processes` processes (`split.backtest_file`), into the reports one process makes.
    --against rules that name events as the rules do are replayed on the same events, in the same run; others in a
    run of their own, the file parsed with their names (its invalid lines are not reported again). None when the
    file cannot be read through."""
    from bot.calibration.backtest import report
    from bot.cli import split

    alike = all(rules.events.aliases == sets[0].events.aliases for rules in sets)
    replays, first = [], None
    with paused_gc():  # the processes' replays come in as millions of small objects, all kept to the report
        for run_sets in [sets] if alike else [[rules] for rules in sets]:
            if (found := split.backtest_file(name, run_sets, tz, options["window"], processes=processes)) is None:
                return None
            replays += found.replays
            first = first or found
        reports = [report(found, rules, **options) for found, rules in zip(replays, sets, strict=True)]
    return reports[0], reports[1] if len(sets) > 1 else None, first.invalid, first.events


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.calibration.backtest import Window, differences
    from bot.calibration.stats import CONVERSION_DAYS, MIN_SAMPLE
    from bot.cli import split

    if problem := _problem(args):
        print(f"pqlbot backtest: {problem}", file=sys.stderr)
        return 2
    rules = load_rules(args.rules or settings.pql_rules_file)
    against = load_rules(args.against) if args.against else None
    sets = [rules] if against is None else [rules, against]
    reps = args.capacity if args.capacity is not None else (len(settings.roster) or None)
    options = {
        "is_business_day": settings.calendar.is_business_day, "window": Window(args.start, args.end), "reps": reps,
        "cap": args.cap if args.cap is not None else settings.pql_daily_cap,
        "minimum": args.min_sample if args.min_sample is not None else MIN_SAMPLE,
    }
    if args.store:
        import sqlalchemy as sa  # only for the store: a file's replay starts 0.1 s sooner without it

        from bot.cli.db import cannot_open

        try:
            mine, theirs, invalid, events = _replay_store(settings, sets, options)
        except sa.exc.SQLAlchemyError as exc:
            return cannot_open("backtest", settings.database_url, exc)
    else:
        try:
            mine, theirs, invalid, events = _replay_file(args.events, sets, settings.tz, options,
                                                         split.processes_for(args.processes))
        except UNREADABLE as exc:
            print(f"pqlbot backtest: {unreadable(exc)}: {args.events}", file=sys.stderr)
            return 2
        except split.Failed as exc:
            print(f"pqlbot backtest: {exc}", file=sys.stderr)
            return 2
    for number, reason in invalid:
        print(f"line {number}: {reason}", file=sys.stderr)
    label = str(args.rules or settings.pql_rules_file or "the seed 002 model")
    diff = differences(mine, theirs) if theirs is not None else None
    if args.json:
        out = mine.to_json()
        if theirs is not None:
            out["against"] = {"rules": str(args.against), **theirs.to_json()}
            out["differences"] = [d.to_json() for d in diff]
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif not events:  # an empty file, or every line invalid: a table of zeros would say nothing
        source = "the store" if args.store else args.events
        print(f"Backtest of {source}: no events to replay"
              + (f" ({len(invalid)} invalid line(s), listed above)." if invalid else "."))
    else:
        sides = [{"label": label, "bt": mine}]
        if theirs is not None:
            sides.append({"label": str(args.against), "bt": theirs})
        sys.stdout.write(_text(sides, diff, args, options, CONVERSION_DAYS, settings))
    if invalid:
        print(f"{len(invalid)} invalid line(s) skipped; {events} events replayed", file=sys.stderr)
    return 1 if invalid else 0


def _text(sides: list[dict], diff: list | None, args: argparse.Namespace, options: dict, days: int,
          settings: Settings) -> str:
    from bot.domain.guardrails import VOLUME_PER_REP, VOLUME_STREAK
    from templates import render

    bt = sides[0]["bt"]
    first = bt.days[0].date if bt.days else args.start
    last = bt.days[-1].date if bt.days else args.end
    span = f"{first} to {last}" if first and last else "no events"
    return render("calibration/backtest.txt.j2", sides=sides, diff=diff, limit=50, days=days,
                  source="the store" if args.store else args.events, span=span, tz=settings.pql_timezone,
                  minimum=options["minimum"], per_rep=VOLUME_PER_REP, streak=VOLUME_STREAK,
                  fmt=_share, interval=_interval, points=_points)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"


def _interval(value: tuple[float, float] | None) -> str:
    return "" if value is None else f"({value[0]:.1%}-{value[1]:.1%})"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} pt"

