"""The volume guardrail (seed 002, sections 5 and 8): "PQL volume > 10/SDR/day for 3+ consecutive days".

Days are business days in the team's timezone, as SDRs work them: a lead recorded at night, at the weekend or on
a holiday waits for the opening and counts on the next business day, the day it reaches the reps and their cap
(bot/domain/caps.py). So a weekend neither breaks a streak nor starts one of its own; its leads swell Monday's.
The Friday review and the daily sweep apply this one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta

#: PQLs per rep per business day...
VOLUME_PER_REP = 10
#: ...for this many business days running.
VOLUME_STREAK = 3

_DAY = timedelta(days=1)


def counts_on(day: date, is_business_day: Callable[[date], bool]) -> date:
    """The business day a lead recorded on `day` counts on: `day`, or the next business day."""
    while not is_business_day(day):
        day += _DAY
    return day


def per_business_day(daily: Mapping[date, int], is_business_day: Callable[[date], bool]) -> dict[date, int]:
    """Leads per business day, from leads per calendar day (days off counted on the next business day)."""
    counted: dict[date, int] = {}
    for day in sorted(daily):
        landed = counts_on(day, is_business_day)
        counted[landed] = counted.get(landed, 0) + daily[day]
    return counted


def over(count: int, reps: int) -> bool:
    return reps > 0 and count / reps > VOLUME_PER_REP


def busy_runs(daily: Mapping[date, int], reps: int, is_business_day: Callable[[date], bool]) -> list[list[date]]:
    """Runs of VOLUME_STREAK or more consecutive business days with more than VOLUME_PER_REP PQLs per rep, from
    `daily` (leads per calendar day; days off count on the next business day)."""
    if not reps:
        return []
    runs: list[list[date]] = []
    current: list[date] = []
    for day, count in sorted(per_business_day(daily, is_business_day).items()):
        if current and _next_business_day(current[-1], is_business_day) != day:  # a business day without leads
            current = _close(current, runs)
        if over(count, reps):
            current.append(day)
        else:
            current = _close(current, runs)
    _close(current, runs)
    return runs


def _close(current: list[date], runs: list[list[date]]) -> list[date]:
    if len(current) >= VOLUME_STREAK:
        runs.append(current)
    return []


def _next_business_day(day: date, is_business_day: Callable[[date], bool]) -> date:
    return counts_on(day + _DAY, is_business_day)
