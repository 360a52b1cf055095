"""Do-not-touch after the alert (seed 001's "do not touch" rules, issue 16): a support ticket opened or a checkout
started after a lead was recorded holds the lead; the ticket closed, or the checkout left for 24 hours, lets it go.

The heuristic:
- `support_ticket_opened` or `checkout_started`, made after the lead was recorded, holds an open lead. While it
  holds: no `<!here>`, no manager's DM, no SLA miss, no reminders, no stale-claim flag (the sweeps skip held leads).
  The alert shows the hold; whoever has the lead (the claimant, else the assigned rep) is told in the alert's thread
  and by DM, once per hold.
- A hold waits on every ticket opened during it and on the latest checkout. `support_ticket_closed` takes off the
  ticket with its id (else one with no id, else, for a close with no id, the oldest). With no ticket left and no
  checkout younger than the rules' `checkout_grace_hours` (24, seed 001: "abandoned for 24+ hours", the same
  number the scorer holds a checkout for before a lead), it lets go at once; a checkout's hours run out in the
  holds sweep (bot/sweeps/holds.py). `checkout_completed` and `trial_converted` stop the lead instead (converted).
- Letting go tells the rep once. The business time held is added to the lead's clocks: its SLA and escalations go
  on with the time they had left (the rep was told not to touch, so that time was not theirs), not from zero.
- A member's ticket or checkout holds their account's open account lead, as the anchor's own does (one account, one
  conversation: nobody pitches a company while one of its people waits on support).
- An opt-out is no hold: it stops the lead (`leads.stop_for_product_event`).
Keys: `hold:<id>:<since>`, `hold-dm:<id>:<since>`, `unhold:<id>:<since>`, `unhold-dm:<id>:<since>`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import OPEN
from bot.services import audit, outbox
from bot.services.account_leads import account_lead_of_member
from bot.store.models import AuditEntry, Pql, TrialUser
from scoring.events import CHECKOUT_STARTED, TICKET_CLOSED, TICKET_OPENED, Event
from templates import esc, say

#: Product events that hold an open lead, or may let a held one go.
HOLD_EVENTS = frozenset({TICKET_OPENED, CHECKOUT_STARTED, TICKET_CLOSED})


def reason(pql: Pql) -> str | None:
    """Why a held lead holds: "checkout" or "support_ticket"; None when it is not held."""
    if pql.held_since is None:
        return None
    return "checkout" if (pql.hold_on or {}).get("checkout") else "support_ticket"


def held_for(pql: Pql) -> timedelta:
    """Business time the lead spent on holds that have ended, and, unclaimed, while routing was paused for the whole
    team (bot/services/switches.py): its clocks do not count it."""
    return timedelta(seconds=pql.held_seconds or 0)


def ended_since(session: Session, pql: Pql, since: datetime) -> list[tuple[datetime, timedelta]]:
    """The lead's holds that ended at or after `since`: when each ended and the business time it held, as its end
    audited them (`pql_resumed`, from `release`)."""
    if not pql.held_seconds:
        return []
    ended = session.exec(select(AuditEntry).where(AuditEntry.pql_id == pql.id, AuditEntry.action == "pql_resumed",
                                                  AuditEntry.at >= since))
    return [(entry.at, timedelta(seconds=int((entry.detail or {}).get("held_seconds") or 0))) for entry in ended]


def apply(session: Session, event: Event, *, now: datetime, calendar_of: Callable[[Pql], BusinessCalendar | None],
          checkout_grace: timedelta) -> Pql | None:
    """A ticket or checkout event on its user's open lead; returns the lead when its hold changed. `calendar_of`: the
    calendar a lead's clocks run on (its team's), for the business time a hold that ends here held it."""
    pql = session.exec(
        select(Pql).where(Pql.user_id == event.user_id, Pql.state.in_(sorted(OPEN)), Pql.created_at <= event.at)
        .order_by(Pql.id.desc())
    ).first() or account_lead_of_member(session, event.user_id, at=event.at)  # a member's: the account's
    if pql is None:
        return None
    waits = {"tickets": list((pql.hold_on or {}).get("tickets", [])), "checkout": (pql.hold_on or {}).get("checkout")}
    if event.name == TICKET_CLOSED:
        if pql.held_since is None or not _close_ticket(waits["tickets"], event.props.get("ticket_id")):
            return None
        _save(session, pql, waits, now)
        return release(session, pql, now=now, calendar=calendar_of(pql), checkout_grace=checkout_grace) or pql
    if event.name == TICKET_OPENED:
        waits["tickets"].append(event.props.get("ticket_id"))
    else:
        waits["checkout"] = event.at.isoformat()
    was_held = pql.held_since is not None
    before = reason(pql)
    if not was_held:
        pql.held_since = event.at
    _save(session, pql, waits, now)
    if not was_held or reason(pql) != before:
        _tell(session, pql, "hold", "held", now)
    audit.record(session, "pql_held", at=now, pql_id=pql.id, user_id=pql.user_id, reason=event.name)
    return pql


def release(session: Session, pql: Pql, *, now: datetime, calendar: BusinessCalendar | None,
            checkout_grace: timedelta) -> Pql | None:
    """Let a held lead go when nothing holds it any more: no ticket open, no checkout younger than
    `checkout_grace`."""
    waits = pql.hold_on or {}
    checkout = waits.get("checkout")
    if pql.held_since is None or waits.get("tickets"):
        return None
    if checkout and now < datetime.fromisoformat(checkout) + checkout_grace:
        return None
    since = pql.held_since
    held = calendar.elapsed(since, now) if calendar else now - since
    _tell(session, pql, "unhold", "resumed", now)  # keyed by the hold's start: told before it is cleared
    pql.held_seconds = (pql.held_seconds or 0) + int(held.total_seconds())
    if pql.sla_due_at is not None and calendar is not None and held:
        pql.sla_due_at = calendar.add(pql.sla_due_at, held)
    pql.held_since, pql.hold_on = None, None
    pql.updated_at, pql.version = now, Pql.version + 1  # in SQL: a racing claim's bump is not lost
    session.add(pql)
    session.flush()
    audit.record(session, "pql_resumed", at=now, pql_id=pql.id, user_id=pql.user_id,
                 held_seconds=int(held.total_seconds()))
    return pql


def _close_ticket(tickets: list, ticket_id: str | None) -> bool:
    for candidate in ([ticket_id, None] if ticket_id else [tickets[0]] if tickets else []):
        if candidate in tickets:
            tickets.remove(candidate)
            return True
    return False


def _save(session: Session, pql: Pql, waits: dict, now: datetime) -> None:
    pql.hold_on = waits  # a new dict: the JSON column sees the change
    pql.updated_at, pql.version = now, Pql.version + 1  # the alert is edited to show it (in SQL, as above)
    session.add(pql)
    session.flush()


def _tell(session: Session, pql: Pql, key: str, sentence: str, now: datetime) -> None:
    """The thread reply and the DM to whoever has the lead, once per hold (keyed by when it started)."""
    user = session.get(TrialUser, pql.user_id)
    who = esc((user.name or user.email or pql.user_id) if user else pql.user_id)
    text = say(sentence, ref=pql.ref, who=who, reason=reason(pql))
    since = pql.held_since.isoformat()
    outbox.reply(session, pql, f"{key}:{pql.id}:{since}:{reason(pql)}", text, now=now)
    if owner := pql.claimed_by or pql.rep_id:
        outbox.dm(session, owner, f"{key}-dm:{pql.id}:{since}:{reason(pql)}", text, pql=pql, now=now)
