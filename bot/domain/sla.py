"""The SLA clock (seed 002, section 5): how soon each tier is owed a first touch, and the escalation ladder.

Every clock runs in business time (bot/domain/business_time.py) from when pqlbot recorded the lead: a lead
recorded at night starts at the next opening.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.business_time import BusinessCalendar

#: Time to first touch, per tier (fast lane: the sub-hour answer an explicit ask is owed).
FIRST_TOUCH = {"fast_lane": timedelta(hours=1), "high": timedelta(hours=2), "medium": timedelta(hours=4)}
#: Unclaimed this long after the alert: an @here in its thread.
HERE_AFTER = timedelta(hours=1)
#: Unclaimed, or claimed but untouched, this long after the alert: the manager hears of it.
MANAGER_AFTER = timedelta(hours=2)


def clock_starts(recorded_at: datetime, calendar: BusinessCalendar) -> datetime:
    """When a lead's clocks start: when it was recorded, or the next opening."""
    return calendar.next_open(recorded_at)


def first_touch_due(recorded_at: datetime, tier: str, calendar: BusinessCalendar,
                    table: dict[str, timedelta] | None = None) -> datetime:
    """When the first touch is due for a lead of `tier` recorded at `recorded_at` (a team's own `table` of times to
    first touch, bot/domain/teams.py, or seed 002's)."""
    return calendar.add(clock_starts(recorded_at, calendar), (table or FIRST_TOUCH)[tier])


def escalations_due(*, recorded_at: datetime, claimed: bool, touched: bool, sla_due_at: datetime | None,
                    now: datetime, calendar: BusinessCalendar, held: timedelta = timedelta()) -> list[str]:
    """Which escalations a lead is owed as of `now` (sent or not), in the order they are made:
    - "here": unclaimed 1 business hour after the alert;
    - "sla": no touch by its first-touch due time;
    - "2h": unclaimed, or claimed and untouched, 2 business hours after the alert, unless the SLA message stands
      for it (it was missed, or falls due by then: a high or fast-lane lead's SLA is 2 hours or less, so the
      manager gets one DM, not two).
    `held`: business time the lead spent on do-not-touch holds that have ended (bot/services/holds.py); the clock
    does not count it (`sla_due_at` has it already). A lead on hold now is owed nothing: callers skip it."""
    start = calendar.add(clock_starts(recorded_at, calendar), held) if held else clock_starts(recorded_at, calendar)
    due = []
    if not claimed and now >= calendar.add(start, HERE_AFTER):
        due.append("here")
    sla_missed = not touched and sla_due_at is not None and now > sla_due_at
    if sla_missed:
        due.append("sla")
    two_hours = calendar.add(start, MANAGER_AFTER)
    sla_stands_for_it = sla_missed or (sla_due_at is not None and sla_due_at <= two_hours)
    if (not claimed or not touched) and now >= two_hours and not sla_stands_for_it:
        due.append("2h")
    return due
