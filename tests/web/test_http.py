"""The ingestion endpoints as Segment (or any product) calls them, on every store backend."""

from __future__ import annotations

import base64
import itertools
import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from bot.services.pipeline import Pipeline
from bot.store import idle_ping, make_engine
from bot.web.ingest import create_app

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 9, 18, 0, tzinfo=NY)
SIGNUP = NOW - timedelta(days=2)
TOKEN = "s3cret-ingest-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
_ids = itertools.count()


def make_pipeline(engine: sa.Engine) -> Pipeline:
    return Pipeline(engine, tz=NY, clock=lambda: NOW)


@pytest.fixture
def client(engine):
    return TestClient(create_app(make_pipeline(engine), TOKEN))


def call(name: str, at: datetime, user: str = "dana", **properties) -> dict:
    return {"type": "track", "event": name, "userId": user, "timestamp": at.isoformat(),
            "messageId": f"msg-{next(_ids)}", "properties": properties}


def signup(user: str = "dana", at: datetime = SIGNUP) -> dict:
    return call("signup_complete", at, user, email=f"{user}@bigco.com", company_name="BigCo", company_size=800)


def activity(user: str = "dana") -> list[dict]:
    """Activation and an invite on day 1, an integration on day 2: 6 points, qualified (medium)."""
    return [
        call("activation_complete", SIGNUP + timedelta(hours=1), user),
        call("invite_sent", SIGNUP + timedelta(hours=2), user, invitee_email="lee@bigco.com"),
        call("integration_connected", SIGNUP + timedelta(days=1), user, integration_type="dbt"),
    ]


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def test_a_call_without_credentials_is_refused_with_401_and_a_bearer_challenge(client):
    response = client.post("/v1/track", json=signup())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing credentials" in response.json()["error"]


