"""`pqlbot demo`: the bundled sample's two weeks, replayed through the real pipeline in a few seconds.

No Slack and no tokens. A fresh SQLite store in a working folder; the sample's events streamed in time
order, each ingested at its own time (the clock is the event's); the daily sweep at every midnight in
the sample's timezone; a panel for each PQL as it is raised or upgraded, with the alert Slack would
get; between the events, a simulated team of two SDRs and a manager at work on those leads (bot/demo/desk.py:
routing within the cap, the queue drained at the opening, claims, touches, dispositions, the SLA clock's
escalations, the Friday review and its chart); then the verdicts and the leads as of `SAMPLE_AS_OF`.
Orchestration and printing only: verdicts come from the pipeline, words from the templates.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlmodel import select

from bot.cli import report
from bot.demo import desk as team
from bot.demo.sample import SAMPLE_AS_OF, SAMPLE_PATH, SAMPLE_TZ, expected_reasons
from bot.services import outreach
from bot.services.alert_text import alert_text
from bot.services.pipeline import Pipeline, for_team
from bot.services.rescore import Rescored
from bot.settings import Settings
from bot.store import open_store
from bot.store.models import Pql, TrialUser
from scoring import Event, ScoreResult, Status, Tier, parse_event
from templates import sentences

MARKER = ".pqlbot-demo"  # only a folder carrying this (or an empty one) is ever wiped
PAUSE_SECONDS = 0.25
TIER_STYLE = {"fast_lane": "bold yellow", "high": "bold red", "medium": "green"}
_bands = sentences("scoring/bands.j2")


class FolderInUse(Exception):
    """The working folder holds something the demo did not make; it is left alone."""


def fresh_folder(folder: Path) -> Path:
    if folder.exists():
        if not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).exists()):
            raise FolderInUse(f"{folder} exists and is not a pqlbot demo folder; pick another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("Made by `pqlbot demo`; wiped and recreated on each run.\n")
    return folder


def _when(at: datetime) -> str:
    local = at.astimezone(SAMPLE_TZ)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _company(name: str | None, size: int | None) -> str:
    return f"{name or '?'}" + (f" ({size:,} people)" if size else "")


def _name(user: TrialUser) -> str:
    return " ".join(filter(None, (user.first_name, user.last_name))) or user.email or user.user_id


class Replay:
    """The pipeline, plus what a watcher needs to see of it."""

    def __init__(self, pipeline: Pipeline, console: Console, *, product_name: str, pause: bool,
                 desk: team.Desk | None = None) -> None:
        self.pipeline, self.console, self.product_name, self.pause = pipeline, console, product_name, pause
        self.desk = desk
        self.tiers: dict[int, str] = {}  # the tier each PQL was last shown at

    def show(self, rescored: Rescored, at: datetime, source: str) -> None:
        for pql_id in rescored.triggered + rescored.upgraded:
            self.console.print(self.panel(pql_id, rescored.results[pql_id], at, source))
            if self.pause:
                time.sleep(PAUSE_SECONDS)

    def panel(self, pql_id: int, result: ScoreResult, at: datetime, source: str) -> Panel:
        with self.pipeline.session() as session:
            pql = session.get(Pql, pql_id)
        context = outreach.LeadContext.from_result(result, product_name=self.product_name, at=at, tz=self.pipeline.tz)
        talk = outreach.talk_track(context)
        tier, before = Tier(pql.tier), self.tiers.get(pql_id)
        self.tiers[pql_id] = pql.tier
        label = report.TIER_LABEL[tier]
        headline = f"{pql.ref} · " + (f"upgraded {report.TIER_LABEL[Tier(before)]} → {label}" if before else label)
        profile = result.profile
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("Who", Text(", ".join(filter(None, (profile.name, profile.title)))
                                 + f" — {_company(result.account.company_name, result.company_size)}"))
        grid.add_row("Email", Text(result.email or "?"))
        band = _bands.table("band_labels").get(result.band, result.band)
        grid.add_row("Account", Text(f"{band} · {_bands('acv', amount=result.acv_potential)}"))
        if tier is Tier.FAST_LANE:  # not points: an explicit ask qualifies at once, whatever they are
            ask = next((s for s in result.signals if s.name == "explicit_ask"), None)
            said = f"{ask.evidence} on day {ask.day}" if ask else "an explicit ask"
            grid.add_row("Why", Text(f"{label} · {said}: an explicit ask qualifies at once, whatever the points",
                                     style=TIER_STYLE[pql.tier]))
        else:
            grid.add_row("Score", Text(f"{result.score}/{result.max_score} · {label}", style=TIER_STYLE[pql.tier]))
        grid.add_row("Trial", f"day {result.trial_day}, {result.days_left} day{'s' * (result.days_left != 1)} left")
        grid.add_row("Signals", Text(report.signal_summary(result)))
        grid.add_row("Talk track", Text(talk))
        alert = Padding(Text(alert_text(pql.ref, result, talk_track=talk), style="italic"), (0, 0, 0, 2))
        body = Group(grid, Text("Slack alert would say:", style="dim"), alert)
        return Panel(body, title=Text(headline, style=TIER_STYLE[pql.tier]), title_align="left",
                     subtitle=f"{_when(at)} · {source}", subtitle_align="right", border_style=TIER_STYLE[pql.tier])

    def _until(self, moment: datetime) -> None:
        """The team's work due before `moment` (nothing without a desk)."""
        if self.desk is not None:
            self.desk.until(moment)

    def _said(self, moment: datetime) -> None:
        if self.desk is not None:
            self.desk.said(moment)

    def run(self, events: list[Event]) -> None:
        previous: date | None = None
        if self.desk is not None and events:
            self.desk.open_days(events[0].at, SAMPLE_AS_OF)
        for day, batch in groupby(events, key=lambda e: e.at.astimezone(SAMPLE_TZ).date()):
            batch = list(batch)
            today = day if previous is None else previous + timedelta(days=1)
            while today <= day:  # every day, including the weekend's quiet ones
                midnight = datetime.combine(today, datetime.min.time(), SAMPLE_TZ)
                self._until(midnight)
                self.console.rule(f"[bold]{_day(today)}")
                if previous is not None:  # the daily sweep: holds expire, windows close, trial clocks move
                    self.show(self.pipeline.rescore_all(at=midnight), midnight, "daily sweep")
                    self._said(midnight)
                today += timedelta(days=1)
            users = len({e.user_id for e in batch})
            self.console.print(f"[dim]{len(batch)} events from {users} users[/]")
            for event in batch:
                self._until(event.at)
                if self.desk is not None:
                    self.desk.set_clock(event.at)
                self.show(self.pipeline.ingest([event], at=event.at).rescored, event.at, event.name)
                self._said(event.at)
            previous = day
        self._until(SAMPLE_AS_OF)
        self.console.rule(f"[bold]{_when(SAMPLE_AS_OF)} {SAMPLE_AS_OF.astimezone(SAMPLE_TZ):%Z}: the verdicts")
        self.show(self.pipeline.rescore_all(at=SAMPLE_AS_OF), SAMPLE_AS_OF, "final sweep")
        self._said(SAMPLE_AS_OF)

    def summary(self) -> None:
        with self.pipeline.session() as session:
            users = {u.user_id: u for u in session.exec(select(TrialUser))}
            pqls = session.exec(select(Pql).order_by(Pql.id)).all()
        counts = Counter(Status(u.status) for u in users.values())
        verdicts = Table(box=box.SIMPLE, title="Every user's verdict", title_justify="left")
        shown = [status for status in report.STATUS_STYLE if counts[status]]
        for status in shown:
            verdicts.add_column(Text(str(status), style=report.STATUS_STYLE[status]), justify="right")
        verdicts.add_column("all", justify="right")
        verdicts.add_row(*(str(counts[status]) for status in shown), str(len(users)))
        self.console.print(verdicts)

        # A lead a row of two columns, not a table of eight: it reads the same in an 80-column terminal.
        self.console.print(f"\n[bold]PQLs raised: {len(pqls)}[/], one per user and trial")
        leads = Table.grid(padding=(0, 2))
        leads.add_column(no_wrap=True)
        leads.add_column()
        for pql in pqls:
            user, qualified = users[pql.user_id], pql.qualified_at.astimezone(SAMPLE_TZ).date()
            score = "" if pql.tier == "fast_lane" else f" {pql.score}/{user.verdict['max_score']}"
            lead = pql.state.replace("_", " ") + (f", {pql.disposition.replace('_', ' ')}" if pql.disposition else "")
            rep = team.NAMES.get(pql.claimed_by or pql.rep_id or "", "nobody")
            leads.add_row(pql.ref, Text.assemble(
                (report.TIER_LABEL[Tier(pql.tier)] + score, TIER_STYLE[pql.tier]), "  ",
                ", ".join(filter(None, (_name(user), user.company_name))), "\n",
                f"qualified {_day(qualified)} · now ",
                (user.status.replace("_", " "), report.STATUS_STYLE[Status(user.status)]), f" · {rep}: {lead}"))
        self.console.print(Padding(leads, (0, 0, 0, 2)))

        by_user = {pql.user_id: pql for pql in pqls}
        why_not = Table.grid(padding=(0, 2))
        why_not.add_column(no_wrap=True)
        why_not.add_column()
        for user_id in expected_reasons():  # the sample's named users who are there to be turned away
            user = users.get(user_id)
            if user is None or user.status == "qualified":
                continue
            why = f"{user.status}: " + "; ".join(reason["detail"] for reason in user.verdict["reasons"])
            if user_id in by_user:
                why += f" (after {by_user[user_id].ref} was raised {_when(by_user[user_id].qualified_at)})"
            why_not.add_row(Text(_name(user)), Text(why))
        self.console.print("[bold]Not routed, and why[/]")
        self.console.print(Padding(why_not, (0, 0, 0, 2)))


