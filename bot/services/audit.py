"""The append-only audit trail: who changed what, when. Services call `record`; nothing edits entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.store.models import AuditEntry


def record(
    session: Session,
    action: str,
    *,
    at: datetime,
    actor: str = "system",
    pql_id: int | None = None,
    user_id: str | None = None,
    **detail: Any,
) -> AuditEntry:
    entry = AuditEntry(at=at, actor=actor, action=action, pql_id=pql_id, user_id=user_id, detail=detail)
    session.add(entry)
    return entry


def trail(session: Session, *, pql_id: int | None = None, user_id: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if pql_id is not None:
        query = query.where(AuditEntry.pql_id == pql_id)
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    return list(session.exec(query))
