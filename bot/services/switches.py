"""The team-wide switches (seed 002's rollback plan and guardrails), beside each rep's own pause.

- `routing_paused`: "Pause PQL routing" (the rollback plan). Leads are still scored, recorded and alerted in the
  channel, so nothing is lost; none is assigned (a new lead waits in the queue, which is not shared out) and no
  lead is escalated (no @here, no manager's DM, no reassignment). Resuming shares the queue out in order at the
  next opening, within caps, as after a weekend, and gives every open lead nobody has claimed the business time
  (on its team's calendar) routing was paused since the lead came in, as a do-not-touch hold does when it ends
  (bot/services/holds.py): its first-touch SLA and its @here and manager's ladder go on with the time they had
  left, so the sweep after a resume does not escalate every lead at once. Each lead so moved is audited
  (`pql_clocks_moved`). Only the manager throws it; the App Home shows a banner.
- `outreach_paused`: the spam-complaint guardrail's "pause outreach" (bot/sweeps/complaints.py throws it, the
  manager may too): the outreach emails are not offered, and the manager is told why.

A switch with no row is off. Throwing a switch to where it is already changes nothing and is not audited again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.teams import Teams
from bot.services import audit, holds
from bot.services.leads import Actor, Refused
from bot.store.models import Pql, Switch
from bot.store.queries import still_open
from templates import say, span

ROUTING = "routing_paused"
OUTREACH = "outreach_paused"


def get(session: Session, name: str) -> Switch | None:
    """The switch when it is on, else None."""
    row = session.get(Switch, name)
    return row if row is not None and row.on else None


def is_on(session: Session, name: str) -> bool:
    return get(session, name) is not None


def throw(session: Session, name: str, on: bool, *, by: str, now: datetime, why: str | None = None) -> bool:
    """Set switch `name`; True when it changed (and was audited)."""
    row = session.get(Switch, name)
    if row is not None and row.on == on:
        return False
    if row is None:
        if not on:
            return False
        row = Switch(name=name, on=on, by=by, at=now, why=why)
        session.add(row)
    else:
        row.on, row.by, row.at, row.why = on, by, now, why
    session.flush()
    audit.record(session, f"{name}_on" if on else f"{name}_off", at=now, actor=by, why=why)
    return True


def set_routing_paused(session: Session, who: Actor, paused: bool, *, now: datetime, teams: Teams) -> str:
    """`/pql pause-all` and `/pql resume-all`: the manager's rollback switch; the sentence to answer with. Resuming
    moves the clocks of the leads nobody has claimed on by the business time paused (`_move_clocks`)."""
    if not who.is_manager:
        raise Refused(say("managers_only", action="pause or resume routing for the whole team"))
    since = None if paused or (row := get(session, ROUTING)) is None else row.at
    changed = throw(session, ROUTING, paused, by=who.user_id, now=now)
    moved = _move_clocks(session, since, now=now, teams=teams, by=who.user_id) if changed and since else []
    return say("routing_switch", paused=paused, changed=changed, moved=len(moved),
               most=span(max(moved)) if moved else None)


def _move_clocks(session: Session, since: datetime, *, now: datetime, teams: Teams, by: str) -> list[timedelta]:
    """Give each open, unclaimed lead the business time routing was paused (from `since`, or from when the lead came
    in or was handed over, to `now`), less what do-not-touch holds gave it over that time (a hold that ended, or one
    on now, which counts its own time when it ends); returns the time each moved lead was given."""
    moved = []
    for pql in session.exec(select(Pql).where(still_open(Pql.state), Pql.claimed_by.is_(None)).order_by(Pql.id)):
        calendar = teams.team(pql.team).calendar
        start = max(since, pql.handed_off_at or pql.created_at)
        paused = calendar.elapsed(start, min(now, pql.held_since or now)) - _held_within(session, pql, start, calendar)
        if paused <= timedelta():
            continue
        pql.held_seconds = (pql.held_seconds or 0) + int(paused.total_seconds())  # the @here and 2-hour ladder
        if pql.sla_due_at is not None:
            pql.sla_due_at = calendar.add(pql.sla_due_at, paused)
        pql.updated_at, pql.version = now, Pql.version + 1  # in SQL: a racing claim's bump is not lost
        session.add(pql)
        session.flush()
        audit.record(session, "pql_clocks_moved", at=now, actor=by, pql_id=pql.id, user_id=pql.user_id,
                     paused_seconds=int(paused.total_seconds()), sla_due_at=pql.sla_due_at.isoformat()
                     if pql.sla_due_at else None)
        moved.append(paused)
    return moved


def _held_within(session: Session, pql: Pql, start: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time since `start` on holds that ended since then: their own end gave it to the lead's clocks
    already (each hold's length ran up to its end)."""
    return sum((min(held, calendar.elapsed(start, at)) for at, held in holds.ended_since(session, pql, start)),
               timedelta())


def set_outreach_paused(session: Session, who: Actor, paused: bool, *, now: datetime) -> str:
    """`/pql pause-outreach` and `/pql resume-outreach`: the manager's hand on the spam-complaint guardrail."""
    if not who.is_manager:
        raise Refused(say("managers_only", action="pause or resume outreach"))
    changed = throw(session, OUTREACH, paused, by=who.user_id, now=now)
    return say("outreach_switch", paused=paused, changed=changed)