def test_a_wrong_bearer_token_is_refused_with_401_and_nothing_is_stored(client, engine):
    response = client.post("/v1/track", json=signup(), headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert count(engine, "events") == 0


@pytest.mark.parametrize("authorization", [
    f"Bearer {TOKEN}",
    "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode(),
    "Basic " + base64.b64encode(f"{TOKEN}:any-password".encode()).decode(),
], ids=["bearer", "segment-basic", "basic-with-password"])
def test_the_token_is_accepted_as_bearer_or_as_segment_basic_username(client, engine, authorization):
    response = client.post("/v1/track", json=signup(), headers={"Authorization": authorization})
    assert response.status_code == 200, response.text
    assert count(engine, "events") == 1


@pytest.mark.parametrize("token", [None, ""])
def test_with_no_token_configured_ingestion_is_off_with_503(engine, token):
    client = TestClient(create_app(make_pipeline(engine), token))
    empty_basic = {"Authorization": "Basic " + base64.b64encode(b":").decode()}
    response = client.post("/v1/batch", json={"batch": [signup()]}, headers=empty_basic)
    assert response.status_code == 503
    assert response.json() == {"error": "ingestion is off: set INGEST_TOKEN"}
    assert count(engine, "events") == 0


def test_healthz_is_ok_when_the_store_answers_and_needs_no_token(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    unreachable = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'pqlbot.db'}")
    response = TestClient(create_app(make_pipeline(unreachable), TOKEN)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and "unreachable" in response.json()["reason"]


def test_a_track_call_is_stored_once_and_its_replay_counts_as_a_duplicate(client, engine):
    event = signup()
    first = client.post("/v1/track", json=event, headers=BEARER)
    assert (first.status_code, first.json()) == (200, {"accepted": 1, "duplicates": 0, "pqls": []})
    replay = client.post("/v1/track", json=event, headers=BEARER)
    assert (replay.status_code, replay.json()) == (200, {"accepted": 0, "duplicates": 1, "pqls": []})
    assert count(engine, "events") == 1


def test_an_invalid_track_call_is_400_with_the_reason_and_stores_nothing(client, engine):
    event = signup()
    del event["userId"]
    response = client.post("/v1/track", json=event, headers=BEARER)
    assert (response.status_code, response.json()) == (400, {"error": "userId: is required"})
    assert count(engine, "events") == 0


def test_a_batch_with_bad_calls_stores_the_good_ones_and_lists_each_rejected_by_index_and_field(client, engine):
    no_user = call("session_start", NOW - timedelta(hours=1))
    del no_user["userId"]
    bad_email = signup("ed")
    bad_email["properties"]["email"] = "not-an-email"
    unknown_type = {**call("x", NOW, "fay"), "type": "bogus"}  # identify and group calls are stored (issue 14)
    batch = [signup(), no_user, *activity(), bad_email, "a string", unknown_type]
    body = {"batch": batch, "context": {"library": {"name": "analytics-node"}}, "integrations": {}, "sentAt": "x"}
    response = client.post("/v1/batch", json=body, headers=BEARER)
    assert response.status_code == 400
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (4, 0)
    assert count(engine, "events") == 4
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert set(reasons) == {1, 5, 6, 7}
    assert "userId" in reasons[1]
    assert "properties.email" in reasons[5]
    assert "JSON object" in reasons[6]
    assert reasons[7].startswith("type:")


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_malformed_json_is_400(client, path):
    response = client.post(path, content=b'{"batch": [', headers={**BEARER, "Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": "body is not valid JSON"})


@pytest.mark.parametrize(("path", "body", "reason"), [
    ("/v1/track", [1, 2], "JSON object"),
    ("/v1/batch", {"events": []}, '"batch"'),
    ("/v1/batch", {"batch": {}}, '"batch"'),
    ("/v1/batch", {"batch": []}, "at least one"),
])
def test_a_body_of_the_wrong_shape_is_400_with_a_reason(client, path, body, reason):
    response = client.post(path, json=body, headers=BEARER)
    assert response.status_code == 400
    assert reason in response.json()["error"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_two_mebibyte_body_is_refused_with_413(client, engine, chunked):
    body = b'{"batch": [' + b" " * (2 * 1024 * 1024) + b"]}"
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = client.post("/v1/batch", content=content, headers=BEARER)
    assert response.status_code == 413
    assert count(engine, "events") == 0


def test_a_qualifying_sequence_names_one_pql_and_replaying_it_changes_nothing(client, engine):
    batch = {"batch": [signup(), *activity()]}
    response = client.post("/v1/batch", json=batch, headers=BEARER)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (4, [])
    [pql_id] = answer["pqls"]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id, user_id, tier FROM pqls")).all() == [(pql_id, "dana", "medium")]

    replay = client.post("/v1/batch", json=batch, headers=BEARER).json()
    assert replay == {"accepted": 0, "duplicates": 4, "rejected": [], "pqls": []}
    assert (count(engine, "pqls"), count(engine, "events")) == (1, 4)


def test_activity_before_the_signup_qualifies_when_the_signup_arrives(client, engine):
    early = client.post("/v1/batch", json={"batch": activity()}, headers=BEARER).json()
    assert (early["accepted"], early["pqls"]) == (3, [])
    assert count(engine, "pqls") == 0
    late = client.post("/v1/track", json=signup(), headers=BEARER).json()
    assert late["accepted"] == 1 and len(late["pqls"]) == 1
    assert count(engine, "pqls") == 1


def test_a_store_failure_is_503_retry_and_logs_no_event_contents_or_token(engine, caplog):
    pipeline = make_pipeline(engine)

    def down(*args, **kwargs):
        raise OperationalError("INSERT ... dana@bigco.com", {}, Exception("connection refused"))

    pipeline.ingest = down
    client = TestClient(create_app(pipeline, TOKEN))
    with caplog.at_level(logging.INFO, logger="bot.web.ingest"):
        response = client.post("/v1/batch", json={"batch": [signup()]}, headers=BEARER)
    assert (response.status_code, response.json()) == (503, {"error": "store unavailable, retry"})
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "bigco" not in caplog.text and TOKEN not in caplog.text


def test_a_driver_error_from_the_stores_fast_paths_is_503_retry_not_a_500(engine):
    pipeline = make_pipeline(engine)
    driver = engine.dialect.loaded_dbapi  # sqlite3 or psycopg, whichever this store runs on

    def down(*args, **kwargs):  # what the driver-level insert and reads raise, unwrapped by SQLAlchemy
        raise driver.OperationalError("the connection to the store was lost")

    pipeline.ingest = down
    response = TestClient(create_app(pipeline, TOKEN)).post("/v1/track", json=signup(), headers=BEARER)
    assert (response.status_code, response.json()) == (503, {"error": "store unavailable, retry"})


@pytest.fixture
def own_pool(engine):
    """A client on an engine of its own, whose connections can be cut without touching other tests' pool."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a pool of server connections: PostgreSQL only")
    url = engine.url.update_query_dict({"application_name": "pqlbot-test-cut"})
    own = make_engine(url.render_as_string(hide_password=False))
    yield own, TestClient(create_app(make_pipeline(own), TOKEN))
    own.dispose()


def cut_connections(engine: sa.Engine) -> None:
    """As a database restart does to them: the engine's connections are cut by the server."""
    mine = ("FROM pg_stat_activity WHERE application_name = 'pqlbot-test-cut' AND pid <> pg_backend_pid()")
    killer = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(pg_terminate_backend(pid)) {mine}")).scalar()
        for _ in range(500):
            left = connection.execute(sa.text(f"SELECT count(*) {mine}")).scalar()
            connection.rollback()  # a fresh look at the activity each time
            if not left:
                break
            time.sleep(0.01)
    killer.dispose()


def test_pooled_connections_the_database_dropped_while_idle_are_replaced_and_the_call_is_served(
        own_pool, monkeypatch):
    engine, client = own_pool
    monkeypatch.setattr(idle_ping, "IDLE_SECONDS", 0.0)  # any connection back in the pool counts as idle
    assert client.post("/v1/track", json=signup(), headers=BEARER).status_code == 200
    cut_connections(engine)
    response = client.post("/v1/track", json=signup("erin"), headers=BEARER)
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


def test_a_connection_dropped_while_the_pool_is_busy_fails_one_call_with_503_and_the_next_is_served(
        own_pool, monkeypatch):
    engine, client = own_pool
    monkeypatch.setattr(idle_ping, "IDLE_SECONDS", 3600.0)  # back a moment ago: not pinged
    assert client.post("/v1/track", json=signup(), headers=BEARER).status_code == 200
    cut_connections(engine)
    lost = signup("erin")
    assert client.post("/v1/track", json=lost, headers=BEARER).status_code == 503  # the sender retries
    response = client.post("/v1/track", json=lost, headers=BEARER)
    assert (response.status_code, response.json()["accepted"]) == (200, 1)


def test_each_request_logs_one_info_line_with_counts_only(client, caplog):
    with caplog.at_level(logging.INFO, logger="bot.web.ingest"):
        client.post("/v1/batch", json={"batch": [signup(), {"type": "track"}]}, headers=BEARER)
        client.post("/v1/track", json=signup(), headers={"Authorization": "Bearer wrong"})
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]
    assert "accepted=1" in caplog.records[0].getMessage() and "rejected=1" in caplog.records[0].getMessage()
    assert "bigco" not in caplog.text and TOKEN not in caplog.text and "wrong" not in caplog.text
