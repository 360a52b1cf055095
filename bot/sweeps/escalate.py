"""The SLA clock's escalations (seed 002, sections 5 and 6), in business time.

The heuristic, for each open lead not yet both claimed and touched (bot/domain/sla.py, `escalations_due`):
- 1 business hour after the alert with nobody claiming it: an `<!here>` in the alert's thread.
- 2 business hours after it, still unclaimed, or claimed but untouched: a DM to the manager.
- The first-touch SLA missed (no touch by `sla_due_at`): a DM to the manager that stands for the 2-hour one,
  so a high or fast-lane lead (an SLA of 2 hours or less) makes one DM, not two, and so does a medium lead
  first seen after 4 hours.
- With PQL_REASSIGN_ON_SLA_MISS on, an SLA miss also moves the lead to another rep, chosen as routing chooses
  (audited, said in the thread, once per lead); the manager's DM says where it went, or that nobody could take it.
Teams (bot/domain/teams.py): each lead's clock runs on its team's business hours and holidays, and its team's
manager gets the DMs (one digest per manager); with one team, PQL_MANAGER and PQL_BUSINESS_HOURS as before. A lead
handed to another team (bot/services/handoffs.py) starts the ladder again from the hand-off, under new keys.
A lead's clock starts when business next opens after pqlbot recorded it (bot/domain/business_time.py), so a PQL
recorded at 17:30 on a Friday gets its `<!here>` at 09:30 on Monday. A lead on a do-not-touch hold is owed nothing;
once it resumes, its clock goes on with the time it had left (bot/services/holds.py).

Digests: when one sweep owes several leads an `<!here>`, the channel gets one `<!here>` listing them (each linked to
its alert, DIGEST_MAX by name and "and N more"), and each thread still gets its reply, without a `<!here>` of its
own; when it owes the manager several DMs, the manager gets one DM listing them. One lead owed: the message of its
own, as before (the `<!here>` in its thread, the manager's card).

Keys: `esc-here:<id>`, `esc-2h:<id>`, `esc-sla:<id>` and `esc-moved:<id>`, one each per lead, so each lead is
escalated once whatever the shape: a DM said in the manager's digest leaves its key taken by a "folded" notice
(never sent on its own). A digest's key is `digest-here:<hash>` or `digest-manager:<hash>` of its leads' own keys,
sorted: stable for the same set, and another for the next rung of the ladder. Everything a sweep owes is queued in
one transaction (each lead in a savepoint of its own, so one lead's failure leaves it out and the next sweep retries
it): a crash before the commit queues nothing and the next sweep owes it all again; after it, the outbox sends each
notice once (the channel's digest is looked for before it is posted again, like a thread reply: bot/slack/
delivery.py). A digest lists only the leads whose own key this sweep took. The reassignment is a conditional update
(a claim, a touch or a manager's move made meanwhile wins), and its thread reply's key marks it done.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import CLOSED, PqlState
from bot.domain.routing import pick
from bot.domain.sla import escalations_due
from bot.services import outbox, switches, tracking
from bot.services.holds import held_for
from bot.services.lead_view import lead_facts
from bot.store.models import Pql
from bot.store.queries import still_open
from bot.sweeps.common import (
    SweepContext,
    dm_manager,
    manager_card,
    taken,
    team_of,
    touched,
    touched_since_handoff,
    words,
)
from templates import span

log = logging.getLogger(__name__)

_PQLS = Pql.__table__
#: The most leads a digest names; the rest are "and N more" (a message people read, not a report).
DIGEST_MAX = 15


@dataclass(slots=True)
class _Owed:
    """What one lead is owed by this sweep: the `<!here>` (how long it has waited), the manager's DM (its key and
    card), and how many reassignments were made for it."""

    pql: Pql
    waited: str | None = None
    manager: tuple[str, dict] | None = None
    moved: int = 0
    audience: str | None = None  # the manager who hears of it (the lead's team's)


def escalate(sweeps: SweepContext, now: datetime) -> int:
    """The `<!here>`, the manager's DMs and the optional reassignment owed now; returns how many were made."""
    with sweeps.pipeline.session() as session:
        if switches.is_on(session, switches.ROUTING):
            return 0  # the rollback switch: nothing is escalated while routing is paused
        rows = session.exec(
            select(Pql, touched().label("touched"))
            .where(still_open(Pql.state), Pql.held_since.is_(None), sa.or_(Pql.claimed_by.is_(None), ~touched()))
            .order_by(Pql.id)
        ).all()
        due = {pql.id: (pql, kinds) for pql, was_touched in rows
               if (kinds := _due(pql, was_touched, now, team_of(sweeps, pql)[0]))}
        existing = taken(session, [key for pql, _ in due.values() for key in _keys(pql).values()])
    owed = [pql_id for pql_id, (pql, kinds) in due.items() if _owed(sweeps, pql, kinds, existing)]
    if not owed:
        return 0
    with sweeps.pipeline.session() as session, session.begin():
        found = []
        for pql_id in owed:
            try:
                with session.begin_nested():  # one lead's failure is rolled back alone; the next sweep retries it
                    pql = session.get(Pql, pql_id)
                    if pql is not None and pql.state not in CLOSED:
                        found.append(_owed_now(sweeps, session, pql, now))
            except Exception:  # noqa: BLE001 (one lead's failure must not stop the others)
                log.exception("escalating PQL-%s failed", pql_id)
        return sum(lead.moved for lead in found) + _here(sweeps, session, found, now) + \
            _to_manager(sweeps, session, found, now)


