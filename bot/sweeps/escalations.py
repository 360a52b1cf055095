"""The SLA clock (seed 002, sections 5, 6 and 8), as sweeps that bot/sweeps.py runs in this order:

1. `escalate`: 1 business hour after the alert with nobody claiming the lead, an `<!here>` in the alert's
   thread. At 2 business hours, with the lead still unclaimed or claimed but untouched, a DM to the manager.
   When the first-touch SLA is missed (no touch by `sla_due_at`), a DM to the manager that stands for the
   2-hour one: a high or fast-lane lead (SLA of 2 hours or less) makes one DM, not two, and so does a medium
   lead first seen after 4 hours. With PQL_REASSIGN_ON_SLA_MISS on, an SLA miss also moves the lead to
   another rep, chosen as routing chooses (audited, said in the thread, once per lead).
2. `follow_ups`: the rep working a lead is reminded when Email 2 is due (2 business days after Email 1),
   then Email 3 (2 after Email 2), then a disposition (2 after Email 3, or after the third touch). Open leads
   only: a disposition, a conversion or an opt-out ends them.
3. `stale_claims`: a claim left untouched for a business day is flagged to the manager, with a Release button.
4. `volume_guardrail`: more than 10 PQLs per rep per day for 3 days running (completed days in the team
   timezone), one DM to the manager per streak, on its third day.

Business time throughout (bot/business_time.py): a lead's clock starts when business next opens after
pqlbot recorded it, so a PQL recorded at 17:30 on a Friday gets its `<!here>` at 09:30 on Monday.

Exactly once: every message has a unique outbox key (bot/outbox.py), so running a sweep twice for the same
minute, after a restart or in two processes at once owes nothing twice; the one change made to a lead (the
automatic reassignment) is a conditional update, and its thread reply's key marks it done. Each lead is
handled in a transaction of its own, so a failure on one is logged and does not hold up the rest.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.caps import day_bounds
from bot.domain.follow_ups import is_stale, next_step
from bot.domain.guardrails import VOLUME_PER_REP, VOLUME_STREAK, counts_on, over, per_business_day
from bot.domain.kit import EMAIL_LABELS, TOUCH_CHANNELS
from bot.domain.lifecycle import CLOSED, PqlState
from bot.domain.routing import pick
from bot.domain.sla import escalations_due
from bot.services import outbox
from bot.slack.blocks import span
from bot.slack.listeners.manager import Card, card_blocks, holder, lead_facts, note_blocks, reminder_blocks, words
from bot.store.models import Notice, Pql, Rep, Touch
from bot.store.queries import still_open

if TYPE_CHECKING:
    from bot.sweeps.runner import Sweeps

log = logging.getLogger(__name__)

VOLUME_LOOKBACK = 3  # completed business days re-checked, so a streak is still flagged after days without sweeps
_PQLS = Pql.__table__


def _touched() -> sa.Exists:
    return sa.exists().where(Touch.pql_id == Pql.id)


def _existing(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these outbox keys are taken already."""
    keys = list(keys)
    return set(session.exec(select(Notice.key).where(Notice.key.in_(keys)))) if keys else set()


def _each(sweeps: Sweeps, pql_ids: Iterable[int], work: Callable[[Session, Pql], int]) -> int:
    """`work` on each open lead in a transaction of its own, on the lead as it is now."""
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


def _card(session: Session, pql: Pql, *, heading: str, late: str, stale: bool = False,
          note: str | None = None) -> Card:
    who, company = lead_facts(session, pql)
    return Card(pql_id=pql.id, ref=pql.ref, who=who, company=company, tier=pql.tier, heading=heading,
                holder=holder(pql), late=late, claimed=pql.claimed_by is not None, stale=stale, note=note)


def _dm_manager(session: Session, manager: str, key: str, card: Card, pql: Pql, now: datetime) -> None:
    outbox.dm(session, manager, key, card.text, pql=pql, blocks=card_blocks(card), now=now)


def _business(delta: timedelta, day: timedelta) -> str:
    """"5 h 20 min", "1 business day", "2 business days 3 h"."""
    days, rest = divmod(delta, day)
    if not days:
        return span(delta)
    text = f"{days} business day{'s' * (days != 1)}"
    return f"{text} {span(rest)}" if rest >= timedelta(minutes=1) else text


