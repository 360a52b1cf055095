"""Segment's HTTP tracking API as pqlbot serves it: an endpoint per call type, batch and import, gzip, and the
Webhook destination's X-Signature, on every store backend."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.web.ingest import create_app
from tests.web.served import SHARED_SECRET, signature
from tests.web.test_calls import call, nested
from tests.web.test_http import BEARER, TOKEN, count, make_pipeline

STORED_AS = {"track": "session_start", "page": "page_view", "screen": "screen_view", "identify": "$identify",
             "group": "$group", "alias": "$alias"}


@pytest.fixture
def client(engine):
    return TestClient(create_app(make_pipeline(engine), TOKEN, shared_secret=SHARED_SECRET))


def names(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text("SELECT message_id, name FROM events ORDER BY id"))]


def untyped(kind: str, **fields) -> dict:
    body = call(kind, **fields)
    del body["type"]
    return body


# An endpoint per call type ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(STORED_AS))
def test_each_call_type_s_endpoint_stores_a_call_of_its_type(client, engine, kind):
    body = untyped(kind)
    response = client.post(f"/v1/{kind}", json=body, headers=BEARER)
    assert (response.status_code, response.json()) == (200, {"accepted": 1, "duplicates": 0, "pqls": []})
    assert names(engine) == [(body["messageId"], STORED_AS[kind])]


def test_a_call_naming_its_own_type_keeps_it_whatever_the_endpoint(client, engine):
    # Segment's Webhook destination posts every type to the one URL it is given.
    calls = [call(kind) for kind in sorted(STORED_AS)]
    for body in calls:
        assert client.post("/v1/track", json=body, headers=BEARER).status_code == 200
    assert names(engine) == [(body["messageId"], STORED_AS[body["type"]]) for body in calls]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
def test_a_batch_or_import_may_mix_every_type_with_user_ids_and_anonymous_ids(client, engine, path):
    calls = [call(kind) for kind in sorted(STORED_AS)]
    calls += [call("page", userId=None, anonymousId="visitor-9"), call("track", userId=2**64 + 1)]
    response = client.post(path, content=json.dumps({"batch": calls}), headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(calls)
    with engine.connect() as connection:
        users = dict(connection.execute(sa.text("SELECT message_id, user_id FROM events")).all())
    assert users[calls[-2]["messageId"]] in {"anonymous:visitor-9", "dana"}
    assert users[calls[-1]["messageId"]] == "18446744073709551617"


def test_an_invalid_call_at_a_type_s_endpoint_is_400_with_its_reason(client, engine):
    body = untyped("group")
    del body["groupId"]
    response = client.post("/v1/group", json=body, headers=BEARER)
    assert (response.status_code, response.json()) == (400, {"error": "groupId: is required for a group call"})
    assert count(engine, "events") == 0


# What one bad call costs: itself ---------------------------------------------------------------------------

def test_a_call_nested_deeper_than_the_bound_costs_its_batch_nothing_but_itself(client, engine):
    deep = {**call(), "properties": {"x": json.loads(nested(70))}}
    good = call()
    response = client.post("/v1/batch", content=json.dumps({"batch": [deep, good]}), headers=BEARER)
    assert response.status_code == 400
    answer = response.json()
    assert answer["rejected"] == [{"index": 0, "reason": "properties: nested deeper than 64 levels"}]
    assert (answer["accepted"], names(engine)) == (1, [(good["messageId"], "session_start")])
    # What Segment's and RudderStack's libraries read to drop the batch rather than retry it.
    assert answer["code"] == "rejected_calls" and "1 of 2" in answer["message"]


def test_a_call_nested_past_what_orjson_reads_costs_its_batch_nothing_but_itself(client, engine):
    deep = '{"userId": "dana", "event": "x", "properties": ' + nested(2000) + "}"
    good = call(userId=2**70)
    body = '{"batch": [' + deep + ", " + json.dumps(good) + "]}"
    response = client.post("/v1/batch", content=body, headers=BEARER)
    assert response.status_code == 400
    assert [r["index"] for r in response.json()["rejected"]] == [0]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT user_id FROM events")).scalars().all() == [str(2**70)]


# gzip -----------------------------------------------------------------------------------------------------

def gzipped(body: bytes) -> dict:
    return {"content": gzip.compress(body), "headers": {**BEARER, "Content-Encoding": "gzip"}}


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/identify"])
def test_a_gzip_body_is_read(client, engine, path):
    body = {"batch": [call(), call("identify")]} if path == "/v1/batch" else untyped("identify")
    response = client.post(path, **gzipped(json.dumps(body).encode()))
    assert response.status_code == 200, response.text
    assert count(engine, "events") == (2 if path == "/v1/batch" else 1)


def test_a_gzip_bomb_is_413_and_stores_nothing(client, engine):
    bomb = b'{"batch": [' + json.dumps(call()).encode() + b"," + b" " * (64 * 1024 * 1024) + b"]}"
    response = client.post("/v1/batch", **gzipped(bomb))
    assert response.status_code == 413 and "1048576" in response.json()["error"]
    assert count(engine, "events") == 0


def test_a_gzip_body_over_the_limit_as_sent_is_413_unread(client):
    packed = bytes(range(256)) * (5 * 1024)  # incompressible bytes: 1.25 MiB
    response = client.post("/v1/batch", content=packed, headers={**BEARER, "Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_a_body_that_claims_gzip_and_is_not_is_400(client, engine):
    response = client.post("/v1/batch", content=json.dumps({"batch": [call()]}),
                           headers={**BEARER, "Content-Encoding": "gzip"})
    assert response.status_code == 400 and "gzip" in response.json()["error"]
    assert count(engine, "events") == 0


def test_another_encoding_is_415(client, engine):
    response = client.post("/v1/batch", content=b"...", headers={**BEARER, "Content-Encoding": "br"})
    assert response.status_code == 415 and "gzip" in response.json()["error"]


# Segment's Webhook destination: X-Signature ---------------------------------------------------------------

def signed(body: bytes, secret: str = SHARED_SECRET) -> dict:
    return {"content": body, "headers": {"Content-Type": "application/json", "X-Signature": signature(body, secret)}}


def test_a_call_signed_with_the_shared_secret_is_let_in_without_a_token(client, engine):
    body = json.dumps(call("identify")).encode()
    response = client.post("/v1/track", **signed(body))
    assert response.status_code == 200, response.text
    assert names(engine)[0][1] == "$identify"
    upper = {**signed(json.dumps(call()).encode())}
    upper["headers"]["X-Signature"] = upper["headers"]["X-Signature"].upper()
    assert client.post("/v1/track", **upper).status_code == 200


@pytest.mark.parametrize("how", ["other-secret", "other-body", "not-hex", "empty"])
def test_a_wrong_signature_is_401_even_with_a_good_token_and_stores_nothing(client, engine, how):
    body = json.dumps(call()).encode()
    request = signed(body, "another-secret" if how == "other-secret" else SHARED_SECRET)
    if how == "other-body":
        request["content"] = body.replace(b"dana", b"dara")
    elif how in ("not-hex", "empty"):
        request["headers"]["X-Signature"] = "zz" * 20 if how == "not-hex" else ""
    request["headers"] |= BEARER
    response = client.post("/v1/track", **request)
    assert response.status_code == 401
    assert response.json()["error"].startswith("invalid signature") and SHARED_SECRET not in response.text
    assert count(engine, "events") == 0


def test_without_signature_or_token_the_answer_is_401_naming_both_ways_in(client, engine):
    response = client.post("/v1/track", content=json.dumps(call()), headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error.startswith("missing credentials") and "X-Signature" in error and "INGEST_TOKEN" in error


def test_with_only_the_shared_secret_set_a_token_lets_nothing_in_and_a_signature_does(engine):
    client = TestClient(create_app(make_pipeline(engine), None, shared_secret=SHARED_SECRET))
    basic = {"Authorization": "Basic " + base64.b64encode(b":").decode()}
    assert client.post("/v1/track", json=call(), headers=basic).status_code == 401
    assert client.post("/v1/track", json=call(), headers=BEARER).status_code == 401
    assert client.post("/v1/track", **signed(json.dumps(call()).encode())).status_code == 200
    assert count(engine, "events") == 1


def test_a_signature_with_no_shared_secret_set_is_not_checked_and_the_token_decides(engine):
    client = TestClient(create_app(make_pipeline(engine), TOKEN))
    request = signed(json.dumps(call()).encode())
    refused = client.post("/v1/track", **request)
    assert refused.status_code == 401 and "SEGMENT_SHARED_SECRET is not set" in refused.json()["error"]
    request["headers"] |= BEARER
    assert client.post("/v1/track", **request).status_code == 200


@pytest.mark.parametrize(("token", "secret"), [(None, None), ("", ""), (None, "")])
def test_with_neither_token_nor_shared_secret_ingestion_is_off_with_503(engine, token, secret):
    client = TestClient(create_app(make_pipeline(engine), token, shared_secret=secret))
    response = client.post("/v1/identify", **signed(json.dumps(call()).encode(), secret or "x"))
    assert response.status_code == 503
    assert count(engine, "events") == 0



# What Segment fills in ---------------------------------------------------------------------------------------

def test_a_call_with_no_time_or_message_id_is_stored_as_segment_stores_it_and_its_retry_is_a_duplicate(client,
                                                                                                        engine):
    # Segment's spec: `timestamp` "defaulted to the current time by the Tracking API", `messageId` "automatically
    # collected". A hand-written client leaving them out was refused (400 "timestamp: is required").
    from tests.web.test_http import NOW

    body = untyped("track", event="demo_requested")
    del body["timestamp"], body["messageId"]
    first = client.post("/v1/track", json=body, headers=BEARER)
    assert (first.status_code, first.json()["accepted"]) == (200, 1)
    again = client.post("/v1/track", json=body, headers=BEARER)  # a retry: the same call
    assert (again.status_code, again.json()["accepted"], again.json()["duplicates"]) == (200, 0, 1)
    with engine.connect() as connection:
        [(message_id, at_us)] = connection.execute(sa.text("SELECT message_id, at_us FROM events")).all()
    assert message_id.startswith("auto-")
    assert at_us == round(NOW.timestamp() * 1_000_000)  # when the server received it
    # Two different calls with no id are two events; the same call at another time of its own is another event.
    calls = [call("track", event="session_start", messageId=None), call("track", event="invite_sent", messageId=None),
             call("track", event="session_start", messageId=None, timestamp="2026-11-09T16:00:00Z")]
    response = client.post("/v1/batch", content=json.dumps({"batch": calls}), headers=BEARER)
    assert (response.status_code, response.json()["accepted"]) == (200, 3)
