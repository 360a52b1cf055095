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
    """Queue this week's review once it is due; returns how many it queued now. With teams (PQL_TEAMS_FILE), one
    per team, in its alert channel, due on its own Friday morning, of its own leads (key
    `weekly-review:2026-W45:<team>`, text `2026-W45|<team>`)."""
    settings = sweeps.settings
    teams = settings.teams
    if teams.is_single:
        return _queue(sweeps, now, settings.tz, settings.pql_alerts_channel, team=None)
    return sum(_queue(sweeps, now, team.calendar.tz, team.alert_channel, team=team.name)
               for team in teams.teams.values())


def _queue(sweeps: SweepContext, now: datetime, tz, channel: str, *, team: str | None) -> int:  # noqa: ANN001
    week = Period.week_of(now.astimezone(tz).date())
    if now < review_due(week, tz):
        return 0
    label = period_key(week)
    key = f"weekly-review:{label}" + (f":{team}" if team else "")
    with sweeps.pipeline.session() as session, session.begin():
        if taken(session, [key]):
            return 0
        if team:
            outbox.review(session, channel, f"{label}|{team}", now=now, key=key)
        else:
            outbox.review(session, channel, label, now=now)
    return 1
