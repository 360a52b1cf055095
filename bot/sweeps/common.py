"""What the sweeps share: which outbox keys are taken, one transaction per lead, the manager's card, and
days and durations in words.

Exactly once: every message a sweep owes has a unique outbox key (bot/services/outbox.py), so running a sweep
twice for the same minute, after a restart or in two processes at once owes nothing twice. A sweep reads what
is due in one short read, leaves out what is taken already (`taken`), then handles each lead in a transaction
of its own (`each`), on the lead as it is by then, so a failure on one is logged and does not hold up the rest.

The sweeps queue typed notices: a text, and a payload saying what to render ({"view": "manager_card", ...});
the Block Kit is built from it when the notice is delivered, by the Slack layer (`render_notice`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import CLOSED
from bot.services import outbox
from bot.services.lead_view import holder, lead_facts
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.store.models import Notice, Pql, Touch
from bot.store.queries import in_chunks, utc
from templates import sentences, span

log = logging.getLogger(__name__)


class SweepContext(Protocol):
    """What every sweep is given (bot/sweeps/runner.py's `Sweeps` is one): the pipeline (store, clock, rules),
    the router, the settings."""

    pipeline: Pipeline
    router: Router
    settings: Settings

#: One sentence of templates/slack/escalations.j2, on one line.
words = sentences("slack/escalations.j2")


def team_of(sweeps: SweepContext, pql: Pql) -> tuple[BusinessCalendar, str | None]:
    """The calendar a lead's clocks run on and who hears of it (its manager, or a channel: bot/slack/delivery.py
    posts a "dm" to a channel there): its team's (bot/domain/teams.py); with one team (no teams file),
    PQL_BUSINESS_HOURS and PQL_MANAGER."""
    teams = sweeps.router.teams
    if teams.is_single:
        return sweeps.settings.calendar, sweeps.settings.pql_manager
    team = teams.team(pql.team)
    return team.calendar, team.escalate_to


def touched() -> sa.Exists:
    """The lead has a touch (in a query over Pql) since it was last handed to another team, if it was: the receiving
    team's first touch is its own (bot/services/handoffs.py)."""
    return sa.exists().where(Touch.pql_id == Pql.id, sa.or_(Pql.handed_off_at.is_(None), Touch.at >= Pql.handed_off_at))


def touched_among(session: Session, pqls: Iterable[Pql]) -> set[int]:
    """Which of these leads (already read) have a touch since their last hand-off: asked by their ids, on the
    touches' index by lead, so the cost is the open leads', not every touch the store holds (a correlated NOT EXISTS
    let PostgreSQL read the whole touches table)."""
    handed = {pql.id: pql.handed_off_at for pql in pqls}
    found: set[int] = set()
    for ids in in_chunks(sorted(handed)):
        for pql_id, at in session.exec(select(Touch.pql_id, Touch.at).where(Touch.pql_id.in_(ids))):
            since = handed[pql_id]
            if since is None or utc(at) >= utc(since):
                found.add(pql_id)
    return found


def touched_since_handoff(pql: Pql) -> sa.Exists:
    """`touched()` for one lead already read."""
    since = [Touch.at >= pql.handed_off_at] if pql.handed_off_at else []
    return sa.exists().where(Touch.pql_id == pql.id, *since)


def taken(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these outbox keys are taken already."""
    keys = list(keys)
    return set(session.exec(select(Notice.key).where(Notice.key.in_(keys)))) if keys else set()


def each(sweeps: SweepContext, pql_ids: Iterable[int], work: Callable[[Session, Pql], int]) -> int:
    """`work` on each open lead in a transaction of its own, on the lead as it is now; the sum of what it returns."""
    done = 0
    for pql_id in pql_ids:
        try:
            with sweeps.pipeline.session() as session, session.begin():
                pql = session.get(Pql, pql_id)
                if pql is not None and pql.state not in CLOSED:
                    done += work(session, pql)
        except Exception:  # noqa: BLE001 (one lead's failure must not stop the others; the next sweep retries)
            log.exception("sweep work on PQL-%s failed", pql_id)
    return done


def manager_card(session: Session, pql: Pql, *, heading: str, late: str, stale: bool = False,
                 note: str | None = None) -> dict:
    """The payload of a DM to the manager about one lead, as of now: the fields of the Slack layer's `Card`.
    Texts are mrkdwn, already escaped."""
    who, company = lead_facts(session, pql)
    return {"view": "manager_card", "pql_id": pql.id, "ref": pql.ref, "who": who, "company": company,
            "tier": pql.tier, "heading": heading, "holder": holder(pql), "late": late,
            "claimed": pql.claimed_by is not None, "stale": stale, "note": note}


def dm_manager(session: Session, manager: str, key: str, card: dict, pql: Pql, now: datetime) -> bool:
    """Queue a `manager_card` to the manager, with its notification text (what a client without blocks shows);
    True when this call queued it (its key was free)."""
    text = words("manager_text", heading=card["heading"], who=card["who"], late=card["late"])
    return outbox.dm(session, manager, key, text, pql=pql, payload=card, now=now)


def business_span(delta: timedelta, day: timedelta) -> str:
    """"5 h 20 min", "1 business day", "2 business days 3 h" (`day`: the length of a business day)."""
    days, rest = divmod(delta, day)
    if not days:
        return span(delta)
    text = f"{days} business day{'s' * (days != 1)}"
    return f"{text} {span(rest)}" if rest >= timedelta(minutes=1) else text


def day_words(at: datetime | date, calendar: BusinessCalendar) -> str:
    """"Thu 5 Nov" (team timezone)."""
    day = at.astimezone(calendar.tz).date() if isinstance(at, datetime) else at
    return f"{day:%a} {day.day} {day:%b}"
