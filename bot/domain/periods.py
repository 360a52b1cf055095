"""Periods the review and the metrics are about: ISO weeks (Monday to Sunday) or date ranges, in the team's
timezone, and how people and outbox keys name them (2026-W45, 2026-11-02..2026-11-12)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Period:
    start: date  # first day, inclusive, in the team timezone
    end: date  # last day, inclusive

    @classmethod
    def week(cls, year: int, week: int) -> Period:
        monday = date.fromisocalendar(year, week, 1)
        return cls(monday, monday + timedelta(days=6))

    @classmethod
    def week_of(cls, day: date) -> Period:
        monday = day - timedelta(days=day.weekday())
        return cls(monday, monday + timedelta(days=6))

    @property
    def label(self) -> str:
        year, week, weekday = self.start.isocalendar()
        if weekday == 1 and self.end == self.start + timedelta(days=6):
            return f"{year}-W{week:02d} ({self.start:%d %b} - {self.end:%d %b})"
        return f"{self.start:%d %b %Y} - {self.end:%d %b %Y}"

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The period as [start, end) instants in `tz`."""
        return datetime.combine(self.start, time(), tz), datetime.combine(self.end + timedelta(days=1), time(), tz)


_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


def period_key(period: Period) -> str:
    """What names a period in commands, buttons and outbox keys: 2026-W45, or 2026-11-02..2026-11-12."""
    year, week, weekday = period.start.isocalendar()
    if weekday == 1 and period.end == period.start + timedelta(days=6):
        return f"{year}-W{week:02d}"
    return f"{period.start.isoformat()}..{period.end.isoformat()}"


def iso_week(text: str) -> Period:
    """2026-W45 (or 2026W45) -> that Monday-to-Sunday week; ValueError otherwise."""
    found = _WEEK.fullmatch(text.strip())
    if not found:
        raise ValueError(f"not an ISO week like 2026-W45: {text!r}")
    try:
        return Period.week(int(found.group(1)), int(found.group(2)))
    except ValueError:
        raise ValueError(f"{text!r} has no such week") from None


def parse_period(text: str | None, *, today: date) -> Period:
    """"this" (or nothing), "last", an ISO week, or a period_key range; ValueError for anything else."""
    word = (text or "").strip().lower()
    if word in ("", "this"):
        return Period.week_of(today)
    if word == "last":
        return Period.week_of(today - timedelta(days=7))
    if found := _RANGE.fullmatch(word):
        start, end = date.fromisoformat(found.group(1)), date.fromisoformat(found.group(2))
        if end < start:
            raise ValueError(f"{text!r} ends before it starts")
        return Period(start, end)
    return iso_week(word)


def last_complete_week(now: datetime, tz: tzinfo) -> Period:
    """The Monday-to-Sunday week before the one `now` falls in, in the team timezone."""
    return Period.week_of(now.astimezone(tz).date() - timedelta(days=7))
