"""Business time: the clock SLAs, escalations, follow-ups and the queue run on.

Pure: aware datetimes in, aware UTC datetimes out, no "now". Hours are 9:00-18:00 (configurable) on
weekdays in the team timezone, minus holidays. Local wall-clock times are turned into instants with
zoneinfo, so a DST change shortens or lengthens the night, never the business day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class BusinessCalendar:
    tz: tzinfo
    opens: time = time(9)
    closes: time = time(18)
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[int] = frozenset(range(5))  # Monday 0 .. Friday 4

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, self.tz).astimezone(UTC)

    def day_hours(self) -> timedelta:
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        return self.is_business_day(local.date()) and self.opens <= local.time() < self.closes

    def next_open(self, at: datetime) -> datetime:
        """`at` itself during business hours, else when business next opens."""
        local = at.astimezone(self.tz)
        day = local.date()
        if self.is_business_day(day) and local.time() < self.closes:
            return max(at.astimezone(UTC), self._at(day, self.opens))
        day += _DAY
        while not self.is_business_day(day):
            day += _DAY
        return self._at(day, self.opens)

    def day_start(self, at: datetime) -> datetime:
        """The opening of the business day `at` falls in, or of the next one when `at` is outside hours."""
        opened = self.next_open(at)
        return self._at(opened.astimezone(self.tz).date(), self.opens)

    def add(self, at: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of business time after `at` (counting from the next opening)."""
        moment = self.next_open(at)
        left = duration
        while True:
            local_day = moment.astimezone(self.tz).date()
            closing = self._at(local_day, self.closes)
            if moment + left <= closing:
                return moment + left
            left -= closing - moment
            moment = self.next_open(closing)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants (zero when `end` is not after `start`)."""
        total = timedelta()
        moment = self.next_open(start)
        end = end.astimezone(UTC)
        while moment < end:
            closing = self._at(moment.astimezone(self.tz).date(), self.closes)
            total += min(closing, end) - moment
            moment = self.next_open(closing)
        return total

    def add_days(self, at: datetime, days: int) -> datetime:
        """The same wall-clock time `days` business days later (for "Email 2 is due in 2 business days")."""
        local = at.astimezone(self.tz)
        day = local.date()
        for _ in range(days):
            day += _DAY
            while not self.is_business_day(day):
                day += _DAY
        clock = min(max(local.time().replace(tzinfo=None), self.opens), self.closes)
        return self._at(day, clock)
