"""The signed webhook: the tracking plan's events, each delivered once, signed, in order per lead, through outages,
rate limits and a receiver that refuses them, and never in Slack's way."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.integrations.delivery import deliver_integrations, retry_failed, webhook_sender
from bot.integrations.webhook import Webhook, signature, verify
from bot.slack.delivery import deliver_due
from bot.slack.gateway import Gateway
from tests.crm.conftest import ANA, BOSS, NOW, SECRET, claim, dispose, lead, make_lead, notices, touch
from tests.crm.receiver import Receiver
from tests.standin import SlackStandIn


def send(store, receiver, at=NOW):
    senders = {"webhook": webhook_sender(Webhook(receiver.url, SECRET))}
    return deliver_integrations(store.engine, senders, now=at, manager=BOSS)


def test_a_leads_life_reaches_the_receiver_as_signed_segment_track_calls_each_once(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        pql_id = make_lead(store)
        claim(store, pql_id)
        touch(store, pql_id, note="sent email 1")
        dispose(store, pql_id)
        report = send(store, receiver)
        assert report.sent == 4
        assert send(store, receiver, NOW + timedelta(minutes=5)).sent == 0  # nothing twice
        events = receiver.events()
        assert [e["event"] for e in events] == ["pql_triggered", "pql_claimed", "outreach_sent",
                                                "pql_dispositioned"]
        assert all(call["verified"] for call in receiver.calls) and len(receiver.calls) == 4
        triggered, claimed, sent, dispositioned = events
        assert triggered["type"] == "track" and triggered["userId"] == "sarah"
        assert triggered["messageId"] == f"webhook:pql_triggered:{pql_id}"
        assert triggered["properties"]["ref"] == f"PQL-{pql_id}" and triggered["properties"]["tier"] == "medium"
        assert claimed["properties"]["rep"] == ANA
        assert (sent["properties"]["channel"], sent["properties"]["touch"]) == ("email", 1)
        assert dispositioned["properties"]["disposition"] == "meeting_set"
        stamp = receiver.calls[0]["headers"]["X-Pqlbot-Timestamp"]
        assert stamp == str(int(NOW.timestamp()))


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_full_stop_and_the_body():
    body = b'{"event":"pql_claimed"}'
    # Worked out independently: printf '1700000000.{"event":"pql_claimed"}' | openssl dgst -sha256 -hmac whsec-test-1
    import hashlib
    import hmac
    expected = hmac.new(b"whsec-test-1", b'1700000000.{"event":"pql_claimed"}', hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, body) == f"sha256={expected}"
    assert verify(SECRET, "1700000000", body, f"sha256={expected}")
    assert not verify(SECRET, "1700000001", body, f"sha256={expected}")  # a replay with a new timestamp
    assert not verify("other", "1700000000", body, f"sha256={expected}")


def test_nothing_is_queued_for_the_webhook_when_it_is_not_configured(store):
    pql_id = make_lead(store)
    claim(store, pql_id)
    assert notices(store, "webhook") == []


def test_a_webhook_outage_never_holds_up_slack(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver, SlackStandIn() as slack:
        receiver.answer(503, times=None)
        pql_id = make_lead(store)
        claim(store, pql_id)
        assert send(store, receiver).failed == 1  # one call a pass while it is down, not one per event
        gateway = Gateway.connect("xoxb-test", slack.url, backoff=0.01)
        report = deliver_due(store.engine, gateway, render_alert=lambda session, pid: ("PQL", None),
                             alerts_channel="#pql-alerts", now=NOW)
        assert (report.sent, report.failed) == (2, 0)  # the alert and the claim's reply; no webhook event tried
        assert len(slack.posted()) >= 1 and lead(store, pql_id).alert_ts is not None
        waiting = notices(store, "webhook")
        assert [(n.state, n.attempts, n.last_error) for n in waiting] == [("pending", 1, "webhook_503"),
                                                                          ("pending", 0, None)]


def test_a_failed_event_holds_back_the_later_events_of_its_lead_and_goes_first_when_it_heals(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        pql_id = make_lead(store)
        receiver.answer(500)
        assert send(store, receiver).failed == 1
        claim(store, pql_id)
        touch(store, pql_id)
        later = NOW + timedelta(seconds=10)
        assert send(store, receiver, later).sent == 0  # the claim and touch wait behind the trigger's retry
        assert send(store, receiver, NOW + timedelta(seconds=31)).sent == 3
        assert [e["event"] for e in receiver.events()] == ["pql_triggered", "pql_claimed", "outreach_sent"]


def test_a_rate_limit_waits_for_retry_after_and_is_not_an_attempt(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        make_lead(store)
        receiver.answer(429, retry_after=120)
        assert send(store, receiver).held == 1
        [notice] = notices(store, "webhook")
        assert (notice.state, notice.attempts, notice.next_attempt_at) == ("pending", 0, NOW + timedelta(seconds=120))
        assert send(store, receiver, NOW + timedelta(seconds=60)).sent == 0
        assert send(store, receiver, NOW + timedelta(seconds=120)).sent == 1
        assert len(receiver.events("pql_triggered")) == 1


def test_a_refusing_receiver_is_reported_to_the_manager_once_and_not_retried_until_fixed(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        receiver.answer(401, times=None)
        pql_id = make_lead(store)
        claim(store, pql_id)
        send(store, receiver)
        send(store, receiver, NOW + timedelta(minutes=1))
        assert [n.state for n in notices(store, "webhook")] == ["failed", "failed"]
        calls = len(receiver.calls)
        send(store, receiver, NOW + timedelta(hours=2))
        assert len(receiver.calls) == calls == 2  # not retried forever
        [told] = [n for n in notices(store, "dm") if n.target == BOSS]
        assert "refused" in told.text and "webhook_401" in told.text and "pqlbot crm retry" in told.text
        receiver.heal()
        assert retry_failed(store.engine, now=NOW + timedelta(hours=3)) == 2
        assert send(store, receiver, NOW + timedelta(hours=3)).sent == 2
        assert [e["event"] for e in receiver.events()] == ["pql_triggered", "pql_claimed"]
        receiver.answer(403, times=None)  # a new outage is told again
        touch(store, pql_id, at=NOW + timedelta(hours=4))
        send(store, receiver, NOW + timedelta(hours=4))
        assert len([n for n in notices(store, "dm") if n.target == BOSS]) == 2


def test_a_day_long_outage_then_recovery_delivers_every_event_once(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        receiver.answer(503, times=None)
        pql_id = make_lead(store)
        claim(store, pql_id)
        touch(store, pql_id)
        at = NOW
        while at < NOW + timedelta(hours=24):
            send(store, receiver, at)
            at += timedelta(minutes=15)
        assert receiver.events() == [] and {n.state for n in notices(store, "webhook")} == {"pending"}
        receiver.heal()
        for _ in range(3):
            at += timedelta(minutes=31)
            send(store, receiver, at)
        assert [e["event"] for e in receiver.events()] == ["pql_triggered", "pql_claimed", "outreach_sent"]
        assert set(receiver.deliveries.values()) == {1}


def test_the_body_is_the_same_on_every_attempt(store, sinks):
    sinks("webhook")
    with Receiver(SECRET) as receiver:
        make_lead(store)
        receiver.answer(500)
        send(store, receiver)
        send(store, receiver, NOW + timedelta(minutes=1))
        first, second = receiver.calls
        assert first["body"] == second["body"] and second["verified"]
        assert json.loads(second["body"])["timestamp"] == "2026-11-06T20:00:00Z"
