"""The team-wide switches (seed 002's rollback plan and guardrails), beside each rep's own pause.

- `routing_paused`: "Pause PQL routing" (the rollback plan). Leads are still scored, recorded and alerted in the
  channel, so nothing is lost; none is assigned (a new lead waits in the queue, which is not shared out) and no
  lead is escalated (no @here, no manager's DM, no reassignment). Resuming shares the queue out in order at the
  next opening, within caps, as after a weekend. Only the manager throws it; the App Home shows a banner.
- `outreach_paused`: the spam-complaint guardrail's "pause outreach" (bot/sweeps/complaints.py throws it, the
  manager may too): the outreach emails are not offered, and the manager is told why.

A switch with no row is off. Throwing a switch to where it is already changes nothing and is not audited again.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.services import audit
from bot.services.leads import Actor, Refused
from bot.store.models import Switch
from templates import say

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


def set_routing_paused(session: Session, who: Actor, paused: bool, *, now: datetime) -> str:
    """`/pql pause-all` and `/pql resume-all`: the manager's rollback switch; the sentence to answer with."""
    if not who.is_manager:
        raise Refused(say("managers_only", action="pause or resume routing for the whole team"))
    changed = throw(session, ROUTING, paused, by=who.user_id, now=now)
    return say("routing_switch", paused=paused, changed=changed)


def set_outreach_paused(session: Session, who: Actor, paused: bool, *, now: datetime) -> str:
    """`/pql pause-outreach` and `/pql resume-outreach`: the manager's hand on the spam-complaint guardrail."""
    if not who.is_manager:
        raise Refused(say("managers_only", action="pause or resume outreach"))
    changed = throw(session, OUTREACH, paused, by=who.user_id, now=now)
    return say("outreach_switch", paused=paused, changed=changed)