def _day(at: datetime | date, calendar: BusinessCalendar) -> str:
    """"Thu 5 Nov" (team timezone)."""
    day = at.astimezone(calendar.tz).date() if isinstance(at, datetime) else at
    return f"{day:%a} {day.day} {day:%b}"


# 1. Escalations ----------------------------------------------------------------------------------------------

def _escalations_due(pql: Pql, touched: bool, now: datetime, calendar: BusinessCalendar) -> list[str]:
    return escalations_due(recorded_at=pql.created_at, claimed=pql.claimed_by is not None, touched=touched,
                           sla_due_at=pql.sla_due_at, now=now, calendar=calendar)


def _keys(pql_id: int) -> dict[str, str]:
    return {"here": f"esc-here:{pql_id}", "sla": f"esc-sla:{pql_id}", "2h": f"esc-2h:{pql_id}",
            "moved": f"esc-moved:{pql_id}"}


def _owed(sweeps: Sweeps, pql_id: int, due: list[str], existing: set[str]) -> bool:
    keys = _keys(pql_id)
    manager = sweeps.settings.pql_manager
    if "here" in due and keys["here"] not in existing:
        return True
    if "sla" in due and ((manager and keys["sla"] not in existing) or
                         (sweeps.settings.pql_reassign_on_sla_miss and keys["moved"] not in existing)):
        return True
    return bool("2h" in due and manager and not {keys["2h"], keys["sla"]} & existing)


def escalate(sweeps: Sweeps, now: datetime) -> int:
    """The `<!here>`, the manager's DMs and the optional reassignment owed now; returns how many were made."""
    calendar = sweeps.settings.calendar
    with sweeps.pipeline.session() as session:
        rows = session.exec(
            select(Pql, _touched().label("touched"))
            .where(still_open(Pql.state), sa.or_(Pql.claimed_by.is_(None), ~_touched()))
            .order_by(Pql.id)
        ).all()
        due = {pql.id: kinds for pql, touched in rows if (kinds := _escalations_due(pql, touched, now, calendar))}
        existing = _existing(session, [key for pql_id in due for key in _keys(pql_id).values()])
    owed = [pql_id for pql_id, kinds in due.items() if _owed(sweeps, pql_id, kinds, existing)]
    return _each(sweeps, owed, lambda session, pql: _escalate_one(sweeps, session, pql, now))


def _escalate_one(sweeps: Sweeps, session: Session, pql: Pql, now: datetime) -> int:
    settings, calendar, manager = sweeps.settings, sweeps.settings.calendar, sweeps.settings.pql_manager
    touched = session.exec(select(sa.exists().where(Touch.pql_id == pql.id))).one()
    due = _escalations_due(pql, touched, now, calendar)
    keys = _keys(pql.id)
    existing = _existing(session, keys.values())
    start = calendar.next_open(pql.created_at)
    done = 0
    if "here" in due and keys["here"] not in existing:
        outbox.reply(session, pql, keys["here"], words("here", ref=pql.ref, waited=span(calendar.elapsed(start, now))),
                     now=now)
        done += 1
    if "sla" in due:
        by = span(calendar.elapsed(pql.sla_due_at, now))
        late = words("sla_late", by=by)
        note = None
        if settings.pql_reassign_on_sla_miss and keys["moved"] not in existing:
            note = _move(sweeps, session, pql, by, now)
            done += note is not None
            note = note or words("not_moved_note")
        if manager and keys["sla"] not in existing:
            card = _card(session, pql, heading=words("sla_heading", ref=pql.ref), late=late, note=note)
            _dm_manager(session, manager, keys["sla"], card, pql, now)
            done += 1
    if "2h" in due and manager and not {keys["2h"], keys["sla"]} & existing:
        waited = span(calendar.elapsed(start, now))
        if pql.claimed_by is None:
            heading, late = words("unclaimed_heading", ref=pql.ref), words("unclaimed_late", waited=waited)
        else:
            heading, late = words("untouched_heading", ref=pql.ref), words("untouched_late", waited=waited)
        _dm_manager(session, manager, keys["2h"], _card(session, pql, heading=heading, late=late), pql, now)
        done += 1
    return done


