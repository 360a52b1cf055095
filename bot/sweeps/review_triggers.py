"""The review's escalation triggers (seed 002, section 5): the sales manager hears when the last weeks call for it.

The heuristic (the bars are bot/domain/targets.py's, the figures bot/services/metrics.py's):
- once a week has completed, from Monday's opening on (so Friday's leads have had their working day);
- acceptance under 30% for the last two completed weeks: a DM (`acceptance-low:<week>`);
- SLA compliance under 80% in the last completed week: a DM (`sla-low:<week>`).
A week's figures are not even computed once both of its notices exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.periods import Period, last_complete_week, period_key
from bot.domain.targets import ACCEPTANCE_ESCALATION, SLA_ESCALATION
from bot.review import fmt, roster_size, words
from bot.services import outbox
from bot.services.metrics import compute
from bot.sweeps.common import SweepContext, taken


def review_triggers(sweeps: SweepContext, now: datetime) -> int:
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
        existing = taken(session, [acceptance_key, sla_key])
        owed = [key for key in (acceptance_key, sla_key) if key not in existing]
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