def _due(pql: Pql, was_touched: bool, now: datetime, calendar: BusinessCalendar) -> list[str]:
    if pql.held_since is not None:  # on hold: no @here, no manager's DM, no SLA miss
        return []
    return escalations_due(recorded_at=pql.handed_off_at or pql.created_at, claimed=pql.claimed_by is not None,
                           touched=was_touched, sla_due_at=pql.sla_due_at, now=now, calendar=calendar,
                           held=held_for(pql))


def _keys(pql: Pql) -> dict[str, str]:
    """Each rung of the ladder once per lead, and once again after each hand-off to another team."""
    tail = f"{pql.id}:{pql.handed_off_at:%Y%m%dT%H%M%S}" if pql.handed_off_at else f"{pql.id}"
    return {"here": f"esc-here:{tail}", "sla": f"esc-sla:{tail}", "2h": f"esc-2h:{tail}", "moved": f"esc-moved:{tail}"}


def _owed(sweeps: SweepContext, pql: Pql, due: list[str], existing: set[str]) -> bool:
    keys = _keys(pql)
    manager = team_of(sweeps, pql)[1]
    if "here" in due and keys["here"] not in existing:
        return True
    if "sla" in due and ((manager and keys["sla"] not in existing) or
                         (sweeps.settings.pql_reassign_on_sla_miss and keys["moved"] not in existing)):
        return True
    return bool("2h" in due and manager and not {keys["2h"], keys["sla"]} & existing)


def _owed_now(sweeps: SweepContext, session: Session, pql: Pql, now: datetime) -> _Owed:
    """What the lead is owed, as it is now (a claim or a touch since the sweep's first read owes nothing); an SLA
    miss with PQL_REASSIGN_ON_SLA_MISS on moves it here."""
    settings = sweeps.settings
    calendar, manager = team_of(sweeps, pql)
    was_touched = session.exec(select(touched_since_handoff(pql))).one()
    due = _due(pql, was_touched, now, calendar)
    keys = _keys(pql)
    existing = taken(session, keys.values())
    start = calendar.add(calendar.next_open(pql.handed_off_at or pql.created_at), held_for(pql))  # held: not waiting
    owed = _Owed(pql, audience=manager)
    if "here" in due and keys["here"] not in existing:
        owed.waited = span(calendar.elapsed(start, now))
    if "sla" in due:
        by = span(calendar.elapsed(pql.sla_due_at, now))
        late = words("sla_late", by=by)
        note = None
        if settings.pql_reassign_on_sla_miss and keys["moved"] not in existing:
            note = _move(sweeps, session, pql, by, now)
            owed.moved += note is not None
            note = note or words("not_moved_note")
        if manager and keys["sla"] not in existing:
            owed.manager = keys["sla"], manager_card(session, pql, heading=words("sla_heading", ref=pql.ref), late=late,
                                                     note=note)
    if "2h" in due and manager and not {keys["2h"], keys["sla"]} & existing:
        waited = span(calendar.elapsed(start, now))
        if pql.claimed_by is None:
            heading, late = words("unclaimed_heading", ref=pql.ref), words("unclaimed_late", waited=waited)
        else:
            heading, late = words("untouched_heading", ref=pql.ref), words("untouched_late", waited=waited)
        owed.manager = keys["2h"], manager_card(session, pql, heading=heading, late=late)
    if owed.manager is not None:  # the manager is told: the tracking plan's escalation
        why = "sla_missed" if owed.manager[0] == keys["sla"] else "untouched" if pql.claimed_by else "unclaimed"
        tracking.emit(session, "pql_escalated", pql, key=f"pql_escalated:{owed.manager[0]}", now=now, why=why,
                      rep=pql.claimed_by or pql.rep_id)
    return owed


def _digest_key(audience: str, keys: list[str]) -> str:
    """The same key for the same leads' escalations (their own keys), however often the sweep runs; another rung
    of the ladder for the same leads (the 2-hour DM, then the SLA miss) is another digest."""
    return f"digest-{audience}:{hashlib.sha256(','.join(sorted(keys)).encode()).hexdigest()[:32]}"


