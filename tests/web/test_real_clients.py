"""Segment's and RudderStack's own Python libraries, pointed at a real `pqlbot serve`, the way a product uses them:
every call type, with a userId, with an anonymousId only, with numeric ids past 2^64; gzipped and not; a request
per call (sync mode) and batched by the library's own consumer thread. Every call must be answered 2xx and stored
exactly once, its ids exactly as sent. And Segment's Webhook destination, which signs each call it posts."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from rudderstack.analytics.client import Client as RudderStackClient
from segment.analytics.client import Client as SegmentClient

from tests.reliability.conftest import wait_until
from tests.web.served import TOKEN, signature

AT = datetime(2026, 11, 9, 15, 0, tzinfo=UTC)
BIG = 2**64 + 1_000  # past 64 bits: orjson alone would read it as a float
_runs = itertools.count()


def product_calls(run: str) -> list[tuple[str, dict]]:
    """(method, arguments) of each call a product makes in one visit-to-account story, with messageIds of `run`.
    The libraries send userId, anonymousId and messageId as text, groupId and previousId as they were given."""
    ana, visitor, n = f"{run}-ana", f"{run}-visitor", next(_runs) * 10
    calls = [
        ("page", {"anonymous_id": visitor, "name": "Pricing", "properties": {"path": "/pricing"}}),
        ("track", {"anonymous_id": visitor, "event": "Pricing Calculator Used", "properties": {"seats": 40}}),
        ("identify", {"user_id": ana, "anonymous_id": visitor, "traits": {
            "email": f"{run}@bigco.example", "company": {"name": "BigCo", "employee_count": 800}}}),
        ("track", {"user_id": ana, "event": "Invite Sent", "properties": {"invitee_email": "lee@bigco.example"}}),
        ("screen", {"user_id": ana, "name": "Dashboard"}),
        ("group", {"user_id": ana, "group_id": BIG + n, "traits": {"name": "BigCo", "employees": 800}}),
        ("alias", {"previous_id": BIG + n + 1, "user_id": ana}),
        ("track", {"user_id": BIG + n + 2, "event": "session_start"}),  # two users whose ids differ past 2^53...
        ("track", {"user_id": BIG + n + 3, "event": "session_start"}),  # ...stay two users
    ]
    return [(method, {**kwargs, "timestamp": AT, "message_id": f"{run}-{index}"})
            for index, (method, kwargs) in enumerate(calls)]


def identify_call() -> dict:
    """An identify call as Segment's Webhook destination posts it: the call itself, with its type."""
    return {"type": "identify", "userId": "dana", "traits": {"plan": "pro"}, "timestamp": AT.isoformat(),
            "messageId": "webhook"}


def segment(host: str, **options) -> SegmentClient:
    return SegmentClient(TOKEN, host=host, max_retries=1, upload_interval=0.05, **options)


def rudderstack(host: str, **options) -> RudderStackClient:
    return RudderStackClient(TOKEN, host=host, max_retries=1, upload_interval=0.05, **options)


LIBRARIES: dict[str, Callable[..., object]] = {"segment": segment, "rudderstack": rudderstack}


def send(client, calls: list[tuple[str, dict]], *, sync: bool) -> None:
    for method, kwargs in calls:
        getattr(client, method)(**kwargs)  # in sync mode a non-2xx answer raises here
    if not sync:
        client.flush()
        client.join()


@pytest.mark.parametrize("sync", [True, False], ids=["per-call", "batched"])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_every_call_of_the_real_libraries_is_answered_2xx_and_stored_once_with_its_ids_exact(
        served, library, gzipped, sync):
    run = f"{library}-{'gz' if gzipped else 'plain'}-{'sync' if sync else 'batch'}"
    errors: list = []
    client = LIBRARIES[library](served.host, gzip=gzipped, sync_mode=sync,
                                on_error=lambda error, batch: errors.append(error))
    calls = product_calls(run)
    send(client, calls, sync=sync)

    assert errors == []
    ids = [kwargs["message_id"] for _, kwargs in calls]
    assert served.stored(ids) == {message_id: 1 for message_id in ids}
    stored = {row.message_id: row for row in served.rows(
        "SELECT message_id, user_id, name, props FROM events WHERE message_id LIKE :run", run=f"{run}-%")}
    assert len(stored) == len(calls)

    def props(index: int) -> dict:
        value = stored[f"{run}-{index}"].props
        return orjson.loads(value) if isinstance(value, str) else value

    group_id = calls[5][1]["group_id"]
    assert props(5) == {"group_id": str(group_id), "traits": {"name": "BigCo", "employees": 800}}
    assert props(6) == {"previous_id": str(group_id + 1)}
    assert (stored[f"{run}-7"].user_id, stored[f"{run}-8"].user_id) == (str(group_id + 2), str(group_id + 3))
    # The identify call's traits, wherever the library put them (RudderStack's: context.traits).
    assert props(2)["email"] == f"{run}@bigco.example" and props(2)["company"]["employee_count"] == 800
    assert stored[f"{run}-1"].user_id in {f"anonymous:{run}-visitor", f"{run}-ana"}  # kept, and linked once named


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_batch_with_one_bad_call_is_answered_once_the_libraries_do_not_retry_it_and_the_rest_is_stored(
        served, library):
    run = f"{library}-one-bad"
    errors: list = []
    client = LIBRARIES[library](served.host, gzip=True, sync_mode=False,
                                on_error=lambda error, batch: errors.append(error))
    calls = product_calls(run)[:4]
    bad = ("track", {"user_id": f"{run}-ana", "event": "$reserved", "timestamp": AT, "message_id": f"{run}-bad"})
    answered = served.answered(400)
    send(client, [*calls, bad], sync=False)

    assert [error.status for error in errors] == [400]
    assert served.answered(400) == answered + 1  # not retried: the answer carries the code the libraries read
    ids = [kwargs["message_id"] for _, kwargs in calls]
    assert served.stored([*ids, f"{run}-bad"]) == {message_id: 1 for message_id in ids}


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_wrong_write_key_is_refused_once_with_401_and_stores_nothing(served, library):
    run = f"{library}-wrong-key"
    errors: list = []
    make = {"segment": SegmentClient, "rudderstack": RudderStackClient}[library]
    client = make("not-the-token", host=served.host, max_retries=1, upload_interval=0.05,
                  on_error=lambda error, batch: errors.append(error))
    refused = served.answered(401)
    send(client, product_calls(run)[:2], sync=False)
    assert [error.status for error in errors] == [401]
    wait_until(lambda: served.answered(401) == refused + 1, timeout=5, what="the 401 in the log")
    assert served.stored([f"{run}-0", f"{run}-1"]) == {}


def test_a_call_segment_s_webhook_destination_signed_is_let_in_and_a_forged_one_is_not(served):
    """With SEGMENT_SHARED_SECRET in `pqlbot serve`'s settings: no token, only X-Signature."""
    body = json.dumps({**identify_call(), "messageId": "webhook-signed"}).encode()
    status, answer = served.post("/v1/track", body, token=False, headers={"X-Signature": signature(body)})
    assert (status, answer["accepted"]) == (200, 1)
    forged = json.dumps({**identify_call(), "messageId": "webhook-forged"}).encode()
    status, _ = served.post("/v1/track", forged, token=False, headers={"X-Signature": signature(body)})
    assert status == 401
    assert served.stored(["webhook-signed", "webhook-forged"]) == {"webhook-signed": 1}
