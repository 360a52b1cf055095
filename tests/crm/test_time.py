"""The CRM's and the webhook's time rules: an escalation is sent when the manager is told (business hours, across a
weekend and the end of daylight saving time), and the HubSpot task is due at the lead's SLA deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from bot.integrations.delivery import deliver_integrations
from bot.integrations.hubspot import HubSpot, hubspot_sender
from bot.sweeps.escalate import escalate
from tests.crm.hubspot_standin import TOKEN, HubSpotStandIn
from tests.scoring.builders import NY
from tests.sweeps.test_escalations import BOSS, World, ny


def escalations(world) -> list[str]:
    return [n.key for n in world.notices("webhook:pql_escalated")]


def test_an_escalation_is_tracked_when_the_manager_is_told_in_business_hours_across_the_dst_weekend(engine, sinks):
    sinks("webhook", "hubspot")
    world = World(engine)
    friday = ny(2026, 10, 30, 17, 30)  # EDT; clocks go back on Sunday 1 November
    with freeze_time(friday):
        pql_id = world.lead("sarah", friday)
    for at in (friday + timedelta(hours=1), ny(2026, 10, 31, 12, 0), datetime(2026, 11, 2, 15, 29, tzinfo=UTC)):
        with freeze_time(at):
            escalate(world.sweeps, at)
    assert escalations(world) == []  # the @here at Monday 09:30 is not the manager's: nothing tracked yet
    monday_1030 = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)  # 10:30 EST: two business hours unclaimed
    with freeze_time(monday_1030):
        escalate(world.sweeps, monday_1030)
        escalate(world.sweeps, monday_1030 + timedelta(minutes=5))
    [key] = escalations(world)
    assert key == f"webhook:pql_escalated:esc-2h:{pql_id}"
    [event] = world.notices("webhook:pql_escalated")
    assert '"why":"unclaimed"' in event.text and '"timestamp":"2026-11-02T15:30:00Z"' in event.text
    with HubSpotStandIn(owners=[("9001", "ana@acme.com", "Ana", "Ruiz")]) as hubspot:
        hubspot.setup_done()
        hub = HubSpot(TOKEN, hubspot.url)
        deliver_integrations(engine, {"hubspot": hubspot_sender(hub, tz=NY)}, now=monday_1030, manager=BOSS)
        [task] = hubspot.of("tasks")
        due = datetime(2026, 11, 2, 17, 30, tzinfo=UTC)  # 12:30 EST: the medium lead's 4 business hours
        assert world.pql(pql_id).sla_due_at == due
        assert task["hs_timestamp"] == str(int(due.timestamp() * 1000))