def _listed(lines: list[str]) -> list[str]:
    return lines[:DIGEST_MAX] + ([words("more", count=len(lines) - DIGEST_MAX)] if len(lines) > DIGEST_MAX else [])


def _link(pql: Pql) -> str:
    return words("alert_link", ref=pql.ref, channel=pql.alert_channel, ts=pql.alert_ts)


def _here(sweeps: SweepContext, session: Session, found: list[_Owed], now: datetime) -> int:
    """The `<!here>`s owed: in its thread for one lead; for several, a quiet reply in each thread and one `<!here>`
    in the channel listing them. Returns how many messages were queued."""
    leads = [lead for lead in found if lead.waited is not None]
    if len(leads) == 1:
        [lead] = leads
        text = words("here", ref=lead.pql.ref, waited=lead.waited)
        return int(outbox.reply(session, lead.pql, _keys(lead.pql)["here"], text, now=now))
    listed = []
    for lead in leads:
        text = words("here_quiet", ref=lead.pql.ref, waited=lead.waited)
        if outbox.reply(session, lead.pql, _keys(lead.pql)["here"], text, now=now):
            who, company = lead_facts(session, lead.pql)
            listed.append(words("here_digest_line", link=_link(lead.pql), who=who, company=company, waited=lead.waited))
    if not listed:
        return 0
    text = "\n".join([words("here_digest_heading", count=len(listed)), *_listed(listed), words("here_digest_end")])
    key = _digest_key("here", [_keys(lead.pql)["here"] for lead in leads])
    return len(listed) + outbox.post(session, sweeps.settings.pql_alerts_channel, key, text, now=now)


def _to_manager(sweeps: SweepContext, session: Session, found: list[_Owed], now: datetime) -> int:
    """The managers' DMs owed, each manager's (a team's) on its own: `_to_one_manager`."""
    audiences = dict.fromkeys(lead.audience for lead in found if lead.manager is not None and lead.audience)
    return sum(_to_one_manager(session, manager, [lead for lead in found if lead.audience == manager], now)
               for manager in audiences)


def _to_one_manager(session: Session, manager: str, found: list[_Owed], now: datetime) -> int:
    """A manager's DMs owed: the lead's card for one lead; for several, one DM listing them (each lead's own key
    taken by a folded notice). Returns how many messages were queued."""
    leads = [lead for lead in found if lead.manager is not None]
    if not leads:
        return 0
    if len(leads) == 1:
        [lead] = leads
        key, card = lead.manager
        return int(dm_manager(session, manager, key, card, lead.pql, now))
    listed = []
    for lead in leads:
        key, card = lead.manager
        text = words("manager_text", heading=card["heading"], who=card["who"], late=card["late"])
        if outbox.folded(session, lead.pql, manager, key, text, payload=card, now=now):
            listed.append(words("manager_digest_line", link=_link(lead.pql), who=card["who"], company=card["company"],
                                late=card["late"], holder=card["holder"], note=card["note"]))
    if not listed:
        return 0
    text = "\n".join([words("manager_digest_heading", count=len(listed)), *_listed(listed),
                      words("manager_digest_end")])
    key = _digest_key("manager", [lead.manager[0] for lead in leads])
    return int(outbox.dm(session, manager, key, text, now=now))


def _same(column: sa.Column, value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _move(sweeps: SweepContext, session: Session, pql: Pql, by: str, now: datetime) -> str | None:
    """After an SLA miss: take the lead from whoever has it and give it to the rep routing picks among the
    others (cap, pauses and hours hold). Returns the note for the manager, or None when nobody can take it
    now (the next sweep tries again)."""
    old = pql.claimed_by or pql.rep_id
    router = sweeps.router.for_team(pql.team)  # within the lead's team
    candidates = [c for c in router.candidates(session, pql.tier, now)[0] if c.rep_id != old]
    chosen = pick(candidates)
    if chosen is None:
        return None
    # Conditional: a claim, a touch or a manager's move since this sweep read the lead wins over the sweep.
    released = session.connection().execute(
        sa.update(_PQLS).where(_PQLS.c.id == pql.id, _PQLS.c.version == pql.version,
                               _PQLS.c.state.notin_(CLOSED), _same(_PQLS.c.claimed_by, pql.claimed_by),
                               _same(_PQLS.c.rep_id, pql.rep_id), ~touched_since_handoff(pql))
        .values(claimed_by=None, claimed_at=None, rep_id=None, assigned_at=None, state=PqlState.ASSIGNED,
                updated_at=now)
    ).rowcount
    session.refresh(pql)
    if released != 1:
        return None
    why = words("moved_why", by=by, old=old)
    router._give(session, pql, chosen.rep_id, "sla_miss", why, now=now)  # audited, and the rep is told
    outbox.reply(session, pql, _keys(pql)["moved"], words("moved", ref=pql.ref, old=old, new=chosen.rep_id),
                 now=now)
    return words("moved_note", old=old, new=chosen.rep_id)