def sample_events(pipeline: Pipeline) -> list[Event]:
    with SAMPLE_PATH.open(encoding="utf-8") as lines:
        events = [parse_event(line, pipeline.rules) for line in lines if line.strip()]
    return sorted((e for e in events if e.at <= SAMPLE_AS_OF), key=lambda e: (e.at, e.message_id))


def run(folder: Path, settings: Settings, *, fast: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    started = time.monotonic()
    database = fresh_folder(folder) / "pqlbot.db"
    engine = open_store(f"sqlite:///{database}")
    clock = [SAMPLE_AS_OF]  # the replay's frozen clock: moved by the replay and the desk, never by the wall
    try:
        settings = team.team_settings(settings)
        pipeline = for_team(engine, settings, clock=lambda: clock[0])
        pipeline.processes = 1  # a few dozen users: no process pool
        events = sample_events(pipeline)
        console.print(f"[bold]pqlbot demo[/]: {len({e.user_id for e in events})} trial users, {len(events)} "
                      f"events, replayed into {database}. No Slack needed: each PQL shows the alert Slack would get, "
                      f"and the team ({', '.join(team.NAMES.values())}; business hours "
                      f"{settings.pql_business_hours} New York, {team.CAP} new leads a rep a day) works them.")
        desk = team.Desk(pipeline, settings, console, folder, set_clock=lambda at: clock.__setitem__(0, at))
        replay = Replay(pipeline, console, product_name=settings.product_name,
                        pause=not fast and sys.stdout.isatty(), desk=desk)
        replay.run(events)
        replay.summary()
    finally:
        engine.dispose()
    charts = ", ".join(str(path) for path in desk.charts) or "none"
    console.print(f"[dim]Done in {time.monotonic() - started:.1f} s (pauses included). The store: {database}. "
                  f"The review's charts: {charts}[/]")
    return 0
