"""HubSpot kept in step with each lead, through the real hubspot-api-client against a local stand-in, on both stores:
raise -> contact and task; claim, touches, disposition, conversion; a missing property or a bad token told to the
manager once; a day-long outage, then recovery, with every change applied once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.integrations.delivery import deliver_integrations
from bot.integrations.hubspot import HubSpot, hubspot_sender
from bot.store.models import CrmRecord
from tests.crm.conftest import ANA, BEN, BOSS, NOW, claim, dispose, lead, make_lead, notices, touch
from tests.crm.hubspot_standin import TOKEN, HubSpotStandIn
from tests.scoring.builders import NY, Trial

ANA_OWNER, BEN_OWNER = "9001", "9002"


@pytest.fixture
def hubspot():
    with HubSpotStandIn(owners=[(ANA_OWNER, "ana@acme.com", "Ana", "Ruiz"),
                                (BEN_OWNER, "ben@acme.com", "Ben", "Okafor")]) as standin:
        standin.setup_done()
        yield standin


def sync(store, hubspot, at=NOW, token=TOKEN):
    hub = HubSpot(token, hubspot.url, rep_emails={ANA: "ana@acme.com", BEN: "Ben@Acme.com"})
    return deliver_integrations(store.engine, {"hubspot": hubspot_sender(hub, tz=NY)}, now=at, manager=BOSS)


def the_task(hubspot) -> dict:
    [task] = hubspot.of("tasks")
    return task


def test_a_raised_lead_becomes_a_contact_with_its_score_and_a_task_with_its_signals(store, sinks, hubspot):
    sinks("hubspot")
    pql_id = make_lead(store)
    assert sync(store, hubspot).sent == 1
    [contact] = hubspot.of("contacts")
    assert contact["email"] == "sarah@acme.com"
    assert (contact["pql_tier"], contact["pql_score"], contact["pql_status"]) == ("medium", "6", "qualified")
    assert "invited" in contact["pql_signals"] and contact["pql_triggered_at"] == "2026-11-06T20:00:00.000Z"
    task = the_task(hubspot)
    assert task["hs_task_subject"].startswith(f"PQL-{pql_id}: follow up with Sarah")
    assert "Why now:" in task["hs_task_body"] and "Talk track:" in task["hs_task_body"]
    assert task["hs_task_status"] == "NOT_STARTED" and task["hubspot_owner_id"] == ""  # nobody has it yet
    [task_id], [contact_id] = hubspot.objects["tasks"], hubspot.objects["contacts"]
    assert ("tasks", task_id, "contacts", contact_id) in hubspot.associations
    assert sync(store, hubspot, NOW + timedelta(minutes=1)).sent == 0


def test_claim_touches_and_disposition_reach_the_task_and_the_contact(store, sinks, hubspot):
    sinks("hubspot")
    pql_id = make_lead(store)
    claim(store, pql_id)
    touch(store, pql_id, note="Sent Email 1 about the Snowflake sync")
    touch(store, pql_id, channel="call", note="Left a voicemail", at=NOW + timedelta(hours=1))
    touch(store, pql_id, channel="linkedin", note="Connected", at=NOW + timedelta(hours=2))
    dispose(store, pql_id, at=NOW + timedelta(hours=3))
    assert sync(store, hubspot, NOW + timedelta(hours=3)).sent == 6
    task = the_task(hubspot)
    assert (task["hubspot_owner_id"], task["hs_task_status"]) == (ANA_OWNER, "COMPLETED")
    [email], [call], [note] = hubspot.of("emails"), hubspot.of("calls"), hubspot.of("notes")
    assert email["hs_email_text"] == "Sent Email 1 about the Snowflake sync" and email["hubspot_owner_id"] == ANA_OWNER
    assert email["hs_email_subject"] == f"PQL-{pql_id}: Email 1"
    assert call["hs_call_body"] == "Left a voicemail"
    assert note["hs_note_body"] == f"LinkedIn (PQL-{pql_id}): Connected"
    [contact_id] = hubspot.objects["contacts"]
    for kind in ("emails", "calls", "notes"):
        [made] = hubspot.objects[kind]
        assert (kind, made, "contacts", contact_id) in hubspot.associations
    [contact] = hubspot.of("contacts")
    assert (contact["pql_disposition"], contact["pql_status"]) == ("meeting_set", "dispositioned")


def test_a_reassignment_moves_the_task_to_the_new_reps_owner(store, sinks, hubspot):
    from bot.services import leads
    from tests.crm.conftest import act

    sinks("hubspot")
    pql_id = make_lead(store)
    claim(store, pql_id)
    sync(store, hubspot)
    assert the_task(hubspot)["hubspot_owner_id"] == ANA_OWNER
    act(store, leads.reassign, pql_id, BOSS, to_rep=BEN, now=NOW + timedelta(minutes=5))
    sync(store, hubspot, NOW + timedelta(minutes=5))
    assert the_task(hubspot)["hubspot_owner_id"] == BEN_OWNER  # matched by email, whatever its case


def test_a_conversion_closes_the_task(store, sinks, hubspot):
    sinks("hubspot")
    pql_id = make_lead(store)
    trial = Trial("sarah")
    trial.events.clear()
    store.ingest(trial.add("trial_converted", NOW + timedelta(hours=1), plan="team").events,
                 at=NOW + timedelta(hours=1))
    sync(store, hubspot, NOW + timedelta(hours=1))
    assert lead(store, pql_id).state == "stopped_converted"
    assert the_task(hubspot)["hs_task_status"] == "COMPLETED"
    assert hubspot.of("contacts")[0]["pql_status"] == "stopped_converted"


def test_a_task_made_by_an_attempt_whose_answer_was_lost_is_found_not_made_again(store, sinks, hubspot):
    sinks("hubspot")
    make_lead(store)
    hubspot.fail(502, after=True, only="/crm/v3/objects/tasks")  # HubSpot makes the task; its answer is lost
    assert sync(store, hubspot).failed == 1
    assert len(hubspot.of("tasks")) == 1 and len(hubspot.of("contacts")) == 1
    assert sync(store, hubspot, NOW + timedelta(seconds=30)).sent == 1
    assert len(hubspot.of("tasks")) == 1 and len(hubspot.of("contacts")) == 1  # found by its subject, not made again
    [task_id] = hubspot.objects["tasks"]
    [contact_id] = hubspot.objects["contacts"]
    assert ("tasks", task_id, "contacts", contact_id) in hubspot.associations


def test_a_missing_property_is_told_to_the_manager_once_with_the_fix_and_not_retried(store, sinks, hubspot):
    sinks("hubspot")
    hubspot.properties.clear()  # `pqlbot crm setup` was never run
    first, second = make_lead(store), make_lead(store, "tom")
    sync(store, hubspot)
    sync(store, hubspot, NOW + timedelta(minutes=1))
    assert [n.state for n in notices(store, "hubspot")] == ["failed", "failed"]
    [told] = [n for n in notices(store, "dm") if n.target == BOSS]
    assert "missing_property" in told.text and "pqlbot crm setup" in told.text
    calls = len(hubspot.calls)
    sync(store, hubspot, NOW + timedelta(hours=1))
    assert len(hubspot.calls) == calls
    assert (first, second) and hubspot.of("contacts") == []


def test_a_bad_token_is_told_to_the_manager_once(store, sinks, hubspot):
    sinks("hubspot")
    make_lead(store)
    make_lead(store, "tom")
    sync(store, hubspot, token="pat-revoked")
    sync(store, hubspot, NOW + timedelta(minutes=1), token="pat-revoked")
    told = [n for n in notices(store, "dm") if n.target == BOSS]
    assert len(told) == 1 and "hubspot_401" in told[0].text and "scopes" in told[0].text


def test_a_rate_limit_waits_for_retry_after(store, sinks, hubspot):
    sinks("hubspot")
    make_lead(store)
    hubspot.fail(429, retry_after=10)
    assert sync(store, hubspot).held == 1
    assert sync(store, hubspot, NOW + timedelta(seconds=5)).sent == 0
    assert sync(store, hubspot, NOW + timedelta(seconds=10)).sent == 1


def test_a_day_long_outage_then_recovery_applies_every_change_once_in_order(store, sinks, hubspot):
    sinks("hubspot")
    hubspot.fail(503, times=None)
    pql_id = make_lead(store)
    claim(store, pql_id, at=NOW + timedelta(minutes=10))
    touch(store, pql_id, at=NOW + timedelta(hours=1), note="Email 1")
    touch(store, pql_id, channel="call", at=NOW + timedelta(hours=20), note="Call")
    dispose(store, pql_id, at=NOW + timedelta(hours=21))
    at = NOW
    while at < NOW + timedelta(hours=24):
        sync(store, hubspot, at)
        at += timedelta(minutes=15)
    assert hubspot.of("contacts") == [] and {n.state for n in notices(store, "hubspot")} == {"pending"}
    hubspot.heal()
    for _ in range(3):
        at += timedelta(minutes=31)
        sync(store, hubspot, at)
    assert {n.state for n in notices(store, "hubspot")} == {"sent"}
    assert [len(hubspot.of(kind)) for kind in ("contacts", "tasks", "emails", "calls")] == [1, 1, 1, 1]
    assert len(hubspot.made("/objects/tasks")) == 1 and len(hubspot.made("/objects/contacts")) == 1
    task = the_task(hubspot)
    assert (task["hubspot_owner_id"], task["hs_task_status"]) == (ANA_OWNER, "COMPLETED")
    with store.session() as session:
        assert session.get(CrmRecord, f"task:{pql_id}") is not None


def test_an_account_lead_upserts_its_company_by_domain_and_associates_its_contact(engine, sinks, hubspot):
    from tests.services.test_account_leads import START, account_lead, five, pipeline

    sinks("hubspot")
    p = pipeline(engine)
    for trial in five():
        p.ingest(trial.events, at=START + timedelta(days=4, hours=5))
    lead = account_lead(p)
    hubspot.objects["companies"]["700"] = {"domain": "acme.com", "name": "Acme Corp"}  # HubSpot knows it already
    sync(p, hubspot, START + timedelta(days=4, hours=5))
    [company] = hubspot.of("companies")
    assert (company["pql_tier"], company["pql_status"]) == (lead.tier, lead.state)  # updated, not made again
    [contact_id] = hubspot.objects["contacts"]
    assert ("contacts", contact_id, "companies", "700") in hubspot.associations
    assert len(hubspot.of("tasks")) == 1  # one task for the account, not one per member


def test_a_hand_off_moves_the_task_to_the_receiving_reps_owner(engine, sinks, hubspot):
    """SDR -> CS by a teams file: HubSpot's task follows the lead to the customer-success rep."""
    from tests.services.test_handoffs import FAY, MONDAY, Office

    sinks("hubspot")
    hubspot.owners.append({"id": "9003", "email": "fay@acme.com", "firstName": "Fay", "lastName": "Quinn"})
    hub = HubSpot(TOKEN, hubspot.url, rep_emails={ANA: "ana@acme.com", BEN: "ben@acme.com", FAY: "fay@acme.com"})
    send = {"hubspot": hubspot_sender(hub, tz=NY)}
    office = Office(engine)
    lead_ = office.lead(MONDAY)
    office.work(lead_, lead_.rep_id, touch=False, at=MONDAY + timedelta(minutes=10))
    deliver_integrations(engine, send, now=MONDAY + timedelta(minutes=10), manager=BOSS)
    assert the_task(hubspot)["hubspot_owner_id"] == {ANA: ANA_OWNER, BEN: BEN_OWNER}[lead_.rep_id]
    assert office.hand(lead_, lead_.rep_id, "cs", at=MONDAY + timedelta(hours=2)) == FAY
    deliver_integrations(engine, send, now=MONDAY + timedelta(hours=2), manager=BOSS)
    assert the_task(hubspot)["hubspot_owner_id"] == "9003"
