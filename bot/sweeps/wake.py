"""Verdicts that turn with time alone: a user is judged again when their verdict said it would change with no event.

A verdict can change while its user does nothing: a "not completed within N days" wait ends (SSO set-up started and
never finished: a tier 1 blocker), a do-not-touch window closes (a checkout abandoned past its grace, the days after
an upgrade), a hold ends. Each verdict stores the first such moment (`trial_users.wake_at`, scoring/engine.py
`wake`). This sweep judges again the users whose moment has come, as of now, from their stored histories
(`Pipeline.rescore_users`, as a backfill's users are judged): a trigger that fires becomes a lead and is routed and
alerted within the minute, rather than at the user's next event or the next full rescore (RESCORE_EVERY_HOURS, a day
by default).

The heuristic: every user whose `wake_at` is at or before now, earliest first, `BATCH` a minute at most (the rest
wait for the next minute). Judging them again writes each one's next moment (or none), so a user is woken once per
moment; running it twice for the same minute finds nobody the second time. New leads are recorded under the unique
index of one open lead per user and trial, like any rescore's.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.store.models import TrialUser
from bot.sweeps.common import SweepContext

BATCH = 2_000  # users judged again in one minute, at most
_USERS = TrialUser.__table__


def wake(sweeps: SweepContext, now: datetime) -> int:
    """Judge again the users whose verdict turns by now; returns how many were judged."""
    pipeline = sweeps.pipeline
    with pipeline.engine.connect() as connection:
        due = connection.execute(sa.select(_USERS.c.user_id).where(_USERS.c.wake_at <= now)
                                 .order_by(_USERS.c.wake_at, _USERS.c.user_id).limit(BATCH)).scalars().all()
    if not due:
        return 0
    judged = pipeline.rescore_users(due, at=now).users
    # Each user judged has their next moment now. One with nothing left to judge (every event of theirs moved to
    # another user by a link) would be found again every minute, ahead of the others: their moment is forgotten.
    with pipeline.session() as session, session.begin():
        session.connection().execute(sa.update(_USERS).where(_USERS.c.user_id.in_(due), _USERS.c.wake_at <= now)
                                     .values(wake_at=None))
    return judged
