"""Reading Segment calls out of a body: ids exact past 64 bits, a batch orjson refuses split and read call by call,
nesting bounded, and every value a call carries held to what the store's columns keep."""

from __future__ import annotations

import itertools
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.web.body import Unreadable
from bot.web.calls import MAX_DEPTH, batch_calls, elements, one_call
from scoring import load_rules
from scoring.events import EventError
from tests.security.support import fuzz

RULES = load_rules(None)
_ids = itertools.count()


def call(kind: str = "track", **fields) -> dict:
    base = {"type": kind, "userId": "dana", "timestamp": "2026-11-09T15:00:00Z", "messageId": f"m-{next(_ids)}"}
    extra = {"track": {"event": "session_start"}, "page": {"properties": {"path": "/pricing"}},
             "group": {"groupId": "acct-1"}, "alias": {"previousId": "visitor-1"}}.get(kind, {})
    return {**base, **extra, **fields}


def batch(*calls: dict | str) -> bytes:
    """A batch body; a str is a call's JSON text as it is (what json.dumps would not write)."""
    texts = [item if isinstance(item, str) else json.dumps(item) for item in calls]
    return ('{"batch": [' + ", ".join(texts) + '], "context": {"library": {"name": "test"}}}').encode()


def nested(depth: int) -> str:
    """An object `depth` levels deep, as JSON text."""
    return '{"a":' * (depth - 1) + '{"leaf":1}' + "}" * (depth - 1)


def read(body: bytes) -> tuple[list, dict[int, str]]:
    events, rejected = batch_calls(body, RULES)
    return events, {r["index"]: r["reason"] for r in rejected}


# Numeric ids ---------------------------------------------------------------------------------------------------

def test_user_ids_past_64_bits_stay_exact_so_two_users_stay_two():
    events, rejected = read(batch(call(userId=2**100), call(userId=2**100 + 1), call(userId=-(2**70))))
    assert rejected == {}
    assert [e.user_id for e in events] == [str(2**100), str(2**100 + 1), str(-(2**70))]


@pytest.mark.parametrize(("kind", "field", "where"), [
    ("track", "anonymousId", lambda e: e.anonymous_id),
    ("track", "messageId", lambda e: e.message_id),
    ("group", "groupId", lambda e: e.props["group_id"]),
    ("alias", "previousId", lambda e: e.props["previous_id"]),
])
def test_every_id_past_64_bits_is_kept_as_its_decimal_digits(kind, field, where):
    [event], rejected = read(batch(call(kind, **{field: 2**64 + 5})))
    assert rejected == {} and where(event) == "18446744073709551621"


def test_a_single_call_s_numeric_ids_stay_exact_too():
    event = one_call(json.dumps(call("identify", userId=2**65 + 3)).encode(), "identify", RULES)
    assert event.user_id == "36893488147419103235"


def test_an_id_sent_as_a_real_fraction_is_kept_as_written():
    [event], _ = read(batch(call(userId=1.5)))
    assert event.user_id == "1.5"


# Nesting -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["properties", "traits"])
def test_properties_or_traits_nested_past_the_bound_reject_their_call_only(field):
    kind = "identify" if field == "traits" else "track"
    deep = f'{{"type": "{kind}", "userId": "dana", "timestamp": "2026-11-09T15:00:00Z", "messageId": "deep", ' \
           f'"event": "x", "{field}": {nested(MAX_DEPTH + 1)}}}'
    ok = f'{{"type": "{kind}", "userId": "dana", "timestamp": "2026-11-09T15:00:00Z", "messageId": "ok", ' \
         f'"event": "x", "{field}": {nested(MAX_DEPTH)}}}'
    events, rejected = read(batch(call(), deep, ok))
    assert rejected == {1: f"{field}: nested deeper than {MAX_DEPTH} levels"}
    assert [e.message_id for e in events][1:] == ["ok"]


def test_a_signup_whose_extra_properties_nest_deep_is_rejected_not_a_crash():
    # pydantic gives up serialising such a signup's properties with a plain ValueError: checked before it.
    signup = f'{{"userId": "dana", "timestamp": "2026-11-09T15:00:00Z", "messageId": "s", ' \
             f'"event": "signup_complete", "properties": {{"email": "d@bigco.com", "x": {nested(300)}}}}}'
    _, rejected = read(batch(signup))
    assert rejected == {0: f"properties: nested deeper than {MAX_DEPTH} levels"}


