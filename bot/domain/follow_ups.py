"""What a rep owes next on a lead they work, and when (seed 002, section 6): Email 2 two business days after
Email 1, Email 3 two after Email 2, then a disposition two after Email 3 (or after the third touch of any kind);
and a claim left untouched for a business day is stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.business_time import BusinessCalendar
from bot.domain.kit import FOLLOW_UP_DAYS, MAX_TOUCHES


class LoggedTouch(Protocol):
    email_key: str | None
    at: datetime


@dataclass(slots=True, frozen=True)
class NextStep:
    name: str  # email2 | email3 | disposition
    after: LoggedTouch  # the touch it follows
    due: datetime

    def key(self, pql_id: int) -> str:
        """The outbox key of the reminder for it: one per lead and step."""
        return f"followup:{pql_id}:{self.name}"


def next_step(touches: Sequence[LoggedTouch], calendar: BusinessCalendar) -> NextStep | None:
    """What the rep owes next on a lead with these touches (in the order logged), and when it's due; None before
    Email 1 was sent."""
    emails = {t.email_key: t for t in touches if t.email_key}
    if len(touches) >= MAX_TOUCHES:
        name, after = "disposition", touches[-1]
    elif "email3" in emails:
        name, after = "disposition", emails["email3"]
    elif "email2" in emails:
        name, after = "email3", emails["email2"]
    elif "email1" in emails:
        name, after = "email2", emails["email1"]
    else:
        return None
    return NextStep(name, after, calendar.next_open(calendar.add_days(after.at, FOLLOW_UP_DAYS)))


def next_touch_due(touches: Sequence[LoggedTouch], calendar: BusinessCalendar) -> datetime | None:
    """When the next email of the kit is due; None when none is (before Email 1, or once a disposition is)."""
    step = next_step(touches, calendar)
    return step.due if step is not None and step.name != "disposition" else None


def is_stale(claimed_at: datetime | None, now: datetime, calendar: BusinessCalendar) -> bool:
    """A claim one business day old (and untouched, which the caller knows)."""
    return claimed_at is not None and calendar.elapsed(claimed_at, now) >= calendar.day_hours()
