"""Abandoned checkouts: a lead held for a checkout (bot/services/holds.py) is let go once the checkout is 24 hours
old (the rules' `checkout_grace_hours`) with no `checkout_completed` or `trial_converted` (either would have
stopped the lead, converted).

The heuristic: every open lead on hold whose hold waits on no open ticket and on a checkout started 24 hours ago
or more (wall-clock hours, nights and weekends included: the seed's "abandoned for 24+ hours") resumes, and its rep
is told once (keys `unhold:<id>:<since>:checkout`). Re-running changes nothing: a lead let go is no longer held.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.services import holds
from bot.store.models import Pql
from bot.store.queries import still_open
from bot.sweeps.common import SweepContext, each, team_of


def release_holds(sweeps: SweepContext, now: datetime) -> int:
    """Let go of the leads whose checkout was abandoned; returns how many resumed."""
    with sweeps.pipeline.session() as session:
        held = session.exec(select(Pql).where(still_open(Pql.state), Pql.held_since.is_not(None))
                            .order_by(Pql.id)).all()
    grace = timedelta(hours=sweeps.pipeline.rules.do_not_touch.checkout_grace_hours)
    due = [pql.id for pql in held if _abandoned(pql, now, grace)]
    return each(sweeps, due, lambda session, pql: _release(sweeps, session, pql, now, grace))


def _abandoned(pql: Pql, now: datetime, grace: timedelta) -> bool:
    checkout = (pql.hold_on or {}).get("checkout")
    return bool(checkout) and now >= datetime.fromisoformat(checkout) + grace


def _release(sweeps: SweepContext, session: Session, pql: Pql, now: datetime, grace: timedelta) -> int:
    calendar = team_of(sweeps, pql)[0]  # the lead's team's: its SLA clock runs on that team's hours
    return holds.release(session, pql, now=now, calendar=calendar, checkout_grace=grace) is not None
