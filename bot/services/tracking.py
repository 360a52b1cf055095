"""What the CRM and the webhook are owed, queued in the outbox in the transaction that made the change.

Two integrations take their work from the outbox (bot/integrations/ sends it):

- the webhook (PQL_WEBHOOK_URL): seed 002 section 7's tracking plan, `pql_triggered`, `pql_claimed`,
  `outreach_sent`, `pql_dispositioned`, `pql_escalated` and `pql_converted`, each a Segment-shaped track call
  whose body is fixed when it is queued (a retry sends the same bytes) and whose `messageId` is the notice's key,
  stable across retries and restarts, so a receiver de-duplicates on it;
- HubSpot (HUBSPOT_ACCESS_TOKEN): one notice per change to mirror (`raise`, `owner`, `touch`, `disposition`,
  `close`), holding only what changed; what it writes is read from the store when it is sent, like an alert.

Which integrations are on is the process's configuration (`configure`, called by `pipeline.for_team` from the
settings); with none on, nothing is queued, so a team without a CRM pays nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlmodel import Session

from bot.services import outbox
from bot.store.models import Pql

#: The integrations fed by the outbox in this process: "webhook", "hubspot".
SINKS: set[str] = set()

WEBHOOK = "webhook"
HUBSPOT = "hubspot"
#: The notice kinds the integrations send (never Slack).
INTEGRATIONS = (WEBHOOK, HUBSPOT)
#: The tracking plan's events (seed 002 section 7, and the escalation and conversion the issue adds).
EVENTS = ("pql_triggered", "pql_claimed", "outreach_sent", "pql_dispositioned", "pql_escalated", "pql_converted")
#: What a HubSpot notice asks for (bot/integrations/hubspot.py does it).
CRM_OPS = ("raise", "owner", "touch", "disposition", "close")


def configure(sinks: frozenset[str] | set[str]) -> None:
    """Turn the integrations on or off for this process (the settings' `sinks`)."""
    SINKS.clear()
    SINKS.update(sinks)


def track_call(event: str, *, key: str, user_id: str, at: datetime, properties: dict) -> str:
    """A Segment track call as JSON text: what the webhook POSTs, byte for byte."""
    if event not in EVENTS:
        raise ValueError(f"{event!r} is not a tracking-plan event")
    body = {"type": "track", "event": event, "userId": user_id, "messageId": key,
            "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "properties": properties,
            "context": {"library": {"name": "pqlbot", "version": "1"}}}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def event_row(event: str, pql_id: int, user_id: str, *, key: str, now: datetime, **properties) -> list[dict]:
    """The webhook's notice for `event` as rows (none when the webhook is off), for the bulk writers."""
    if WEBHOOK not in SINKS:
        return []
    key = f"webhook:{key}"
    text = track_call(event, key=key, user_id=user_id, at=now, properties={"pql_id": pql_id, **properties})
    return [_row(key, WEBHOOK, now, pql_id=pql_id, text=text)]


def crm_row(op: str, pql_id: int, *, key: str, now: datetime, **payload) -> list[dict]:
    """HubSpot's notice for `op` on a lead as rows (none when HubSpot is off)."""
    if HUBSPOT not in SINKS:
        return []
    if op not in CRM_OPS:
        raise ValueError(f"{op!r} is not a CRM change")
    return [_row(f"hubspot:{key}", HUBSPOT, now, pql_id=pql_id, payload={"op": op, **payload})]


def raised_rows(pql_id: int, user_id: str, *, now: datetime, **properties) -> list[dict]:
    """A new lead: `pql_triggered`, and the contact, company and task in HubSpot."""
    return event_row("pql_triggered", pql_id, user_id, key=f"pql_triggered:{pql_id}", now=now, **properties) + \
        crm_row("raise", pql_id, key=f"raise:{pql_id}", now=now)


def emit(session: Session, event: str, pql: Pql, *, key: str, now: datetime, **properties) -> None:
    """Queue a tracking-plan event about `pql` (once per `key`) in the caller's transaction."""
    _insert(session, event_row(event, pql.id, pql.user_id, key=key, now=now, ref=pql.ref, tier=pql.tier,
                               score=pql.score, level=pql.level, **properties))


def crm(session: Session, op: str, pql: Pql, *, key: str, now: datetime, **payload) -> None:
    """Queue a change for HubSpot (once per `key`) in the caller's transaction."""
    _insert(session, crm_row(op, pql.id, key=key, now=now, **payload))


def _row(key: str, kind: str, now: datetime, **fields) -> dict:
    return outbox.row(key=key, kind=kind, now=now, **fields)


def _insert(session: Session, rows: list[dict]) -> None:
    for values in rows:
        outbox.insert_row(session, values)
