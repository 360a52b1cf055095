"""The Friday review post (seed 002: "Every Friday at 10 AM").

The heuristic:
- from Friday 10:00 in the team timezone (DST included), the week's review is owed to the PQL channel;
- one outbox notice of kind "review" per ISO week (key `weekly-review:2026-W45`), whose text is the week.
Delivery renders it when it sends it (blocks, then the chart as a PNG upload), so the post carries the figures
as of sending, not as of queueing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.domain.periods import Period, period_key
from bot.services import outbox
from bot.sweeps.common import SweepContext, taken

REVIEW_WEEKDAY = 4  # Friday
REVIEW_AT = time(10)


def review_due(week: Period, tz) -> datetime:  # noqa: ANN001 (a tzinfo)
    """When `week`'s review is owed: its Friday at 10:00 in the team timezone (DST included)."""
    return datetime.combine(week.start + timedelta(days=REVIEW_WEEKDAY), REVIEW_AT, tz)


def weekly_review(sweeps: SweepContext, now: datetime) -> int:
    """Queue this week's review once it is due; returns 1 when it queued it now, else 0."""
    settings = sweeps.settings
    week = Period.week_of(now.astimezone(settings.tz).date())
    if now < review_due(week, settings.tz):
        return 0
    label = period_key(week)
    key = f"weekly-review:{label}"
    with sweeps.pipeline.session() as session, session.begin():
        if taken(session, [key]):
            return 0
        outbox.review(session, settings.pql_alerts_channel, label, now=now)
    return 1
