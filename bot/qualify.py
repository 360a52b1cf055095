"""Continuous scoring: rescore users from the store and record what changed.

- Each user's latest verdict is kept on `trial_users` (rewritten only when it changed).
- A user who becomes `qualified` gets exactly one PQL per trial, recorded with a `pql_triggered`
  audit entry; racing writers are safe because the (user, trial) pair is unique in the database.
- A later tier upgrade (medium -> high -> fast lane) updates that PQL and is audited as
  `pql_upgraded`; the PQL never moves down a tier, and a new PQL is never made for the same trial.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot import audit, outbox
from bot.ingest import events_of
from bot.lifecycle import TIER_RANK, PqlState
from bot.store.models import DispositionRecord, Pql, TrialUser
from scoring import PriorDisposition, Rules, ScoreResult, Status, score_user

_USERS = TrialUser.__table__
_PQLS = Pql.__table__
_FLUSH_EVERY = 5000


@dataclass(slots=True)
class Rescored:
    users: int = 0
    changed: int = 0
    triggered: list[int] = field(default_factory=list)  # new PQL ids, in the order they qualified
    upgraded: list[int] = field(default_factory=list)
    results: dict[int, ScoreResult] = field(default_factory=dict)  # the verdict behind each of those PQLs


def _user_row(result: ScoreResult, at: datetime) -> dict:
    profile = result.profile
    return {
        "user_id": result.user_id,
        "email": result.email,
        "domain": result.account.domain,
        "company_name": result.account.company_name,
        "company_size": result.company_size,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "title": profile.title,
        "plan": profile.plan,
        "signup_at": profile.signup_at,
        "status": str(result.status),
        "tier": None if result.tier is None else str(result.tier),
        "score": result.score,
        "verdict": result.to_json(),
        "scored_at": at,
    }


def _upsert(connection: sa.Connection, table: sa.Table, rows: list[dict], key: str) -> None:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = module.insert(table)
    update = {c: insert.excluded[c] for c in rows[0] if c != key}
    connection.execute(insert.on_conflict_do_update(index_elements=[key], set_=update), rows)


def _dispositions(connection: sa.Connection, user_ids: set[str] | None) -> dict[str, list[PriorDisposition]]:
    table = DispositionRecord.__table__
    query = sa.select(table.c.user_id, table.c.disposition, table.c.at)
    if user_ids is not None:
        query = query.where(table.c.user_id.in_(user_ids))
    found: dict[str, list[PriorDisposition]] = defaultdict(list)
    for user_id, disposition, at in connection.execute(query):
        found[user_id].append(PriorDisposition(disposition, at))
    return found


def rescore(
    session: Session,
    rules: Rules,
    *,
    at: datetime,
    tz: tzinfo,
    user_ids: Iterable[str] | None = None,
) -> Rescored:
    """Rescore `user_ids` (everyone when None) as of `at`, in the caller's transaction."""
    scope = None if user_ids is None else set(user_ids)
    connection = session.connection()
    previous_query = sa.select(_USERS.c.user_id, _USERS.c.verdict)
    if scope is not None:
        previous_query = previous_query.where(_USERS.c.user_id.in_(scope))
    previous = dict(connection.execute(previous_query).all()) if scope is None or scope else {}
    dispositions = _dispositions(connection, scope)
    report, pending = Rescored(), []

    for user_id, events in events_of(connection, scope):
        result = score_user(events, rules, at, tz=tz, dispositions=dispositions.get(user_id, ()))
        report.users += 1
        if previous.get(user_id) != result.to_json():
            pending.append(_user_row(result, at))
            report.changed += 1
        if result.status is Status.QUALIFIED:
            if pending:
                # The PQL points at its user row, so that row must exist first.
                _upsert(connection, _USERS, pending, "user_id")
                pending = []
            _record_pql(session, result, at, report)
        elif len(pending) >= _FLUSH_EVERY:
            _upsert(connection, _USERS, pending, "user_id")
            pending = []
    if pending:
        _upsert(connection, _USERS, pending, "user_id")
    return report


def _record_pql(session: Session, result: ScoreResult, at: datetime, report: Rescored) -> None:
    connection = session.connection()
    trial = result.profile.signup_at
    existing = connection.execute(
        sa.select(_PQLS.c.id, _PQLS.c.tier).where(_PQLS.c.user_id == result.user_id, _PQLS.c.trial_started_at == trial)
    ).first()
    # The talk track key rides along so outreach can be rendered from the stored lead later.
    signals = [s.to_json() | {"talk_track": s.talk_track} for s in result.signals]
    tier = str(result.tier)
    if existing is None:
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        insert = module.insert(_PQLS).values(
            user_id=result.user_id, trial_started_at=trial, state=str(PqlState.QUALIFIED), tier=tier,
            score=result.score, signals=signals, strongest_signal=result.strongest_signal,
            qualified_at=result.qualified_at, created_at=at, updated_at=at,
        )
        pql_id = connection.execute(
            insert.on_conflict_do_nothing(index_elements=["user_id", "trial_started_at"]).returning(_PQLS.c.id)
        ).scalar()
        if pql_id is None:
            return  # another process recorded it a moment ago
        audit.record(session, "pql_triggered", at=at, pql_id=pql_id, user_id=result.user_id,
                     score=result.score, tier=tier, signals=signals, qualified_at=result.qualified_at.isoformat())
        outbox.alert(session, pql_id, now=at)
        report.triggered.append(pql_id)
        report.results[pql_id] = result
        return
    pql_id, old_tier = existing
    if TIER_RANK[tier] > TIER_RANK[old_tier]:
        connection.execute(
            sa.update(_PQLS).where(_PQLS.c.id == pql_id, _PQLS.c.tier == old_tier).values(
                tier=tier, score=result.score, signals=signals, strongest_signal=result.strongest_signal,
                updated_at=at, version=_PQLS.c.version + 1,  # the alert is edited to show the new tier
            )
        )
        audit.record(session, "pql_upgraded", at=at, pql_id=pql_id, user_id=result.user_id,
                     old_tier=old_tier, tier=tier, score=result.score, signals=signals)
        report.upgraded.append(pql_id)
        report.results[pql_id] = result
