"""The demo's sales desk: a simulated team working the sample's leads on the replay's frozen clock.

Two SDRs (Ana Ruiz, Ben Okafor) and their manager (Maria Chen), business hours 09:00-18:00 New York, Monday to
Friday, a daily cap of `CAP` leads a rep. Everything they see comes from the real services and sweeps on the demo's
store: routing within the cap (the fast lane never capped), the queue drained at the next opening, the SLA clocks
in business time, the `@here` and the manager's escalations, the Friday review with its chart. What the demo
scripts is only what people would click, each at a business minute after what prompted it:

- a rep claims a lead `CLAIM_AFTER` after it reaches them (at the next opening when it came at night), and logs
  Email 1 `TOUCH_AFTER` after the claim; the first leads touched get a disposition two business days later;
- a rep is away for an afternoon (`AWAY`: `/pql pause`, then `/pql resume`), so the other reaches the cap;
- nobody claims the lead of `IGNORED` (the cap sent it to the queue): the thread gets its `@here` after 1
  business hour, the manager a DM after 2 (the next morning: the clock stops at night), and only then does its
  rep claim it.

What Slack would show (thread replies, DMs, channel posts) is read back from the outbox, as it is queued.
"""

from __future__ import annotations

import heapq
import itertools
import re
import shutil
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from rich.console import Console
from rich.text import Text
from sqlmodel import select

from bot.demo.sample import SAMPLE_TZ
from bot.domain.sla import HERE_AFTER, MANAGER_AFTER, clock_starts
from bot.services import leads
from bot.services.leads import Refused
from bot.services.pipeline import Pipeline
from bot.settings import Settings
from bot.store.models import AuditEntry, Notice, Pql, TrialUser
from bot.sweeps.runner import Sweeps, default_steps

ANA, BEN, MARIA = "U0ANA", "U0BEN", "U0MARIA"
NAMES = {ANA: "Ana Ruiz", BEN: "Ben Okafor", MARIA: "Maria Chen (manager)"}
#: New leads a rep may take a day (the fast lane is never capped).
CAP = 2
CLAIM_AFTER, TOUCH_AFTER = timedelta(minutes=20), timedelta(minutes=40)
#: Ben is at a customer's on Thursday afternoon (`/pql pause`), back before Friday's opening: with Ana at her cap,
#: Thursday's last lead waits in the queue.
AWAY = (BEN, datetime(2026, 11, 5, 13, 0, tzinfo=SAMPLE_TZ), datetime(2026, 11, 6, 8, 50, tzinfo=SAMPLE_TZ))
#: Whose lead nobody picks up until the manager has heard of it: Tara Ivanova's (the sample's user-05), the one
#: Thursday's cap sends to the queue, so its clock runs through the night.
IGNORED = "user-05"
#: The dispositions of the first leads touched, in order (the rest stay open for the review).
DISPOSITIONS = ("meeting_set", "nurture", "meeting_set", "disqualified")
#: The sweeps the desk runs at each moment (the replay rescores at each midnight itself; the review's Monday triggers
#: are left out: they compare weeks, and the sample has two).
STEPS = ("queue", "holds", "escalate", "follow_ups", "stale_claims", "guardrail", "weekly_review")
#: The Friday review's moment (bot/sweeps/weekly_review.py).
REVIEW_AT = time(10)
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
_LINK = re.compile(r"<[^|>]+\|([^>]+)>")


def team_settings(settings: Settings) -> Settings:
    """The demo team's settings (the product name and rules file are the caller's)."""
    return Settings(_env_file=None, pql_timezone="America/New_York", pql_rules_file=settings.pql_rules_file,
                    product_name=settings.product_name, database_url="sqlite://",
                    pql_reps=f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor", pql_manager=MARIA, pql_daily_cap=CAP,
                    pql_business_hours="09:00-18:00", pql_holidays="", pql_alerts_channel="#pql-alerts")


def slack_words(text: str) -> str:
    """Slack mrkdwn as a person reads it in the client: mentions by name, links by their label."""
    text = _MENTION.sub(lambda m: "@" + NAMES.get(m.group(1), m.group(1)).removesuffix(" (manager)"), text)
    return _LINK.sub(lambda m: m.group(1), text.replace("<!here>", "@here")).replace("*", "")