@pytest.mark.parametrize("depth", [1025, 2000])
def test_a_call_nested_past_what_orjson_reads_is_rejected_and_its_batch_is_still_read(depth):
    deep = f'{{"userId": "dana", "event": "x", "properties": {nested(depth)}}}'
    events, rejected = read(batch(call(), deep, call(userId=2**70)))
    assert list(rejected) == [1] and "nested deeper" in rejected[1]
    assert [e.user_id for e in events] == ["dana", str(2**70)]  # the other call's big id still exact


@pytest.mark.parametrize("unreadable", [
    '{"userId": "dana", "properties": {"x": "\\ud800"}}',  # a lone surrogate
    '{"userId": "dana", "properties": {"x": NaN}}',
    '{"userId": "dana", "properties": {"x": 1e400}}',
    '{"userId": "dana", "properties": {"x": 1,}}',
    '{"userId": "da\tna"}',  # a raw control character in a string
], ids=["lone-surrogate", "nan", "infinite", "trailing-comma", "raw-tab"])
def test_a_call_orjson_cannot_read_is_rejected_by_index_and_the_others_are_kept(unreadable):
    events, rejected = read(batch(call(), unreadable, call()))
    assert list(rejected) == [1] and rejected[1].startswith("not valid JSON")
    assert len(events) == 2


def test_other_top_level_keys_orjson_cannot_read_do_not_cost_any_call():
    body = batch(call(), call())[:-1] + b', "sentAt": NaN, "deep": ' + nested(1500).encode() + b"}"
    events, rejected = read(body)
    assert (len(events), rejected) == (2, {})


@pytest.mark.parametrize("body", [
    b'{"batch": [',
    b'{"batch": [{"userId": "a"} {"userId": "b"}], "x": NaN}',  # no comma between calls
    b'{"batch": [{"userId": "a"}], "x": NaN} trailing',
    b'{"batch": [{"userId": "a}], "x": NaN}',  # a string that never ends
    b'[{"userId": "a"}, NaN]',
], ids=["truncated", "no-comma", "trailing", "open-string", "bare-array"])
def test_a_body_whose_own_shape_cannot_be_read_is_unreadable_whole(body):
    with pytest.raises(Unreadable) as refused:
        batch_calls(body, RULES)
    assert refused.value.status == 400 and refused.value.reason == "body is not valid JSON"


@pytest.mark.parametrize("body", [b'{"events": [1], "x": NaN}', b'{"batch": {"a": 1}, "x": NaN}'])
def test_a_readable_body_without_a_batch_array_says_what_a_batch_is(body):
    with pytest.raises(Unreadable) as refused:
        batch_calls(body, RULES)
    assert '{"batch": [call, ...]}' in refused.value.reason


def test_the_split_skips_brackets_quotes_and_escapes_inside_strings():
    tricky = {"userId": 'a "quoted" ] } [ { \\ name', "properties": {"k]": "v}\\\"", "list": [1, "]", {"x": "{"}]}}
    body = b'{ "context" : {"x": "]"} ,\n"batch" :\t[ ' + orjson.dumps(tricky) + b' , 7 , "s" , null ] }'
    assert [orjson.loads(text) for text in elements(body)] == [tricky, 7, "s", None]


def test_the_last_batch_key_counts_as_in_orjson():
    body = b'{"batch": [1], "batch": [2, 3]}'
    assert [orjson.loads(text) for text in elements(body)] == orjson.loads(body)["batch"]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=False,
              allow_infinity=False), st.text(alphabet=st.sampled_from('ab"\\]}[{:, \n\u00e9\U0001f600'), max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)


@fuzz(100)
@given(calls=st.lists(json_values, max_size=6), before=st.dictionaries(st.sampled_from(["context", "sentAt"]),
                                                                       json_values, max_size=2),
       indent=st.sampled_from([None, 1, 2]), ascii=st.booleans())
def test_the_split_finds_exactly_the_calls_a_json_parser_finds(calls, before, indent, ascii):
    body = json.dumps({**before, "batch": calls, "writeKey": "k"}, indent=indent, ensure_ascii=ascii).encode()
    assert [json.loads(text) for text in elements(body)] == json.loads(body)["batch"]