def _same(column: sa.Column, value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _move(sweeps: Sweeps, session: Session, pql: Pql, by: str, now: datetime) -> str | None:
    """After an SLA miss: take the lead from whoever has it and give it to the rep routing picks among the
    others (cap, pauses and hours hold). Returns the note for the manager, or None when nobody can take it
    now (the next sweep tries again)."""
    old = pql.claimed_by or pql.rep_id
    candidates = [c for c in sweeps.router.candidates(session, pql.tier, now)[0] if c.rep_id != old]
    chosen = pick(candidates)
    if chosen is None:
        return None
    # Conditional: a claim, a touch or a manager's move since this sweep read the lead wins over the sweep.
    released = session.connection().execute(
        sa.update(_PQLS).where(_PQLS.c.id == pql.id, _PQLS.c.version == pql.version,
                               _PQLS.c.state.notin_(CLOSED), _same(_PQLS.c.claimed_by, pql.claimed_by),
                               _same(_PQLS.c.rep_id, pql.rep_id), ~sa.exists().where(Touch.pql_id == pql.id))
        .values(claimed_by=None, claimed_at=None, rep_id=None, assigned_at=None, state=PqlState.ASSIGNED,
                updated_at=now)
    ).rowcount
    session.refresh(pql)
    if released != 1:
        return None
    why = words("moved_why", by=by, old=old)
    sweeps.router._give(session, pql, chosen.rep_id, "sla_miss", why, now=now)  # audited, and the rep is told
    outbox.reply(session, pql, _keys(pql.id)["moved"], words("moved", ref=pql.ref, old=old, new=chosen.rep_id),
                 now=now)
    return words("moved_note", old=old, new=chosen.rep_id)


# 2. Follow-ups -----------------------------------------------------------------------------------------------

def follow_ups(sweeps: Sweeps, now: datetime) -> int:
    """Remind reps of the next email of the kit, and of the disposition after the last; returns how many."""
    calendar = sweeps.settings.calendar
    with sweeps.pipeline.session() as session:
        touches: dict[int, list[Touch]] = defaultdict(list)
        for touch in session.exec(select(Touch).join(Pql, Touch.pql_id == Pql.id)
                                  .where(still_open(Pql.state)).order_by(Touch.pql_id, Touch.number)):
            touches[touch.pql_id].append(touch)
        due = {pql_id: step for pql_id, listed in touches.items()
               if (step := next_step(listed, calendar)) and now >= step.due}
        existing = _existing(session, [step.key(pql_id) for pql_id, step in due.items()])
    owed = [pql_id for pql_id, step in due.items() if step.key(pql_id) not in existing]
    return _each(sweeps, owed, lambda session, pql: _remind(session, pql, now, calendar))


def _remind(session: Session, pql: Pql, now: datetime, calendar: BusinessCalendar) -> int:
    touches = list(session.exec(select(Touch).where(Touch.pql_id == pql.id).order_by(Touch.number)))
    step = next_step(touches, calendar)
    rep = pql.claimed_by or pql.rep_id
    if step is None or now < step.due or not rep or _existing(session, [step.key(pql.id)]):
        return 0
    who, _ = lead_facts(session, pql)
    sent = _day(step.after.at, calendar)
    if step.name == "disposition":
        last = EMAIL_LABELS.get(step.after.email_key or "") or TOUCH_CHANNELS.get(step.after.channel, "a touch")
        text = words("disposition_due", ref=pql.ref, who=who, last=last, sent=sent)
    else:
        text = words("email_due", ref=pql.ref, who=who, due=EMAIL_LABELS[step.name],
                     last=EMAIL_LABELS[step.after.email_key], sent=sent)
    blocks = reminder_blocks(text, pql.id, ask_disposition=step.name == "disposition")
    outbox.dm(session, rep, step.key(pql.id), text, pql=pql, blocks=blocks, now=now)
    return 1


# 3. Stale claims ---------------------------------------------------------------------------------------------

def _stale_key(pql: Pql) -> str:
    return f"stale:{pql.id}:{pql.claimed_at.isoformat()}"


def _is_stale(pql: Pql, now: datetime, calendar: BusinessCalendar) -> bool:
    return is_stale(pql.claimed_at, now, calendar)


def _stale_claims_query():
    return select(Pql).where(still_open(Pql.state), Pql.claimed_by.is_not(None), Pql.claimed_at.is_not(None),
                             ~_touched())


def stale_claims(sweeps: Sweeps, now: datetime) -> int:
    """Claims untouched for a business day, flagged to the manager once per claim; returns how many."""
    calendar, manager = sweeps.settings.calendar, sweeps.settings.pql_manager
    if not manager:
        return 0
    with sweeps.pipeline.session() as session:
        stale = [pql for pql in session.exec(_stale_claims_query().order_by(Pql.id)) if _is_stale(pql, now, calendar)]
        existing = _existing(session, [_stale_key(pql) for pql in stale])
    owed = [pql.id for pql in stale if _stale_key(pql) not in existing]
    return _each(sweeps, owed, lambda session, pql: _flag_stale(session, pql, manager, now, calendar))


def _flag_stale(session: Session, pql: Pql, manager: str, now: datetime, calendar: BusinessCalendar) -> int:
    untouched = not session.exec(select(sa.exists().where(Touch.pql_id == pql.id))).one()
    if not (pql.claimed_by and untouched and _is_stale(pql, now, calendar)) or _existing(session, [_stale_key(pql)]):
        return 0
    waited = _business(calendar.elapsed(pql.claimed_at, now), calendar.day_hours())
    card = _card(session, pql, heading=words("stale_heading", ref=pql.ref), late=words("stale_late", waited=waited),
                 stale=True)
    _dm_manager(session, manager, _stale_key(pql), card, pql, now)
    return 1


# 4. The volume guardrail -------------------------------------------------------------------------------------

def volume_guardrail(sweeps: Sweeps, now: datetime) -> int:
    """More than 10 PQLs per rep per business day for 3 business days running (bot/domain/guardrails.py: leads of
    days off count on the next business day): one DM to the manager per streak, once its third day is over.
    Completed business days only; the roster is today's, at least one rep."""
    calendar, manager = sweeps.settings.calendar, sweeps.settings.pql_manager
    if not manager:
        return 0
    tz, business = calendar.tz, calendar.is_business_day
    today = now.astimezone(tz).date()
    completed = _business_days_before(today, VOLUME_LOOKBACK + VOLUME_STREAK, business)  # newest first
    # From the day after the business day before the oldest one needed: the days off before it count on it.
    first = _business_days_before(completed[-1], 1, business)[0] + timedelta(days=1)
    with sweeps.pipeline.session() as session, session.begin():
        created = session.exec(select(Pql.created_at).where(Pql.created_at >= day_bounds(first, tz)[0],
                                                            Pql.created_at < day_bounds(today, tz)[0])).all()
        reps = max(1, session.exec(select(sa.func.count()).select_from(Rep).where(Rep.on_roster)).one())
        per_day = per_business_day(Counter(at.astimezone(tz).date() for at in created), business)

        def streak(end: date) -> list[date]:  # the VOLUME_STREAK business days ending with `end`, oldest first
            return [end, *_business_days_before(end, VOLUME_STREAK - 1, business)][::-1]

        def completes(day: date) -> bool:  # the last day of a streak of VOLUME_STREAK business days
            return all(over(per_day.get(d, 0), reps) for d in streak(day))

        ends = [day for day in completed[:VOLUME_LOOKBACK][::-1]
                if completes(day) and not completes(_business_days_before(day, 1, business)[0])]
        keys = {day: f"guardrail-volume:{day.isoformat()}" for day in ends}
        existing = _existing(session, keys.values())
        done = 0
        for day, key in keys.items():
            if key in existing:
                continue
            days = ", ".join(f"{_day(d, calendar)}: {_per_rep(per_day.get(d, 0) / reps)}" for d in streak(day))
            text = words("volume", days=days, threshold=VOLUME_PER_REP, streak=VOLUME_STREAK)
            outbox.dm(session, manager, key, text, blocks=note_blocks(text), now=now)
            done += 1
        return done


def _business_days_before(day: date, count: int, business) -> list[date]:  # noqa: ANN001 (is_business_day)
    """The `count` business days before `day`, newest first."""
    found: list[date] = []
    while len(found) < count:
        day -= timedelta(days=1)
        if counts_on(day, business) == day:
            found.append(day)
    return found


def _per_rep(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


STEPS: list[tuple[str, Callable[[Sweeps, datetime], int]]] = [
    ("escalate", escalate),
    ("follow_ups", follow_ups),
    ("stale_claims", stale_claims),
    ("guardrail", volume_guardrail),
]