class Desk:
    """The team at work between the replay's events: `until(moment)` runs everything due up to it, in order."""

    def __init__(self, pipeline: Pipeline, settings: Settings, console: Console, folder: Path,
                 set_clock: Callable[[datetime], None]) -> None:
        self.pipeline, self.settings, self.console, self.folder = pipeline, settings, console, folder
        self.set_clock, self.calendar, self.tz = set_clock, settings.calendar, settings.tz
        self.sweeps = Sweeps(pipeline, pipeline.router, settings, steps=default_steps(*STEPS))
        self._due: list[tuple[datetime, int, str, Callable[[datetime], None]]] = []
        self._order = itertools.count()
        self._audit = self._notice = 0
        self._touched: list[int] = []
        self.charts: list[Path] = []
        self.last_day = None  # the replay's last day: its Friday review is shown in full
        self.escalations = 0

    # -- the timeline -------------------------------------------------------------------------------------------

    def at(self, moment: datetime, what: str, do: Callable[[datetime], None]) -> None:
        heapq.heappush(self._due, (moment, next(self._order), what, do))

    def open_days(self, first: datetime, last: datetime) -> None:
        """A sweep at every opening (the queue is drained then) and at each Friday's review time; the rep who
        is away pauses and resumes."""
        self.last_day = last.astimezone(self.tz).date()
        rep, leaves, returns = AWAY
        self.at(leaves, "pause", lambda now: self._act(lambda s: leads.set_paused(s, rep, True, now=now)))
        self.at(returns, "resume", lambda now: self._act(lambda s: leads.set_paused(s, rep, False, now=now)))
        day = first.astimezone(self.tz).date()
        while day <= last.astimezone(self.tz).date():
            if self.calendar.is_business_day(day):
                self.at(datetime.combine(day, self.calendar.opens, self.tz), "opening", self._sweep)
                if day.weekday() == 4:
                    self.at(datetime.combine(day, REVIEW_AT, self.tz), "review", self._sweep)
            day += timedelta(days=1)

    def until(self, moment: datetime) -> None:
        while self._due and self._due[0][0] <= moment:
            at, _, _, do = heapq.heappop(self._due)
            self.set_clock(at)
            do(at)
            self.said(at)

    def _sweep(self, at: datetime) -> None:
        self.sweeps.run_due(at)

    # -- what people see ----------------------------------------------------------------------------------------

    def said(self, at: datetime) -> None:
        """Print what the store recorded since last asked: routing and stops (the audit), and what Slack is owed
        (the outbox); then schedule what follows from it."""
        with self.pipeline.session() as session:
            entries = session.exec(select(AuditEntry).where(AuditEntry.id > self._audit)
                                   .order_by(AuditEntry.id)).all()
            notices = session.exec(select(Notice).where(Notice.id > self._notice).order_by(Notice.id)).all()
            wanted = {e.pql_id for e in entries} | {n.pql_id for n in notices}
            refs = {p.id: p for p in session.exec(select(Pql).where(Pql.id.in_(wanted - {None})))} if wanted else {}
        for entry in entries:
            self._audit = entry.id
            self._follow(entry, refs.get(entry.pql_id))
        for notice in notices:
            self._notice = notice.id
            self._show(notice, refs.get(notice.pql_id))

    def _line(self, at: datetime, icon: str, text: str, style: str = "") -> None:
        local = at.astimezone(self.tz)
        self.console.print(Text(f"  {local:%a %H:%M}  {icon} ", style="dim") + Text(text, style=style))

    def _follow(self, entry: AuditEntry, pql: Pql | None) -> None:
        detail, ref = entry.detail or {}, pql.ref if pql else "?"
        rep = NAMES.get(detail.get("rep") or "", detail.get("rep"))
        if entry.action == "pql_triggered" and pql is not None:
            self._schedule_escalations(pql)
        elif entry.action in ("pql_assigned", "pql_reassigned"):
            why = f" — {detail['why']}" if detail.get("why") else ""
            self._line(entry.at, "→", f"{ref} to {rep}{why}", "cyan")
            self._plan_claim(entry, pql)
            if pql is not None and pql.sla_due_at is not None:
                self.at(pql.sla_due_at + timedelta(seconds=1), "sla", self._sweep)
        elif entry.action == "pql_queued":
            self._line(entry.at, "⏸", f"{ref} queued — {detail.get('why')}", "yellow")
        elif entry.action == "pql_stopped":
            self._line(entry.at, "⏹", f"{ref} stopped: {detail.get('reason')} — its outreach sequence ends",
                       "magenta")
        elif entry.action in ("rep_paused", "rep_resumed"):
            paused = entry.action == "rep_paused"
            self._line(entry.at, "⏸" if paused else "▶", f"{NAMES.get(entry.actor, entry.actor)} " + (
                "is away (/pql pause): no new leads for now" if paused else "is back (/pql resume)"), "yellow")
        elif entry.action == "pql_held":
            self._line(entry.at, "⏸", f"{ref} on hold, do not touch ({detail.get('reason')})", "magenta")
        elif entry.action == "pql_claimed" and pql is not None:
            self.at(self.calendar.add(entry.at, TOUCH_AFTER), "touch", self._touch(pql.id, detail.get("rep")))
        elif entry.action == "touch_logged" and pql is not None and len(self._touched) < len(DISPOSITIONS) \
                and pql.id not in self._touched:
            disposition = DISPOSITIONS[len(self._touched)]
            self._touched.append(pql.id)
            self.at(self.calendar.add_days(entry.at, 2), "disposition",
                    self._dispose(pql.id, entry.actor, disposition))

    def _show(self, notice: Notice, pql: Pql | None) -> None:
        if notice.kind == "alert" or notice.state == "folded":
            return
        text = slack_words(notice.text or "")
        if notice.key.startswith(("esc-", "digest-")):
            self.escalations += 1
        if notice.kind == "reply":
            first, *rest = text.splitlines() or [""]
            self._line(notice.created_at, "💬", f"in {pql.ref if pql else '?'}'s thread: {first}"
                       + (" …" if rest else ""))
        elif notice.kind == "dm":
            who = NAMES.get(notice.target or "", notice.target)
            first = text.splitlines()[0] if text else ""
            self._line(notice.created_at, "✉", f"DM to {who}: {first}", "bold" if notice.target == MARIA else "")
        elif notice.kind == "channel":
            self._line(notice.created_at, "📣", f"{notice.target}: {text.splitlines()[0] if text else ''}", "bold")
        elif notice.kind == "review":
            self._review(notice)

    # -- the reps' clicks ---------------------------------------------------------------------------------------

    def _plan_claim(self, entry: AuditEntry, pql: Pql | None) -> None:
        if pql is None or entry.detail.get("rep") is None:
            return
        rep = entry.detail["rep"]
        start = self.calendar.next_open(entry.at)
        with self.pipeline.session() as session:
            user = session.get(TrialUser, pql.user_id)
        if user is not None and user.user_id == IGNORED:
            # Nobody looks until the manager has been told (2 business hours after the clock started).
            start = self.calendar.add(clock_starts(pql.created_at, self.calendar), MANAGER_AFTER)
        self.at(self.calendar.add(start, CLAIM_AFTER), "claim", self._claim(pql.id, rep))

    def _act(self, act: Callable[..., object]) -> None:
        with self.pipeline.session() as session, session.begin():
            try:
                act(session)
            except Refused:
                pass  # the lead moved on meanwhile (stopped, claimed, closed): nothing for this rep to do

    def _claim(self, pql_id: int, rep: str) -> Callable[[datetime], None]:
        def claim(now: datetime) -> None:
            self._act(lambda session: leads.claim(session, session.get(Pql, pql_id),
                                                  leads.actor(session, rep, manager=MARIA), now=now, tz=self.tz,
                                                  cap=CAP))
        return claim

    def _touch(self, pql_id: int, rep: str) -> Callable[[datetime], None]:
        def touch(now: datetime) -> None:
            self._act(lambda session: leads.log_touch(session, session.get(Pql, pql_id),
                                                      leads.actor(session, rep, manager=MARIA), channel="email",
                                                      email_key="email1", note=None, now=now))
        return touch

    def _dispose(self, pql_id: int, rep: str, disposition: str) -> Callable[[datetime], None]:
        def dispose(now: datetime) -> None:
            self._act(lambda session: leads.set_disposition(session, session.get(Pql, pql_id),
                                                            leads.actor(session, rep, manager=MARIA),
                                                            disposition=disposition, reason=None, now=now))
        return dispose

    # -- the clocks ---------------------------------------------------------------------------------------------

    def _schedule_escalations(self, pql: Pql) -> None:
        """A sweep at each rung of the lead's escalation ladder, so each message comes at its business minute (the
        first-touch SLA's is scheduled when the lead is routed: its due time is set then)."""
        start = clock_starts(pql.created_at, self.calendar)
        for moment in (self.calendar.add(start, HERE_AFTER), self.calendar.add(start, MANAGER_AFTER)):
            self.at(moment, "escalation", self._sweep)

    # -- the Friday review --------------------------------------------------------------------------------------

    def _review(self, notice: Notice) -> None:
        from bot.domain.periods import parse_period
        from bot.review import chart, for_settings, formats

        week = notice.text or "this"
        at = notice.created_at
        if at.astimezone(self.tz).date() != self.last_day:  # an earlier week's: its headline
            self._line(at, "📊", f"#pql-alerts: the Friday review of {week} (`pqlbot review --week {week}`)", "bold")
            return
        period = parse_period(week, today=at.astimezone(self.tz).date())
        with self.pipeline.session() as session:
            shown = for_settings(session, period, settings=self.settings, now=at)
        self._line(at, "📊", f"#pql-alerts: the Friday review of {week}", "bold")
        drawn = chart.render(shown.metrics, cap=self.settings.pql_daily_cap)
        path = self.folder / f"review-{week}.png"
        shutil.move(drawn, path)
        self.charts.append(path)
        for line in formats.text(shown, self.tz).splitlines():
            self.console.print(Text("      " + line))
        self.console.print(Text(f"      Chart: {path}", style="bold"))
