"""`pqlbot ingest` (JSON-lines events into the store, scored as they land) and `pqlbot rescore` (everyone).

Both go through `Pipeline`, as the HTTP endpoints do. Ingest streams the file: events go to the store
in chunks of `CHUNK` (each chunk one transaction), so a big backfill never holds the whole file in
memory and an interrupted one is safe to run again (replays are duplicates). The users it touched are
scored once, at the end: judged chunk by chunk, a user whose history straddles two chunks could be
made a PQL on half of it (and a PQL, once recorded, stays). A rerun rescores them too, duplicates
or not, so an interrupted backfill is finished by running it again.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

import sqlalchemy as sa

from bot.cli.common import UNREADABLE, moment, not_json_lines, open_lines, position, unreadable
from bot.cli.db import cannot_open
from bot.cli.parsing import ParsedLines, workers_for
from bot.settings import Settings
from scoring import Event, Rules, load_rules, paused_gc

if TYPE_CHECKING:
    from rich.progress import Progress

    from bot.services.pipeline import Pipeline, RoutingLeftToSweep, RoutingUndid

CHUNK = 50_000  # events per transaction: fewer, bigger commits write each index page fewer times
SHOW_REJECTED = 20  # rejected lines listed in the summary; the rest are counted


def add(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "rescore":
        rescore = parser
        rescore.description = "Rescore everyone in the store as of a moment and record new or upgraded PQLs."
        rescore.add_argument("--at", type=moment, help="judge as of this time (ISO 8601; default now)")
        rescore.add_argument("--if-due", action="store_true",
                             help="only when the last rescore is older than RESCORE_EVERY_HOURS or used other rules")
        rescore.set_defaults(run=run_rescore)
        return
    ingest = parser
    ingest.description = ("Store Segment calls (JSON lines: track, page, identify, group, alias...); replayed calls "
                          "(same messageId) are skipped.")
    ingest.add_argument("file", metavar="FILE", help="events file (JSON lines), or - for standard input")
    ingest.add_argument("--at", type=moment, help="score as of this time (ISO 8601; default now)")
    ingest.add_argument("--no-score", dest="score", action="store_false",
                        help="only store the events; `pqlbot rescore` scores them later")
    ingest.set_defaults(run=run_ingest)


@dataclass(slots=True)
class Tally:
    """What an ingest run did, for the summary."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)  # the first SHOW_REJECTED
    triggered: int = 0
    upgraded: int = 0
    left_to_sweep: RoutingLeftToSweep | None = None  # the new leads' routing failed (SQLite): the queue sweep's now
    undone: RoutingUndid | None = None  # the new leads' routing failed in the scoring's transaction: scoring undone

    def reject(self, number: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < SHOW_REJECTED:
            self.rejections.append((number, reason))

    def counts(self) -> str:
        return f"{self.accepted:,} new · {self.duplicates:,} duplicate · {self.rejected:,} rejected"


def open_pipeline(url: str, settings: Settings, command: str, rules: Rules | None = None) -> Pipeline | None:
    """The store at `url`, migrated to head, behind the team's pipeline (scoring and routing, with `rules` when
    they are loaded already); None (with a message) when it can't be opened."""
    from alembic.util import CommandError

    from bot.services.pipeline import for_team
    from bot.store import open_store

    try:
        engine = open_store(url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        cannot_open(command, url, exc)
        return None
    return for_team(engine, settings, rules=rules)


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    if (shape := not_json_lines(args.file)) is not None:
        print(f"pqlbot ingest: {args.file} is {shape}", file=sys.stderr)
        return 2
    try:
        lines = open_lines(args.file)
    except OSError as exc:
        print(f"pqlbot ingest: {exc.strerror}: {args.file}", file=sys.stderr)
        return 2
    # The parsing worker starts first, on the rules alone: it parses the file's first blocks while this process
    # opens and migrates the store (a second of imports and statements), and it inherits no database connection.
    rules = load_rules(settings.pql_rules_file)
    with lines as stream, ParsedLines(stream, rules, workers=workers_for()) as parsed:
        pipeline = open_pipeline(settings.database_url, settings, "ingest", rules)
        if pipeline is None:
            return 2
        tally, stopped = Tally(), None
        try:
            with _progress(stream, args.file, parsed) as progress:
                _ingest(parsed, pipeline, tally, at=args.at or pipeline.clock(), score=args.score, progress=progress)
        except UNREADABLE as exc:
            stopped = (2, unreadable(exc))
        except KeyboardInterrupt:
            stopped = (130, "interrupted")
        finally:
            pipeline.engine.dispose()
    _print_summary(tally, args)
    if stopped:
        code, reason = stopped
        print(f"pqlbot ingest: {reason}: {args.file}, stopped after line {tally.lines}; the {tally.accepted} "
              "accepted above are stored, and running it again skips them", file=sys.stderr)
        return code
    if tally.left_to_sweep:
        print(left_to_sweep("ingest", tally.left_to_sweep), file=sys.stderr)
        return 1
    if tally.undone:
        print(f"pqlbot ingest: the events are stored, but their scoring was undone: {undid(tally.undone)}; run "
              "`pqlbot rescore` once that is fixed", file=sys.stderr)
        return 1
    return 1 if tally.rejected else 0


def _ingest(
    parsed: ParsedLines, pipeline: Pipeline, tally: Tally, *, at: datetime, score: bool, progress: _Progress
) -> None:
    """Store the events, parsed and validated, in chunks, counting what happened on `tally`."""
    from bot.services.pipeline import RoutingLeftToSweep, RoutingUndid

    batch: list[Event] = []
    users: set[str] = set()

    def flush(events: list[Event]) -> None:
        if not events:
            return
        done = pipeline.ingest(events, score=False)
        tally.accepted += done.stored.accepted
        tally.duplicates += done.stored.duplicates
        if score:
            users.update(done.stored.users)  # under the ids they resolve to: an anonymous call has no userId

    with paused_gc():  # parsing makes millions of small acyclic objects: generation scans would find nothing
        for block in parsed:
            for number, reason in block.rejected:
                tally.reject(number, reason)
            batch.extend(block.events)
            tally.lines = block.last
            while len(batch) >= CHUNK:
                flush(batch[:CHUNK])
                del batch[:CHUNK]
            progress.update(tally)
        flush(batch)
    if score and users:
        with paused_gc():
            try:
                done = pipeline.rescore_users(users, at=at)
            except RoutingLeftToSweep as left:
                done, tally.left_to_sweep = left.report, left
            except RoutingUndid as undone:
                tally.undone = undone
                progress.update(tally, done=True)
                return
        tally.triggered += len(done.triggered)
        tally.upgraded += len(done.upgraded)
    progress.update(tally, done=True)


def _print_summary(tally: Tally, args: argparse.Namespace) -> None:
    print(f"accepted: {tally.accepted}")
    print(f"duplicates: {tally.duplicates}")
    print(f"rejected: {tally.rejected}")
    for number, reason in tally.rejections:
        print(f"  line {number}: {reason}")
    if tally.rejected > len(tally.rejections):
        print(f"  ... and {tally.rejected - len(tally.rejections)} more")
    if args.score:
        print(f"PQLs triggered: {tally.triggered}")
        print(f"PQLs upgraded: {tally.upgraded}")
    else:
        print("not scored (--no-score): run `pqlbot rescore` to score them")


def run_rescore(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.pipeline import RoutingLeftToSweep, RoutingUndid

    pipeline = open_pipeline(settings.database_url, settings, "rescore")
    if pipeline is None:
        return 2
    left = None
    try:
        at = args.at or pipeline.clock()
        if args.if_due:
            report = pipeline.rescore_if_due(at=at, every_hours=settings.rescore_every_hours)
            if report is None:
                print(f"not due: the last rescore is under {settings.rescore_every_hours:g} h old "
                      "and used the same rules")
                return 0
        else:
            report = pipeline.rescore_all(at=at)
    except RoutingLeftToSweep as failed:
        report, left = failed.report, failed
    except RoutingUndid as undone:
        print(f"pqlbot rescore: nothing saved: {undid(undone)}; the store is as it was: run it again once that is "
              "fixed", file=sys.stderr)
        return 1
    finally:
        pipeline.engine.dispose()
    print(f"users scored: {report.users}")
    print(f"verdicts changed: {report.changed}")
    print(f"PQLs triggered: {len(report.triggered)}")
    print(f"PQLs upgraded: {len(report.upgraded)}")
    if left:
        print(left_to_sweep("rescore", left), file=sys.stderr)
        return 1
    return 0


def left_to_sweep(command: str, left: RoutingLeftToSweep) -> str:
    """The one line an operator reads when the scoring was saved and routing its new leads failed."""
    leads = f"{left.owed} new lead{'s' if left.owed != 1 else ''}"
    return (f"pqlbot {command}: scoring saved, but routing failed ({left.reason}): {leads} left for the queue "
            "sweep to route (`pqlbot serve` runs it every minute, or run `pqlbot tick`)")


def undid(undone: RoutingUndid) -> str:
    leads = f"{undone.leads} new lead{'s' if undone.leads != 1 else ''}"
    return f"routing its {leads} failed ({undone.reason}), and routing is part of scoring's transaction here"


# -- Progress: on a terminal only ------------------------------------------------------------------------


class _Progress:
    """No progress display: output is going to a file, a pipe or a test."""

    def update(self, tally: Tally, *, done: bool = False) -> None:
        pass


class _RichProgress(_Progress):
    def __init__(self, progress: Progress, stream: TextIO, total: int | None, parsed: ParsedLines) -> None:
        self.progress, self.stream, self.total, self.parsed = progress, stream, total, parsed
        description = "0 lines" if total is None else "ingesting"
        self.task = progress.add_task(description, total=total, counts=Tally().counts())

    def update(self, tally: Tally, *, done: bool = False) -> None:
        if self.total is None:
            self.progress.update(self.task, description=f"{tally.lines:,} lines", counts=tally.counts())
            return
        # The bytes parsed so far (when workers parse), else the bytes the text layer has read so far: a little
        # ahead of the line, which is close enough.
        read = position(self.stream) if self.parsed.position is None else self.parsed.position
        self.progress.update(self.task, completed=self.total if done else min(read, self.total), counts=tally.counts())


def _file_size(stream: TextIO) -> int | None:
    """The size of a regular, non-empty file; None for pipes, terminals and the like."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    regular = stat.S_ISREG(info.st_mode) and hasattr(stream, "buffer")
    return info.st_size if regular and info.st_size else None


@contextmanager
def _progress(stream: TextIO, name: str, parsed: ParsedLines) -> Iterator[_Progress]:
    """A bar over the file's bytes, or a spinner with counts for standard input; nothing off a terminal."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        yield _Progress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = None if name == "-" else _file_size(stream)
    counts = TextColumn("{task.fields[counts]}")
    if total is None:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), counts, TimeElapsedColumn())
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), counts, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _RichProgress(progress, stream, total, parsed)
