"""The CRM and webhook tests' store: a pipeline with Ana and Ben on the roster, the integrations switched on as a
test asks (`sinks`), and off again after it."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import select

from bot.services import leads, tracking
from bot.services.pipeline import Pipeline
from bot.store.models import Notice, Pql
from tests.scoring.builders import NY, Trial, sarah

NOW = datetime(2026, 11, 6, 15, 0, tzinfo=NY)  # a Friday afternoon in business hours
ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
SECRET = "whsec-test-1"


@pytest.fixture
def sinks():
    """Switch integrations on for the test: `sinks("webhook", "hubspot")`."""
    def switch(*names: str) -> None:
        tracking.configure(set(names))

    yield switch
    tracking.configure(set())


@pytest.fixture
def store(engine):
    pipeline = Pipeline(engine, tz=NY, clock=lambda: NOW)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, [(ANA, "Ana Ruiz", None), (BEN, "Ben Okafor", None)], now=NOW)
    return pipeline


def make_lead(store, user: str = "sarah", at: datetime = NOW) -> int:
    trial = sarah() if user == "sarah" else \
        Trial(user, email=f"{user}@{user}.example").activate(1).invite(2).integrate(2)
    store.ingest(trial.events, at=at)
    with store.session() as session:
        return session.exec(select(Pql).where(Pql.user_id == user)).one().id


def act(store, fn, pql_id: int, user: str, **kwargs):
    """One service as `user`, in its own transaction, as a Slack handler runs it."""
    with store.session() as session, session.begin():
        who = leads.actor(session, user, manager=BOSS)
        return fn(session, session.get(Pql, pql_id), who, **kwargs)


def claim(store, pql_id: int, user: str = ANA, at: datetime = NOW):
    return act(store, leads.claim, pql_id, user, now=at, tz=NY, cap=5)


def touch(store, pql_id: int, user: str = ANA, at: datetime = NOW, channel: str = "email", note: str | None = None):
    return act(store, leads.log_touch, pql_id, user, channel=channel, email_key="email1" if channel == "email"
               else None, note=note, now=at)


def dispose(store, pql_id: int, user: str = ANA, at: datetime = NOW, disposition: str = "meeting_set"):
    return act(store, leads.set_disposition, pql_id, user, disposition=disposition, reason=None, now=at)


def notices(store, kind: str | None = None) -> list[Notice]:
    with store.session() as session:
        return [n for n in session.exec(select(Notice).order_by(Notice.id)) if kind is None or n.kind == kind]


def lead(store, pql_id: int) -> Pql:
    with store.session() as session:
        return session.get(Pql, pql_id)
