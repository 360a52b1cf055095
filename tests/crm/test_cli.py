"""`pqlbot crm setup | owners | pull | retry` as an operator runs them, against the HubSpot stand-in, on each store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.cli import main
from bot.services import tracking
from bot.services.pipeline import Pipeline
from bot.store import open_store
from bot.store.models import Account, AuditEntry, EventRecord, Notice, TrialUser
from tests.crm.hubspot_standin import TOKEN, HubSpotStandIn
from tests.scoring.builders import NY, Trial

ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"


@pytest.fixture
def hubspot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    with HubSpotStandIn(owners=[("9001", "ana@acme.com", "Ana", "Ruiz"), ("9003", "cat@acme.com", "Cat", "Lee")]) \
            as standin:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HUBSPOT_API_URL", standin.url)
        monkeypatch.setenv("PQL_TIMEZONE", "America/New_York")
        monkeypatch.setenv("PQL_REPS", f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor")
        monkeypatch.setenv("PQL_REP_EMAILS", f"{ANA}:Ana@Acme.com,{BEN}:ben@acme.com")
        monkeypatch.setenv("PQL_MANAGER", BOSS)
        for name in ("PQL_RULES_FILE", "SLACK_BOT_TOKEN", "PQL_WEBHOOK_URL", "PQL_WEBHOOK_SECRET"):
            monkeypatch.delenv(name, raising=False)
        yield standin
    tracking.configure(set())


def test_setup_makes_the_properties_once(hubspot, capsys):
    assert main(["crm", "setup"]) == 0
    assert "made 12 properties" in capsys.readouterr().out
    assert set(hubspot.properties["contacts"]) == set(hubspot.properties["companies"]) == {
        "pql_score", "pql_tier", "pql_status", "pql_signals", "pql_triggered_at", "pql_disposition"}
    assert main(["crm", "setup"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(hubspot.made("/properties/contacts")) == 6


def test_setup_with_a_bad_token_says_so(hubspot, capsys, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-wrong")
    assert main(["crm", "setup"]) == 1
    assert "HubSpot refused (hubspot_401)" in capsys.readouterr().err


def test_setup_without_a_token_says_what_to_set(hubspot, capsys, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    assert main(["crm", "setup"]) == 2
    assert "HUBSPOT_ACCESS_TOKEN is not set" in capsys.readouterr().err


def test_owners_shows_the_mapping_and_who_is_unmatched(hubspot, capsys):
    assert main(["crm", "owners"]) == 0
    out = capsys.readouterr().out
    assert "Ana Ruiz (U0ANA) -> Ana Ruiz <ana@acme.com> (owner 9001)" in out
    assert "Ben Okafor (U0BEN): unmatched, no HubSpot owner has ben@acme.com" in out
    assert "owner Cat Lee <cat@acme.com> (owner 9003): no rep" in out


def test_pull_makes_a_companys_owner_its_named_account_owner_and_reads_firmographics(hubspot, store_url, capsys):
    engine = open_store(store_url)
    try:
        pipeline = Pipeline(engine, tz=NY)
        signup = datetime(2026, 11, 2, 15, tzinfo=UTC)
        trial = Trial("zoe", email="zoe@globex.com", signup=signup, size=None)
        pipeline.ingest(trial.activate(1).invite(1).integrate(2).events, at=datetime(2026, 11, 4, tzinfo=UTC))
        with pipeline.session() as session:
            assert session.get(TrialUser, "zoe").company_size is None
        hubspot.objects["companies"]["501"] = {"domain": "globex.com", "name": "Globex", "numberofemployees": "900",
                                               "industry": "Fintech", "hubspot_owner_id": "9001"}
        hubspot.objects["companies"]["502"] = {"domain": "initech.com", "hubspot_owner_id": "9003"}  # Cat: no rep
        hubspot.objects["contacts"]["601"] = {"email": "ZOE@globex.com", "industry": "Healthcare"}
        assert main(["crm", "pull"]) == 0
        out = capsys.readouterr().out
        assert "named accounts set: 1; companies owned by no rep on the roster: 1; users with firmographics" in out
        with pipeline.session() as session:
            account = session.get(Account, "globex.com")
            assert (account.owner_rep_id, account.company_name) == (ANA, "Globex")
            assert session.get(Account, "initech.com") is None
            zoe = session.get(TrialUser, "zoe")
            assert (zoe.company_size, zoe.industry) == (900, "Healthcare")  # the contact's own industry wins
            assert [e.actor for e in session.exec(select(AuditEntry).where(
                AuditEntry.action == "account_owner_set"))] == ["pqlbot crm pull"]
        assert main(["crm", "pull"]) == 0  # again: nothing new stored
        with pipeline.session() as session:
            identified = session.exec(select(EventRecord).where(EventRecord.name == "$identify",
                                                                EventRecord.user_id == "zoe")).all()
            assert len(identified) == 1
    finally:
        engine.dispose()


def test_retry_queues_the_failed_changes_again(hubspot, store_url, capsys):
    engine = open_store(store_url)
    try:
        now = datetime(2026, 11, 4, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(Notice.__table__.insert(), [
                {"key": "webhook:x", "kind": "webhook", "state": "failed", "attempts": 1, "next_attempt_at": now,
                 "created_at": now, "text": "{}", "target": None},
                {"key": "dm:y", "kind": "dm", "state": "failed", "attempts": 8, "next_attempt_at": now,
                 "created_at": now, "text": "hello", "target": BOSS}])
        assert main(["crm", "retry"]) == 0
        assert "1 change(s) queued again" in capsys.readouterr().out
        with engine.connect() as connection:
            states = dict(connection.execute(select(Notice.key, Notice.state)).all())
        assert states == {"webhook:x": "pending", "dm:y": "failed"}  # Slack's own are not the CRM's to retry
    finally:
        engine.dispose()


def test_tick_sends_the_webhooks_events_too(hubspot, store_url, capsys, monkeypatch, sinks):
    from tests.crm.conftest import SECRET
    from tests.crm.receiver import Receiver

    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    engine = open_store(store_url)
    try:
        with Receiver(SECRET) as receiver:
            monkeypatch.setenv("PQL_WEBHOOK_URL", receiver.url)
            monkeypatch.setenv("PQL_WEBHOOK_SECRET", SECRET)
            sinks("webhook")
            pipeline = Pipeline(engine, tz=NY)
            trial = Trial("zoe", email="zoe@globex.com", signup=datetime(2026, 11, 2, 15, tzinfo=UTC))
            pipeline.ingest(trial.activate(1).invite(1).integrate(2).events, at=datetime(2026, 11, 4, tzinfo=UTC))
            assert main(["tick", "--at", "2026-11-04T10:00:00+00:00"]) == 0
            assert "integrations: 1 sent" in capsys.readouterr().out
            assert [e["event"] for e in receiver.events()] == ["pql_triggered"]
    finally:
        engine.dispose()
