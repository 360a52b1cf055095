"""The review and the pilot scorecard of a period, read from the store (the only module here that does)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.periods import Period
from bot.review import pilot
from bot.review.model import Review, build
from bot.review.pilot import Scorecard
from bot.services.metrics import compute
from bot.store.models import Rep


def roster_size(session: Session, fallback: int = 0) -> int:
    """Reps on the roster in the store, else `fallback` (the PQL_REPS list before anything synced it)."""
    count = session.exec(select(sa.func.count()).select_from(Rep).where(Rep.on_roster)).one()
    return count or fallback


def review_for(session: Session, period: Period, *, calendar: BusinessCalendar, reps: int, cap: int,
               now: datetime, team: str | None = None, default_team: bool = False) -> Review:
    m = compute(session, period, calendar=calendar, reps=reps, now=now, team=team, default_team=default_team)
    return build(m, cap=cap, as_of=now, workday=calendar.is_business_day)


def for_settings(session: Session, period: Period, *, settings, now: datetime, team: str | None = None) -> Review:
    """The review of `period` with the team's calendar, roster and cap (bot.settings.Settings); with `team` (a
    name in PQL_TEAMS_FILE), that team's: its leads, calendar, members and cap."""
    teams = settings.teams
    if team is None or teams.is_single:
        return review_for(session, period, calendar=settings.calendar,
                          reps=roster_size(session, len(settings.roster)), cap=settings.pql_daily_cap, now=now)
    chosen = teams.team(team)
    return review_for(session, period, calendar=chosen.calendar, reps=len(chosen.members or ()),
                      cap=chosen.daily_cap, now=now, team=chosen.name, default_team=chosen.name == teams.default)


def scorecard(session: Session, start: date, calendar: BusinessCalendar, reps: int, now: datetime) -> Scorecard:
    """The 4-week pilot from `start` against seed 002 section 8, and the verdict with its reasons."""
    spans = pilot.periods(start)

    def measure(period: Period):
        return compute(session, period, calendar=calendar, reps=reps, now=now)

    return pilot.score(measure(spans.overall), [measure(week) for week in spans.weeks], measure(spans.early),
                       measure(spans.late), reps=reps, workday=calendar.is_business_day, as_of=now,
                       today=now.astimezone(calendar.tz).date())
