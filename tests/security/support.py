"""What the security tests share: hypothesis settings that keep CI stable, and a fingerprint of the store."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlmodel import SQLModel


def fuzz(max_examples: int = 150) -> settings:
    """Bounded and derandomized (the same examples on every run, no example database), no deadline:
    a request goes through the store, whose speed is not what these properties are about."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


#: Where the Slack route records each request it accepts, whatever the request then does.
REQUESTS_SEEN = "slack_requests_seen"


def counts(engine: sa.Engine) -> dict[str, int]:
    """Rows per table: equal before and after means the request changed nothing (that it was received is
    recorded in REQUESTS_SEEN, which is not counted)."""
    with engine.connect() as connection:
        return {table.name: connection.scalar(sa.select(sa.func.count()).select_from(table))
                for table in SQLModel.metadata.sorted_tables if table.name != REQUESTS_SEEN}


def lead_state(engine: sa.Engine) -> tuple:
    """Everything an action on a lead or a rep could change, to compare before and after."""
    with engine.connect() as connection:
        pqls = connection.execute(sa.text(
            "SELECT id, state, rep_id, claimed_by, disposition, version FROM pqls ORDER BY id")).all()
        reps = connection.execute(sa.text("SELECT id, on_roster, paused FROM reps ORDER BY id")).all()
    return tuple(map(tuple, pqls)), tuple(map(tuple, reps)), counts(engine)


def errors_logged(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR]