# What the store can keep ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "reason"), [
    ({"userId": None, "anonymousId": "v" * 191}, "anonymousId: is longer than 190 characters"),
    ({"anonymousId": "v" * 191}, "anonymousId: is longer than 190 characters"),
    ({"userId": "u" * 201}, "userId: is longer than 200 characters"),
    ({"messageId": "m" * 201}, "messageId"),
    ({"timestamp": "2200-01-01T00:00:00Z"}, "timestamp: must be between 1900 and 2200"),
    ({"timestamp": "1899-12-31T23:59:59Z"}, "timestamp: must be between 1900 and 2200"),
    ({"traits": {"email": "a" * 320 + "@bigco.com"}}, "traits.email: is longer than 320"),
    ({"traits": {"email": "a@" + "b" * 256}}, "traits.email: is longer than 320 characters (or its domain than 255)"),
    ({"traits": {"company": {"employee_count": 2**31}}}, "traits.company.employee_count: must be at most 2147483647"),
    ({"traits": {"employees": "3000000000"}}, "traits.employees: must be at most 2147483647"),
    ({"traits": {"company_size": -(2**31) - 1}}, "traits.company_size: must be at least -2147483648"),
    ({"traits": {"createdAt": "2300-01-01T00:00:00Z"}}, "traits.createdAt: must be between 1900 and 2200"),
    ({"traits": {"name": "Da\x00na"}}, "NUL character"),
], ids=lambda value: str(value)[:40])
def test_an_identify_call_the_store_cannot_keep_is_rejected_naming_why(fields, reason):
    _, rejected = read(batch(call("identify", **fields), call()))
    assert list(rejected) == [0] and reason in rejected[0]


@pytest.mark.parametrize(("kind", "fields", "reason"), [
    ("group", {"groupId": "g" * 201}, "groupId: is longer than 200 characters"),
    ("group", {"traits": {"employees": 2**40}}, "traits.employees: must be at most 2147483647"),
    ("group", {"traits": {"name": "Big\x00Co"}}, "NUL character"),
    ("alias", {"previousId": "p" * 201}, "previousId: is longer than 200 characters"),
    ("page", {"anonymousId": "a\x00", "userId": None}, "NUL character"),
    ("screen", {"name": "s" * 10, "properties": {"x": "\x00"}}, "NUL character"),
    ("track", {"event": "signup_complete", "properties": {"email": "d@bigco.com", "company_size": 2**40}},
     "properties.company_size: must be at most 2147483647"),
])
def test_a_call_of_any_type_the_store_cannot_keep_is_rejected_naming_why(kind, fields, reason):
    _, rejected = read(batch(call(kind, **fields), call()))
    assert list(rejected) == [0] and reason in rejected[0]


def test_values_just_inside_the_columns_are_kept():
    events, rejected = read(batch(
        call("page", userId=None, anonymousId="v" * 190),
        call("group", groupId="g" * 200, traits={"employees": 2**31 - 1, "createdAt": "not a time"}),
        call("alias", previousId="p" * 200),
        call("identify", traits={"company": {"employee_count": "800"}, "createdAt": "2026-01-01T00:00:00"}),
    ))
    assert rejected == {} and len(events) == 4


def test_a_signup_without_an_email_is_kept_for_an_identify_call_to_name():
    [event], rejected = read(batch(call(event="signup_complete", properties={"company_size": 800})))
    assert rejected == {} and event.props == {"company_size": 800}


def test_rudderstack_s_identify_traits_sent_in_the_context_are_its_traits():
    rudder = call("identify", context={"traits": {"email": "dana@bigco.com"}, "library": {"name": "x"}})
    [event], _ = read(batch(rudder))
    assert event.props == {"email": "dana@bigco.com"}
    [event], _ = read(batch({**rudder, "messageId": "own", "traits": {"plan": "pro"}}))
    assert event.props == {"plan": "pro"}  # traits of its own win


def test_a_single_call_takes_the_endpoint_s_type_unless_it_names_its_own():
    text = json.dumps({k: v for k, v in call("identify").items() if k != "type"}).encode()
    assert one_call(text, "identify", RULES).name == "$identify"
    assert one_call(json.dumps(call("group")).encode(), "track", RULES).name == "$group"


def test_a_single_call_the_store_cannot_keep_raises_its_reason():
    with pytest.raises(EventError, match="anonymousId: is longer than 190"):
        one_call(json.dumps(call("page", userId=None, anonymousId="v" * 191)).encode(), "page", RULES)
