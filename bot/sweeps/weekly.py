"""The week's rhythm, as sweeps (bot/sweeps.py): the Friday review post and the manager's escalations.

- `weekly_review`: from Friday 10:00 team time (seed 002: "Every Friday at 10 AM"), the week's review is
  owed to the PQL channel: one outbox notice of kind "review" per ISO week (key `weekly-review:2026-W45`),
  whose text is the week. Delivery renders it when it sends it (blocks, then the chart as a PNG upload),
  so the post carries the figures as of sending, not as of queueing.
- `review_triggers`: once a week has completed (from Monday's opening on), the sales manager gets a DM
  when acceptance was under 30% for the last two completed weeks (`acceptance-low:<week>`) and when SLA
  compliance was under 80% in the last one (`sla-low:<week>`), seed 002's escalation triggers.

Both are safe to run every few minutes, twice, or from two processes: every notice has a unique key,
and a week's triggers are not even computed once both of its notices exist.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot.domain.periods import Period, last_complete_week, period_key
from bot.domain.targets import ACCEPTANCE_ESCALATION, SLA_ESCALATION
from bot.review import fmt, roster_size, words
from bot.services import outbox
from bot.services.metrics import compute
from bot.store.models import Notice

if TYPE_CHECKING:
    from bot.sweeps.runner import Sweeps

REVIEW_WEEKDAY = 4  # Friday
REVIEW_AT = time(10)


def review_due(week: Period, tz) -> datetime:
    """When `week`'s review is owed: its Friday at 10:00 in the team timezone (DST included)."""
    return datetime.combine(week.start + timedelta(days=REVIEW_WEEKDAY), REVIEW_AT, tz)


def _exists(session: Session, key: str) -> bool:
    return session.exec(select(Notice.id).where(Notice.key == key)).first() is not None


def weekly_review(sweeps: Sweeps, now: datetime) -> int:
    """Queue this week's review once it is due; returns 1 when it queued it now, else 0."""
    settings = sweeps.settings
    week = Period.week_of(now.astimezone(settings.tz).date())
    if now < review_due(week, settings.tz):
        return 0
    label = period_key(week)
    key = f"weekly-review:{label}"
    with sweeps.pipeline.session() as session, session.begin():
        if _exists(session, key):
            return 0
        outbox.review(session, settings.pql_alerts_channel, label, now=now)
    return 1


def review_triggers(sweeps: Sweeps, now: datetime) -> int:
    """DM the manager about the last completed week when it calls for it; returns how many DMs it queued."""
    settings = sweeps.settings
    manager = settings.pql_manager
    if not manager:
        return 0
    last = last_complete_week(now, settings.tz)
    monday_open = datetime.combine(last.end + timedelta(days=1), settings.calendar.opens, settings.tz)
    if now < monday_open:  # the week has only just ended: wait for the working day, and for Friday's leads
        return 0
    label = period_key(last)
    acceptance_key, sla_key = f"acceptance-low:{label}", f"sla-low:{label}"
    queued = 0
    with sweeps.pipeline.session() as session, session.begin():
        owed = [key for key in (acceptance_key, sla_key) if not _exists(session, key)]
        if not owed:
            return 0
        reps = roster_size(session, len(settings.roster))
        figures = compute(session, last, calendar=settings.calendar, reps=reps, now=now)
        if acceptance_key in owed and figures.acceptance is not None and figures.acceptance < ACCEPTANCE_ESCALATION:
            before = Period.week_of(last.start - timedelta(days=7))
            earlier = compute(session, before, calendar=settings.calendar, reps=reps, now=now)
            if earlier.acceptance is not None and earlier.acceptance < ACCEPTANCE_ESCALATION:
                text = words("dm_acceptance_low", week=label, value=fmt(figures.acceptance, "rate"),
                             previous_week=period_key(before), previous=fmt(earlier.acceptance, "rate"))
                outbox.dm(session, manager, acceptance_key, text, now=now)
                queued += 1
        if sla_key in owed and figures.sla_compliance is not None and figures.sla_compliance < SLA_ESCALATION:
            text = words("dm_sla_low", week=label, value=fmt(figures.sla_compliance, "rate"))
            outbox.dm(session, manager, sla_key, text, now=now)
            queued += 1
    return queued


#: For bot.sweeps.default_steps: (name, function(sweeps, now) -> count).
STEPS = [("weekly_review", weekly_review), ("review_triggers", review_triggers)]
