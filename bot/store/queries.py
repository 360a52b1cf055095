"""Questions the services ask the store often enough to name: written once, shaped so an index answers them."""

from __future__ import annotations

from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlmodel import select

from bot.domain.caps import cap_day
from bot.domain.lifecycle import OPEN
from bot.store.models import Assignment


def still_open(state: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """The lead's state is an open one: the same leads as NOT IN (closed states), but written as IN so an index
    on the state seeks the few open leads instead of reading every lead ever closed."""
    return state.in_(sorted(OPEN))


def given_today(rep: str | sa.ColumnElement, *, now: datetime, tz: tzinfo) -> sa.Select:
    """How many leads landed on a rep today (the daily cap's count), for one rep id or for a column (routing
    counts the whole roster at once)."""
    start, end = cap_day(now, tz)
    return select(sa.func.count(sa.distinct(Assignment.pql_id))).where(
        Assignment.rep_id == rep, Assignment.at >= start, Assignment.at < end)
