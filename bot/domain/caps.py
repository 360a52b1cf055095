"""The daily cap (seed 002, section 5): at most N new PQLs per rep per day, the day being a calendar day in the
team's timezone. A lead lands on a rep's day when it is assigned to them (by routing, a claim or the manager);
leads recorded at night or at the weekend wait for the opening, so they land on the next business day's cap.
Fast-lane leads (seed 000's explicit asks) land on a rep's day too, and are shown there, but are not capped: a demo
request never waits for tomorrow because a rep already has 5."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

DEFAULT_DAILY_CAP = 5
#: Tiers the cap does not count (the fast lane's: bot/domain/routing.py, `FastLane`).
UNCAPPED_TIERS = frozenset({"fast_lane"})


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local `day` as [start, end) instants (DST-aware: a day may last 23 or 25 hours)."""
    return datetime.combine(day, time(), tz), datetime.combine(day + timedelta(days=1), time(), tz)


def cap_day(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The day whose assignments count against the cap at `now`."""
    return day_bounds(now.astimezone(tz).date(), tz)
