"""`pqlbot serve` SIGKILLed while the webhook's receiver holds its answer, then restarted: the receiver, checking
every signature and de-duplicating on messageId, counts every lead's pql_triggered exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from bot.store import make_engine
from tests.crm.conftest import SECRET
from tests.crm.receiver import Receiver
from tests.reliability.conftest import (  # noqa: F401 (fixtures)
    database_url,
    fault_postgres_url,
    rows,
    send_batch,
    serves,
    slack,
    team_zone,
    trial_batch,
    wait_until,
)

USERS = [f"hook{n:02d}" for n in range(12)]


@pytest.mark.slow
def test_serve_killed_mid_webhook_call_and_restarted_delivers_each_event_once(database_url, slack, serves):  # noqa: F811
    zone, _ = team_zone()
    now = datetime.now(UTC)
    batch = {"batch": [call for user in USERS for call in trial_batch(user, now=now, run="hook")["batch"]]}
    with Receiver(SECRET) as receiver:
        held, release = threading.Event(), threading.Event()

        def hold(body: bytes) -> None:  # the fourth call reaches the receiver; its answer never leaves
            if len(receiver.calls) == 4 and not held.is_set():
                held.set()
                release.wait(30)

        receiver.before_answer = hold
        first = serves("first", database_url=database_url, slack=slack, zone=zone)
        first.env.update(PQL_WEBHOOK_URL=receiver.url, PQL_WEBHOOK_SECRET=SECRET)
        first.start().ready()
        try:
            assert send_batch(first.port, batch) == 200
            assert held.wait(30), "the first process never called the webhook"
            first.kill()
        finally:
            release.set()
            receiver.before_answer = lambda body: None
        engine = make_engine(database_url)
        try:
            [(sending,)] = rows(engine, "SELECT count(*) FROM notices WHERE kind = 'webhook' AND state = 'sending'")
            assert sending == 1  # killed mid-call: the store never learned the receiver had it
            second = serves("second", database_url=database_url, slack=slack, zone=zone)
            second.env.update(PQL_WEBHOOK_URL=receiver.url, PQL_WEBHOOK_SECRET=SECRET)
            second.start().ready()

            def all_sent() -> bool:
                [(owed,)] = rows(engine, "SELECT count(*) FROM notices WHERE kind = 'webhook' AND state <> 'sent'")
                [(made,)] = rows(engine, "SELECT count(*) FROM notices WHERE kind = 'webhook'")
                return made == len(USERS) and owed == 0

            wait_until(all_sent, timeout=60, every=0.2, what="every webhook event sent")
            second.stop()
            assert "Traceback" not in second.log(), second.log()[-3000:]
        finally:
            engine.dispose()
        assert all(call["verified"] for call in receiver.calls)
        triggered = receiver.events("pql_triggered")
        assert sorted(e["userId"] for e in triggered) == USERS  # each lead's event, counted once
        repeats = sum(count - 1 for count in receiver.deliveries.values())
        assert repeats <= 1  # at most the call the kill cut off came again, with the same messageId
