"""The volume guardrail (seed 002, section 8): "PQL volume > 10/SDR/day for 3+ consecutive days".

The heuristic (bot/domain/guardrails.py):
- PQLs per business day in the team timezone, a day off's leads counted on the next business day (the day they
  reach the reps and their cap), divided by today's roster (at least one rep);
- more than 10 per rep on each of 3 business days running is a streak;
- one DM to the manager per streak, once its third day is over (completed days only), keyed by that day
  (`guardrail-volume:<date>`); the days after it in the same streak add nothing.
The last VOLUME_LOOKBACK completed business days are checked each time, so a streak is still flagged after
days without sweeps. Nothing without a manager.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.domain.caps import day_bounds
from bot.domain.guardrails import VOLUME_PER_REP, VOLUME_STREAK, counts_on, over, per_business_day
from bot.services import outbox
from bot.store.models import Pql, Rep
from bot.sweeps.common import SweepContext, day_words, taken, words

VOLUME_LOOKBACK = 3  # completed business days re-checked, so a streak is still flagged after days without sweeps


def volume_guardrail(sweeps: SweepContext, now: datetime) -> int:
    """More than 10 PQLs per rep per business day for 3 business days running (bot/domain/guardrails.py: leads of
    days off count on the next business day): one DM to the manager per streak, once its third day is over.
    Completed business days only; the roster is today's, at least one rep."""
    calendar, manager = sweeps.settings.calendar, sweeps.settings.pql_manager
    if not manager:
        return 0
    tz, business = calendar.tz, calendar.is_business_day
    today = now.astimezone(tz).date()
    completed = _business_days_before(today, VOLUME_LOOKBACK + VOLUME_STREAK, business)  # newest first
    # From the day after the business day before the oldest one needed: the days off before it count on it.
    first = _business_days_before(completed[-1], 1, business)[0] + timedelta(days=1)
    with sweeps.pipeline.session() as session, session.begin():
        created = session.exec(select(Pql.created_at).where(Pql.created_at >= day_bounds(first, tz)[0],
                                                            Pql.created_at < day_bounds(today, tz)[0])).all()
        reps = max(1, session.exec(select(sa.func.count()).select_from(Rep).where(Rep.on_roster)).one())
        per_day = per_business_day(Counter(at.astimezone(tz).date() for at in created), business)

        def streak(end: date) -> list[date]:  # the VOLUME_STREAK business days ending with `end`, oldest first
            return [end, *_business_days_before(end, VOLUME_STREAK - 1, business)][::-1]

        def completes(day: date) -> bool:  # the last day of a streak of VOLUME_STREAK business days
            return all(over(per_day.get(d, 0), reps) for d in streak(day))

        ends = [day for day in completed[:VOLUME_LOOKBACK][::-1]
                if completes(day) and not completes(_business_days_before(day, 1, business)[0])]
        keys = {day: f"guardrail-volume:{day.isoformat()}" for day in ends}
        existing = taken(session, keys.values())
        done = 0
        for day, key in keys.items():
            if key in existing:
                continue
            days = ", ".join(f"{day_words(d, calendar)}: {_per_rep(per_day.get(d, 0) / reps)}" for d in streak(day))
            text = words("volume", days=days, threshold=VOLUME_PER_REP, streak=VOLUME_STREAK)
            outbox.dm(session, manager, key, text, payload={"view": "note"}, now=now)
            done += 1
        return done


def _business_days_before(day: date, count: int, business: Callable[[date], bool]) -> list[date]:
    """The `count` business days before `day`, newest first."""
    found: list[date] = []
    while len(found) < count:
        day -= timedelta(days=1)
        if counts_on(day, business) == day:
            found.append(day)
    return found


def _per_rep(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
