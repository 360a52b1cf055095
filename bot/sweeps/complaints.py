"""The spam-complaint guardrail (seed 002, section 8): "Spam complaints > 5 %: pause outreach; review messaging".

The heuristic:
- the leads first touched in the last 7 days (a rolling week, so a burst is caught the day it happens) are the
  contacted; a complaint is one of them who, after that first touch, opted out of sales contact (`sales_opt_out`)
  or answered with a negative or unsubscribe reply (`sales_reply`, `sentiment` negative | unsubscribe);
- more than 5 % of the contacted complaining (bot/domain/targets.py's COMPLAINTS_GUARDRAIL) throws the
  `outreach_paused` switch (bot/services/switches.py): follow-up reminders stop (bot/sweeps/follow_ups.py);
- the manager is told once per ISO week it trips (`guardrail-complaints:<week>`), through the outbox, with the
  counts; `/pql resume-outreach` is theirs to throw back once the messaging is reviewed.
A guardrail protects the people on the receiving end, so it needs no minimum sample: one complaint in ten is
already double the bar. Nothing without a manager; a switch already on is left as it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.domain.periods import Period, period_key
from bot.domain.targets import COMPLAINTS_GUARDRAIL
from bot.services import outbox, switches
from bot.store.events import from_us, to_us
from bot.store.models import EventRecord, Pql, Touch
from bot.store.queries import utc
from bot.sweeps.common import SweepContext, taken, words

WEEK = timedelta(days=7)
COMPLAINING_REPLIES = ("negative", "unsubscribe")


def complaints_guardrail(sweeps: SweepContext, now: datetime) -> int:
    """Pause outreach and tell the manager when more than 5 % of the week's contacted leads complained; returns
    how many DMs it queued."""
    settings = sweeps.settings
    manager = settings.pql_manager
    if not manager:
        return 0
    key = f"guardrail-complaints:{period_key(Period.week_of(now.astimezone(settings.tz).date()))}"
    with sweeps.pipeline.session() as session, session.begin():
        if taken(session, [key]):
            return 0
        contacted, complained = count(session, now)
        if not contacted or complained / contacted <= COMPLAINTS_GUARDRAIL:
            return 0
        share = complained / contacted
        switches.throw(session, switches.OUTREACH, True, by="system", now=now,
                       why=f"{complained} of {contacted} contacted leads complained in 7 days")
        text = words("complaints", share=f"{share:.0%}", complained=complained, contacted=contacted,
                     limit=f"{COMPLAINTS_GUARDRAIL:.0%}")
        outbox.dm(session, manager, key, text, payload={"view": "note"}, now=now)
        return 1


def count(session, now: datetime) -> tuple[int, int]:  # noqa: ANN001 - a sqlmodel Session
    """(leads first touched in the 7 days to `now`, of them those who complained after that touch)."""
    # Only people touched in the week can have been first touched in it: their first touch is looked for among their
    # leads' touches, not among every touch the store holds (an index on touches' times finds the week's).
    this_week = select(Touch.pql_id).where(Touch.at > now - WEEK, Touch.at <= now)
    people = select(Pql.user_id).where(Pql.id.in_(this_week))
    first = select(Pql.user_id, sa.func.min(Touch.at).label("at")).join(Touch, Touch.pql_id == Pql.id) \
        .where(Pql.user_id.in_(people)).group_by(Pql.user_id).subquery()
    touched = {user_id: at for user_id, at in session.exec(
        select(first.c.user_id, first.c.at).where(first.c.at > now - WEEK, first.c.at <= now))}
    if not touched:
        return 0, 0
    rows = session.exec(select(EventRecord.user_id, EventRecord.name, EventRecord.at_us, EventRecord.props).where(
        EventRecord.user_id.in_(list(touched)), EventRecord.name.in_(["sales_opt_out", "sales_reply"]),
        EventRecord.at_us <= to_us(now)))
    complained = set()
    for user_id, name, at_us, props in rows:
        sentiment = str((props or {}).get("sentiment", "")).lower()
        if from_us(at_us) >= utc(touched[user_id]) and (name == "sales_opt_out" or sentiment in COMPLAINING_REPLIES):
            complained.add(user_id)
    return len(touched), len(complained)

