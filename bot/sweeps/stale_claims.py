"""Stale claims: a claim left untouched is flagged to the manager, with a Release button first.

The heuristic (bot/domain/follow_ups.py, `is_stale`):
- an open lead, claimed, with no touch at all,
- whose claim is one business day old (business hours only: a claim at 17:00 on a Friday goes stale on Monday),
  not counting time on a do-not-touch hold since the claim (bot/services/holds.py: the holds that ended after it;
  time held, or routing paused, before the claim was not the claimant's); a held lead is never flagged.
One DM per claim (key `stale:<id>:<claimed_at>`): a lead released and claimed again can be flagged again.
Nothing without a manager.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.follow_ups import is_stale
from bot.domain.lifecycle import PqlState
from bot.services import holds
from bot.store.models import Pql
from bot.sweeps.common import (
    SweepContext,
    business_span,
    dm_manager,
    each,
    manager_card,
    taken,
    team_of,
    touched_among,
    touched_since_handoff,
    words,
)

CLAIMED = (PqlState.CLAIMED, PqlState.WORKING)


def stale_claims(sweeps: SweepContext, now: datetime) -> int:
    """Claims untouched for a business day (the lead's team's days), flagged to its manager once per claim; returns
    how many."""
    with sweeps.pipeline.session() as session:
        claimed = list(session.exec(_claimed().order_by(Pql.id)))
        touched = touched_among(session, claimed)
        stale = [pql for pql in claimed if pql.id not in touched
                 and team_of(sweeps, pql)[1] and _is_stale(session, pql, now, team_of(sweeps, pql)[0])]
        existing = taken(session, [_key(pql) for pql in stale])
    owed = [pql.id for pql in stale if _key(pql) not in existing]
    return each(sweeps, owed, lambda session, pql: _flag(session, pql, *reversed(team_of(sweeps, pql)), now=now))


def _key(pql: Pql) -> str:
    return f"stale:{pql.id}:{pql.claimed_at.isoformat()}"


def _is_stale(session: Session, pql: Pql, now: datetime, calendar: BusinessCalendar) -> bool:
    if pql.held_since is not None:
        return False
    held = _held_since_claim(session, pql)
    return is_stale(calendar.add(pql.claimed_at, held) if held else pql.claimed_at, now, calendar)


def _held_since_claim(session: Session, pql: Pql) -> timedelta:
    """Business time on holds that ended after the claim."""
    return sum((held for _, held in holds.ended_since(session, pql, pql.claimed_at)), timedelta())


def _claimed():
    """Open leads claimed and not on hold (the untouched among them are `touched_among`'s complement). A claimed
    lead is `claimed` or `working` (bot/services/leads.py: a claim, or a reassignment of one, keeps it there, a
    touch moves it on, a release or hand-off clears the claim): asked by those two states, the state's index seeks
    the claims alone, not every open lead (a queue of 10,000 read to find 100 claims cost PostgreSQL 30 ms)."""
    return select(Pql).where(Pql.state.in_(CLAIMED), Pql.held_since.is_(None), Pql.claimed_by.is_not(None),
                             Pql.claimed_at.is_not(None))


def _flag(session: Session, pql: Pql, manager: str | None, calendar: BusinessCalendar, *, now: datetime) -> int:
    """Flag a stale claim to the lead's team's manager (with one team, PQL_MANAGER)."""
    if not manager:
        return 0
    untouched = not session.exec(select(touched_since_handoff(pql))).one()
    if not (pql.claimed_by and untouched and _is_stale(session, pql, now, calendar)) or taken(session, [_key(pql)]):
        return 0
    waited = business_span(calendar.elapsed(pql.claimed_at, now), calendar.day_hours())
    card = manager_card(session, pql, heading=words("stale_heading", ref=pql.ref),
                        late=words("stale_late", waited=waited), stale=True)
    dm_manager(session, manager, _key(pql), card, pql, now)
    return 1
