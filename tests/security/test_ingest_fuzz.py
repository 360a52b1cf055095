"""Fuzzing the ingestion endpoints: whatever arrives, the answer is never a 5xx, a rejected call writes nothing,
a batch stores exactly its valid calls, and every refusal says why."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bot.services.pipeline import Pipeline
from bot.web.calls import with_defaults
from bot.web.ingest import create_app
from scoring.events import EventError, parse_event
from tests.conftest import BACKENDS
from tests.security.support import counts, fuzz
from tests.web.served import Served, serving

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 9, 18, 0, tzinfo=NY)
TOKEN = "fuzz-ingest-token"
BEARER = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
_ids = itertools.count()


@pytest.fixture
def ingest(engine):
    pipeline = Pipeline(engine, tz=NY, clock=lambda: NOW)
    return TestClient(create_app(pipeline, TOKEN), raise_server_exceptions=False), pipeline


# What arrives ------------------------------------------------------------------------------------------------

#: Text that stores trip on: NUL (PostgreSQL text refuses it), over-long, odd unicode, lone surrogates.
nasty_text = st.one_of(
    st.text(max_size=30),
    st.text(min_size=1, max_size=10).map(lambda t: t + "\x00"),
    st.integers(195, 400).map(lambda n: "x" * n),
    st.sampled_from(["", " ", "\u202e", "😀" * 60, "PQL-1", "a@b.co", "0", "-1", "1e400", "NaN"]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), nasty_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(NY)).map(
        lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-09T10:00:00",
                     "2026-11-09", "not a time", "2026-13-40T99:99:99Z", "1970-01-01T00:00:00Z"]),
    json_value,
)
EVENTS = ["signup_complete", "activation_complete", "invite_sent", "integration_connected", "page_view",
          "trial_converted", "support_ticket_opened", "session_start", "Invite Sent", "custom thing"]
PROPS = {
    "email": st.one_of(st.emails().map(str.upper), nasty_text, json_value),
    "company_name": nasty_text, "company_size": st.one_of(st.integers(-5, 2**70), json_value),
    "first_name": nasty_text, "integration_type": nasty_text, "page_path": nasty_text,
    "invitee_email": nasty_text, "mrr": st.one_of(st.floats(), st.integers(-1, 2**70)), "plan": nasty_text,
    "trial_ends_at": timestamps, "ticket_id": json_value,
}


def valid_call(user: str, name: str = "activation_complete", **props) -> dict:
    return {"type": "track", "event": name, "userId": user, "timestamp": (NOW - timedelta(hours=2)).isoformat(),
            "messageId": f"fuzz-{next(_ids)}", "properties": props}


@st.composite
def track_calls(draw) -> dict:
    """A plausible call with some fields dropped or replaced by something hostile."""
    user = draw(st.sampled_from(["dana", "lee", "42"]))
    call = valid_call(user, draw(st.sampled_from(EVENTS)), email=f"{user}@bigco.com", company_size=50,
                      integration_type="dbt", page_path="/pricing")
    call["messageId"] = f"fuzz-{next(_ids)}"
    for key in draw(st.lists(st.sampled_from(["type", "event", "name", "userId", "timestamp", "messageId",
                                              "properties"]), max_size=3, unique=True)):
        if draw(st.booleans()):
            call.pop(key, None)
        else:
            call[key] = draw(timestamps if key == "timestamp" else st.one_of(nasty_text, json_value))
    if draw(st.booleans()):
        call["timestamp"] = draw(timestamps)
    if isinstance(call.get("properties"), dict):
        for key in draw(st.lists(st.sampled_from(sorted(PROPS)), max_size=3, unique=True)):
            call["properties"][key] = draw(PROPS[key])
    return call


junk = st.one_of(json_value, st.lists(json_value, max_size=2), st.just({"userId": "dana"}))


def verdict(call: object) -> str | None:
    """The message id a call would be stored under, or None when validation refuses it: with what Segment fills in
    for a call that leaves it out (a received time, an id made from the call)."""
    if not isinstance(call, dict):
        return None
    try:
        return parse_event(with_defaults(call, datetime.now(UTC))).message_id
    except EventError:
        return None


def post(client: TestClient, path: str, body: object):
    return client.post(path, content=json.dumps(body).encode(), headers=BEARER)  # json: ints past 64 bits too


def stored_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(sa.text("SELECT message_id FROM events")))


# Properties -------------------------------------------------------------------------------------------------

@fuzz(150)
@given(call=st.one_of(track_calls(), junk))
def test_a_track_call_is_stored_whole_or_refused_with_a_reason_and_nothing_written(ingest, engine, call):
    client, _ = ingest
    before = counts(engine)
    response = post(client, "/v1/track", call)
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    if response.status_code == 400:
        assert isinstance(answer["error"], str) and answer["error"].strip()
        assert counts(engine) == before
    else:
        assert answer["accepted"] + answer["duplicates"] == 1
        assert verdict(call) is not None
        assert counts(engine)["events"] == before["events"] + answer["accepted"]


@fuzz(120)
@given(items=st.lists(st.one_of(track_calls(), junk, st.builds(lambda: valid_call("dana"))), min_size=1,
                      max_size=8))
def test_a_batch_stores_exactly_its_valid_calls_and_names_each_rejected_one(ingest, engine, items):
    client, _ = ingest
    before_ids, before = stored_ids(engine), counts(engine)
    response = post(client, "/v1/batch", {"batch": items, "context": {"library": {"name": "fuzz"}}})
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    rejected = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert all(isinstance(reason, str) and reason.strip() for reason in rejected.values())
    assert set(rejected) <= set(range(len(items))) and len(rejected) == len(answer["rejected"])
    assert response.status_code == (400 if rejected else 200)
    assert answer["accepted"] + answer["duplicates"] + len(rejected) == len(items)
    kept = {verdict(item) for index, item in enumerate(items) if index not in rejected}
    assert None not in kept, "a call validation refuses was not reported as rejected"
    assert stored_ids(engine) - before_ids == kept - before_ids
    assert counts(engine)["events"] == before["events"] + answer["accepted"]


@fuzz(100)
@given(body=st.one_of(st.binary(max_size=200), json_value.map(lambda v: json.dumps(v).encode())),
       path=st.sampled_from(["/v1/track", "/v1/batch"]))
def test_any_body_at_all_is_answered_4xx_with_an_error_or_stored(ingest, engine, body, path):
    client, _ = ingest
    before = counts(engine)
    response = client.post(path, content=body, headers=BEARER)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400 and "rejected" not in response.json():
        assert response.json()["error"].strip()
        assert counts(engine) == before


@fuzz(100)
@given(authorization=st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
                               st.sampled_from([f"Bearer {TOKEN}x", f"bearer {TOKEN[:-1]}", "Basic Og==",
                                                "Basic !!!", f"Token {TOKEN}", "Bearer"])))
def test_a_wrong_authorization_is_401_and_writes_nothing(ingest, engine, authorization):
    client, _ = ingest
    before = counts(engine)
    response = client.post("/v1/batch", content=json.dumps({"batch": [valid_call("dana")]}).encode(),
                           headers={"Authorization": authorization, "Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"].strip() and TOKEN not in response.text
    assert counts(engine) == before


# What the fuzzing found: calls the store could not keep were answered 503 (Segment retries them, and the
# valid calls of their batch, forever) or 500. Each is a 400 naming the field now, and its batch stores the rest.

def _signup(**props) -> dict:
    return valid_call("dana", "signup_complete", **{"email": "dana@bigco.com", **props})


UNSTORABLE = {
    "NUL in the event name": valid_call("dana", "opened\x00"),
    "NUL in the user id": valid_call("da\x00na"),
    "NUL in the message id": {**valid_call("dana"), "messageId": "m-\x00"},
    "NUL in a property": valid_call("dana", plan="pro\x00"),
    "a 201-character user id": valid_call("u" * 201),
    "a 201-character event name": valid_call("dana", "e" * 201),
    "an email past 320 characters": _signup(email="a" * 300 + "@" + "b" * 30 + ".com"),
    "a company size past 32 bits": _signup(company_size=2**40),
    "NUL in a first name": _signup(first_name="Da\x00na"),
    "a timestamp whose offset leaves the calendar": {**valid_call("dana"), "timestamp": "0001-01-01T00:00:00+01:00"},
    "a timestamp at the calendar's end": {**valid_call("dana"), "timestamp": "9999-12-31T23:59:59-01:00"},
    "a trial end at the calendar's end": _signup(trial_ends_at="9999-12-31T23:59:59-01:00"),
    "a trial end at the calendar's start": _signup(trial_ends_at="0001-01-01T00:00:00Z"),
}


@pytest.mark.parametrize("call", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_a_call_the_store_cannot_keep_is_400_naming_why_and_its_batch_keeps_the_rest(ingest, engine, call):
    client, _ = ingest
    before = counts(engine)
    response = post(client, "/v1/track", call)
    assert response.status_code == 400, response.text
    assert response.json()["error"].strip()
    assert counts(engine) == before
    good = valid_call("dana")
    response = post(client, "/v1/batch", {"batch": [call, good]})
    assert response.status_code == 400, response.text
    assert [r["index"] for r in response.json()["rejected"]] == [0]
    assert response.json()["accepted"] == 1 and good["messageId"] in stored_ids(engine)


# Through a real `pqlbot serve` ------------------------------------------------------------------------------
# Batches as a sender writes them, over loopback HTTP, gzipped or not: valid calls of every type (userId, or an
# anonymousId only; numeric ids past 2^64) among calls whose fields are any JSON at all, properties nested up to
# 2,000 levels, and calls orjson cannot read (which send the body down the split-and-read-each path).

@pytest.fixture(scope="module", params=BACKENDS)
def real_server(request, tmp_path_factory) -> Iterator[Served]:
    with serving(request.param, tmp_path_factory.mktemp("served")) as server:
        yield server


class Raw(str):
    """JSON text written into a body as it is: what json.dumps cannot write (2,000 levels) or orjson cannot read."""


def dump(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{dump(inner)}" for key, inner in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(inner) for inner in value) + "]"
    return json.dumps(value)  # integers past 64 bits exactly as they are


def nested(depth: int) -> object:
    """An object `depth` levels deep: a real one as deep as a call may nest (64), text beyond."""
    if depth > 64:
        return Raw('{"a":' * depth + "1" + "}" * depth)
    value: object = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


UNREADABLE = [Raw('"\\ud800"'), Raw("NaN"), Raw("1e400"), Raw('{"a":1,}'), Raw("[" * 1100 + "]" * 1100)]
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**100), 2**100),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
_serial = itertools.count()


@st.composite
def any_type_calls(draw) -> dict:
    """A call the store must keep: any type, a userId (text or a number past 2^64) or an anonymousId only."""
    kind = draw(st.sampled_from(["track", "page", "screen", "identify", "group", "alias"]))
    n = next(_serial)
    call: dict = {"type": kind, "timestamp": "2026-11-09T15:00:00Z",
                  "messageId": draw(st.sampled_from([f"served-{n}", 2**64 + 2 * n, -(2**64) - 2 * n - 1]))}
    who = draw(st.sampled_from(["text", "number", "anonymous"] if kind != "alias" else ["text", "number"]))
    if who == "anonymous":
        call["anonymousId"] = f"visitor-{n % 5}"
    else:
        call["userId"] = f"user-{n % 7}" if who == "text" else 2**64 + n % 7
    depth = draw(st.integers(0, 64))
    properties = nested(depth) if depth else {}
    if kind == "track":
        call |= {"event": draw(st.sampled_from(["session_start", "Invite Sent", "report exported"])),
                 "properties": properties}
    elif kind == "page":
        call |= {"name": "Pricing", "properties": {"path": "/pricing", "extra": properties}}
    elif kind == "screen":
        call |= {"name": "Dashboard", "properties": properties}
    elif kind == "identify":
        call["traits"] = {"email": f"u{n % 7}@bigco.example", "company": {"employee_count": 800}, "x": properties}
    elif kind == "group":
        call |= {"groupId": draw(st.sampled_from([f"acct-{n % 3}", 2**64 + n % 3])), "traits": {"employees": 800}}
    else:
        call["previousId"] = draw(st.sampled_from([f"visitor-{n % 5}", 2**70 + n % 5]))
    return call


@st.composite
def any_field_calls(draw) -> dict:
    """A call with some fields replaced by any JSON value (or dropped), or properties nested up to 2,000 levels,
    or a value orjson cannot read."""
    call = draw(any_type_calls())
    fields = ["type", "event", "name", "userId", "anonymousId", "timestamp", "messageId", "properties", "traits",
              "groupId", "previousId", "context"]
    for field in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        if draw(st.booleans()):
            call.pop(field, None)
        else:
            call[field] = draw(any_json)
    change = draw(st.sampled_from(["none", "deep", "unreadable"]))
    if change == "deep":
        call["properties"] = nested(draw(st.integers(1, 2000)))
    elif change == "unreadable":
        call["properties"] = {"value": draw(st.sampled_from(UNREADABLE))}
    return call


def holds_raw(value: object) -> bool:
    if isinstance(value, Raw):
        return True
    if isinstance(value, dict):
        return any(holds_raw(inner) for inner in value.values())
    return isinstance(value, list) and any(holds_raw(inner) for inner in value)


@fuzz(100)
@given(items=st.lists(st.one_of(any_type_calls().map(lambda call: (True, call)),
                                any_field_calls().map(lambda call: (False, call))), min_size=1, max_size=8),
       gzipped=st.booleans())
def test_through_the_real_server_a_batch_stores_exactly_its_valid_calls_once_and_names_each_rejected_one(
        real_server, items, gzipped):
    served = real_server
    calls = [call for _, call in items]
    body = ('{"batch":[' + ",".join(dump(call) for call in calls) + '],"context":{"library":{"name":"fuzz"}},'
            '"sentAt":"2026-11-09T15:00:01Z"}').encode()
    before = served.all_message_ids()
    status, answer = served.post("/v1/batch", body, gzipped=gzipped)

    assert status in (200, 400), answer
    rejected = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert len(rejected) == len(answer["rejected"]) and set(rejected) <= set(range(len(calls)))
    assert all(isinstance(reason, str) and reason.strip() for reason in rejected.values())
    assert status == (400 if rejected else 200)
    assert answer["accepted"] + answer["duplicates"] + len(rejected) == len(calls)
    kept = {}
    for index, (valid, call) in enumerate(items):
        if valid:
            assert index not in rejected, f"a valid call was rejected: {rejected.get(index)}"
        if holds_raw(call):
            assert index in rejected, f"call {index} cannot be read or stored, yet it was not rejected"
        elif index not in rejected:
            kept[index] = verdict(call)
            assert kept[index] is not None, f"call {index} is not valid, yet it was not rejected"
    after = served.all_message_ids()
    assert after - before == set(kept.values()) - before  # nothing else stored
    assert served.stored(kept.values()) == {message_id: 1 for message_id in kept.values()}  # each once
    assert len(after - before) == answer["accepted"]
