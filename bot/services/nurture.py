"""A nurture lead that comes alive again is re-raised to its owner, with what changed (issue 19).

A lead dispositioned Nurture stays closed: routing and escalations leave it be. When new signals lift it a tier
(bot/services/rescore.py records the upgrade, `pql_upgraded`), the rep who nurtured it (its claimant, else the
rep it was assigned to; the manager when nobody had it) gets one DM per upgrade saying which signals are new and
the tier it moved to, with the lead's link, and the re-raise is audited (`pql_reraised`). Nothing is reassigned:
it is their lead, and theirs to pick up again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from bot.services import audit, outbox
from bot.store.models import AuditEntry, Pql
from templates import say


def reraise(session: Session, upgraded: Iterable[int], *, now: datetime, manager: str | None = None) -> list[int]:
    """DM the owner of each upgraded lead that was dispositioned Nurture; returns the ids re-raised."""
    raised = []
    for pql_id in upgraded:
        pql = session.get(Pql, pql_id, populate_existing=True)  # the upgrade was written past the ORM
        if pql is None or pql.disposition != "nurture":
            continue
        owner = pql.claimed_by or pql.rep_id or manager
        if owner is None:
            continue
        trail = list(session.exec(select(AuditEntry).where(
            AuditEntry.pql_id == pql_id, AuditEntry.action.in_(["pql_triggered", "pql_upgraded"]))
            .order_by(AuditEntry.id)))
        before = {s["name"] for entry in trail[:-1] for s in entry.detail.get("signals", [])}
        latest = trail[-1].detail if trail else {}
        new = [s for s in pql.signals if s["name"] not in before]
        what = "; ".join(f"{s['evidence']} (day {s['day']})" for s in new) or say("reraise_nothing_new")
        text = say("nurture_reraised", ref=pql.ref, old_tier=latest.get("old_tier", ""), tier=pql.tier, what=what)
        if outbox.dm(session, owner, f"nurture-reraise:{pql.id}:{pql.version}", text, pql=pql, now=now):
            audit.record(session, "pql_reraised", at=now, pql_id=pql.id, user_id=pql.user_id, rep=owner,
                         tier=pql.tier, new_signals=[s["name"] for s in new])
            raised.append(pql.id)
    return raised
