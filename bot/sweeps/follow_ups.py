"""Follow-up reminders (seed 002, section 6): the rep working a lead is told what the outreach kit owes next.

The heuristic (bot/domain/follow_ups.py, `next_step`), in business days:
- Email 2 is due 2 business days after Email 1, Email 3 2 after Email 2;
- then a disposition, 2 after Email 3, or after the third touch of any kind.
- Nothing while outreach is paused (the spam-complaint guardrail, bot/sweeps/complaints.py).
- Open leads only: a disposition, a conversion or an opt-out ends them. Nothing is owed before Email 1, nor while
  the lead is on a do-not-touch hold (bot/services/holds.py); a step that fell due meanwhile is owed when it resumes.
The reminder goes to whoever has the lead (the claimant, else the assigned rep), with the button for the next
step. Key: `followup:<id>:<step>`, one per lead and step.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.follow_ups import next_step
from bot.domain.kit import EMAIL_LABELS, TOUCH_CHANNELS
from bot.services import outbox, switches
from bot.services.lead_view import lead_facts
from bot.store.models import Pql, Touch
from bot.store.queries import in_chunks, still_open
from bot.sweeps.common import SweepContext, day_words, each, taken, team_of, words


def follow_ups(sweeps: SweepContext, now: datetime) -> int:
    """Remind reps of the next email of the kit, and of the disposition after the last; returns how many."""
    with sweeps.pipeline.session() as session:
        if switches.is_on(session, switches.OUTREACH):
            return 0  # the spam-complaint guardrail paused outreach (bot/sweeps/complaints.py)
        touches: dict[int, list[Touch]] = defaultdict(list)
        calendars: dict[int, BusinessCalendar] = {}  # each lead's team's (bot/sweeps/common.py, `team_of`)
        # The open leads someone holds (a reminder goes to them; the queue's leads have nobody to remind) first, then
        # their touches by lead id (the touches' index): joined in one statement, PostgreSQL read a store's years of
        # touches to find their few.
        someones = sa.or_(Pql.claimed_by.is_not(None), Pql.rep_id.is_not(None))
        open_leads = {pql.id: pql for pql in session.exec(
            select(Pql).where(still_open(Pql.state), Pql.held_since.is_(None), someones))}
        for ids in in_chunks(sorted(open_leads)):
            for touch in session.exec(select(Touch).where(Touch.pql_id.in_(ids)).order_by(Touch.pql_id, Touch.number)):
                touches[touch.pql_id].append(touch)
                calendars.setdefault(touch.pql_id, team_of(sweeps, open_leads[touch.pql_id])[0])
        due = {pql_id: step for pql_id, listed in touches.items()
               if (step := next_step(listed, calendars[pql_id])) and now >= step.due}
        existing = taken(session, [step.key(pql_id) for pql_id, step in due.items()])
    owed = [pql_id for pql_id, step in due.items() if step.key(pql_id) not in existing]
    return each(sweeps, owed, lambda session, pql: _remind(session, pql, now, team_of(sweeps, pql)[0]))


def _remind(session: Session, pql: Pql, now: datetime, calendar: BusinessCalendar) -> int:
    touches = list(session.exec(select(Touch).where(Touch.pql_id == pql.id).order_by(Touch.number)))
    step = next_step(touches, calendar)
    rep = pql.claimed_by or pql.rep_id
    if step is None or now < step.due or not rep or pql.held_since is not None or taken(session, [step.key(pql.id)]):
        return 0
    who, _ = lead_facts(session, pql)
    sent = day_words(step.after.at, calendar)
    if step.name == "disposition":
        last = EMAIL_LABELS.get(step.after.email_key or "") or TOUCH_CHANNELS.get(step.after.channel, "a touch")
        text = words("disposition_due", ref=pql.ref, who=who, last=last, sent=sent)
    else:
        text = words("email_due", ref=pql.ref, who=who, due=EMAIL_LABELS[step.name],
                     last=EMAIL_LABELS[step.after.email_key], sent=sent)
    payload = {"view": "reminder", "pql_id": pql.id, "ask_disposition": step.name == "disposition"}
    outbox.dm(session, rep, step.key(pql.id), text, pql=pql, payload=payload, now=now)
    return 1
