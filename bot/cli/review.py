"""`pqlbot review`: the weekly PQL review (or any date range), and with --pilot the 4-week pilot scorecard.

    pqlbot review                                  # the last complete week, in PQL_TIMEZONE
    pqlbot review --week 2026-W45 --format csv
    pqlbot review --from 2026-11-02 --to 2026-11-15 --format json
    pqlbot review --pilot --from 2026-11-02        # weeks 1-4 from that day: Scale, Iterate or Pause
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from bot.cli.common import moment
from bot.cli.db import cannot_open
from bot.clock import utc_now
from bot.settings import Settings

FORMATS = ("text", "json", "csv")


def _week(text: str):
    from bot.domain.periods import iso_week

    try:
        return iso_week(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def add(review: argparse.ArgumentParser, name: str) -> None:
    review.description = ("Figures of seed 002's Friday review against the pilot targets, with action items; or, "
                          "with --pilot, the pilot's success metrics, guardrails and verdict.")
    review.add_argument("--week", type=_week, metavar="YYYY-Www",
                        help="an ISO week (default: the last complete week in PQL_TIMEZONE)")
    review.add_argument("--from", dest="start", type=_day, metavar="DATE", help="first day (YYYY-MM-DD)")
    review.add_argument("--to", dest="end", type=_day, metavar="DATE", help="last day, inclusive")
    review.add_argument("--pilot", action="store_true", help="score the 4-week pilot starting --from")
    review.add_argument("--format", choices=FORMATS, default="text", help="text (default), json or csv")
    review.add_argument("--chart", type=Path, metavar="PNG", help="also draw the review's chart to this file")
    review.add_argument("--at", type=moment, help="as of this time (ISO 8601; default now)")
    review.set_defaults(run=run)


def _problem(args: argparse.Namespace) -> str | None:
    if args.pilot:
        if args.start is None:
            return "--pilot needs --from (the pilot's first day)"
        if args.week or args.end or args.chart:
            return "--pilot takes --from only (the pilot is the 4 weeks from it)"
        return None
    if args.week and (args.start or args.end):
        return "give --week or --from/--to, not both"
    if (args.start is None) != (args.end is None):
        return "give both --from and --to"
    if args.start and args.end < args.start:
        return "--to is before --from"
    return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import review, store
    from bot.domain.periods import Period, last_complete_week

    if problem := _problem(args):
        print(f"pqlbot review: {problem}", file=sys.stderr)
        return 2
    now = args.at or utc_now()
    url = settings.database_url
    try:
        engine = store.open_store(url)
    except sa.exc.SQLAlchemyError as exc:
        return cannot_open("review", url, exc)
    try:
        with store.session(engine) as session:
            reps = review.roster_size(session, len(settings.roster))
            if args.pilot:
                card = review.scorecard(session, args.start, settings.calendar, reps, now)
                out = {"text": lambda: review.scorecard_text(card, settings.tz),
                       "json": lambda: json.dumps(review.scorecard_json(card), indent=2, ensure_ascii=False) + "\n",
                       "csv": lambda: review.scorecard_csv(card)}[args.format]()
            else:
                period = args.week or (Period(args.start, args.end) if args.start else
                                       last_complete_week(now, settings.tz))
                shown = review.review_for(session, period, calendar=settings.calendar, reps=reps,
                                          cap=settings.pql_daily_cap, now=now)
                out = {"text": lambda: review.text(shown, settings.tz),
                       "json": lambda: json.dumps(review.to_json(shown), indent=2, ensure_ascii=False) + "\n",
                       "csv": lambda: review.to_csv(shown)}[args.format]()
                if args.chart:
                    from bot.review import chart

                    print(f"chart: {chart.render(shown.metrics, cap=settings.pql_daily_cap, path=args.chart)}",
                          file=sys.stderr)
    except sa.exc.SQLAlchemyError as exc:
        return cannot_open("review", url, exc)
    finally:
        engine.dispose()
    sys.stdout.write(out)
    return 0
