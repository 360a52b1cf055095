"""Product events in Segment's track shape: what is accepted, how it is named, and how bad ones are refused."""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import EventError, events, load_rules, parse_event

RULES = load_rules()


def track(**overrides):
    call = {
        "type": "track",
        "event": "integration_connected",
        "userId": "u1",
        "timestamp": "2026-11-02T09:00:00-05:00",
        "messageId": "m1",
        "properties": {"integration_type": "Snowflake"},
        "context": {"library": {"name": "analytics.js"}},
    }
    call.update(overrides)
    return call


def test_a_track_call_becomes_an_event_in_utc():
    event = parse_event(json.dumps(track()), RULES)
    assert (event.name, event.user_id, event.message_id) == ("integration_connected", "u1", "m1")
    assert event.at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert event.props["integration_type"] == "Snowflake"


def test_tracking_plan_names_are_mapped_through_the_rules_aliases():
    event = parse_event(track(event="Invite Sent", properties={"invitee_email": "bo@acme.com"}), RULES)
    assert event.name == "invite_sent"


def test_unknown_event_names_are_kept_as_activity():
    event = parse_event(track(event="Dashboard Shared", properties={}), RULES)
    assert event.name == "Dashboard Shared"


def test_segment_page_calls_are_page_views():
    event = parse_event(track(type="page", event=None, name="Pricing", properties={"path": "/pricing"}), RULES)
    assert (event.name, event.props["page_path"]) == ("page_view", "/pricing")


def test_numeric_user_ids_are_accepted_as_text():
    assert parse_event(track(userId=4711), RULES).user_id == "4711"


def test_signup_emails_are_normalised():
    props = {"email": " Sarah@Acme.COM ", "company_size": "800"}
    event = parse_event(track(event="signup_complete", properties=props), RULES)
    assert event.props["email"] == "sarah@acme.com" and event.props["company_size"] == 800


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "an event must be a JSON object"),
        (track(userId=None), "userId"),
        (track(messageId=""), "messageId"),
        (track(timestamp="2026-11-02T09:00:00"), "timestamp: needs a timezone"),
        (track(timestamp="yesterday"), "timestamp"),
        (track(type="bogus"), "type"),
        (track(event=" "), "event: is required"),
        (track(properties={}), "integration_connected: properties.integration_type: is required"),
        (track(event="signup_complete", properties={"email": "nope"}), "properties.email: is not an email"),
        (track(event="signup_complete", properties={"email": "a@b.co", "company_size": -3}), "company_size"),
        (track(event="page_view", properties={}), "properties.page_path: is required"),
        (track(event="trial_converted", properties={"mrr": "lots"}), "properties.mrr"),
        (track(event="seats_provisioned", properties={}), "seats_provisioned: properties.count: is required"),
        (track(event="Seats Provisioned", properties={"count": -2}), "properties.count: .*greater than or equal to 0"),
        (track(event="seats_provisioned", properties={"count": 2.5}), "properties.count"),
        (track(event="seats_provisioned", properties={"count": True}), "properties.count: is a number of seats"),
    ],
)
def test_bad_events_are_refused_with_a_reason_naming_the_field(raw, reason):
    with pytest.raises(EventError, match=reason.replace("[", r"\[")):
        parse_event(raw if isinstance(raw, str) else json.dumps(raw), RULES)


def test_the_trigger_catalogues_segment_names_map_to_its_events_and_a_seat_count_may_come_as_text():
    event = parse_event(track(event="Seats Provisioned", properties={"count": "12"}), RULES)
    assert (event.name, event.props["count"]) == ("seats_provisioned", 12)
    for sent, name in [("Upgrade Clicked", "upgrade_clicked"), ("SSO Config Started", "sso_config_started"),
                       ("Enterprise Feature Accessed", "enterprise_feature_accessed")]:
        assert parse_event(track(event=sent, properties={}), RULES).name == name


def test_an_event_round_trips_through_its_json_form():
    event = parse_event(track(), RULES)
    assert parse_event(event.to_json(), RULES) == event


# -- the plain shape read by msgspec gives exactly what pydantic's checks give --------------------------------------

_WS = st.sampled_from(["", " ", "\t", "\u3000", "\xa0", "\x1f", "\n"])
_TEXT = st.one_of(st.text(max_size=12), st.builds(lambda a, t, b: a + t + b, _WS, st.text(max_size=8), _WS))
_ID = st.one_of(st.none(), _TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False))
_STAMP = st.one_of(
    st.from_regex(r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,9})?"
                  r"(Z|z|[+-][01][0-9]:?[0-5][0-9])?\Z"),
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat),
    st.sampled_from(["2026-11-02T09:00:00Z", "2026-11-02T09:00:00.123Z", "2026-11-02T09:00:00.123456Z",
                     "2026-11-02T09:00:00,123Z", "2026-02-30T09:00:00Z", "2026-11-02T24:00:00Z",
                     "2026-11-02T23:59:60Z", "0000-01-01T00:00:00Z", "20261102T090000.123Z", " 2026-11-02T09:00:00Z"]),
    _ID,
)
_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                               st.floats(allow_nan=False), _TEXT),
                     lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
                     max_leaves=8)
_PROPS = st.one_of(st.dictionaries(st.one_of(_TEXT, st.sampled_from(
    ["page_path", "path", "email", "company_size", "company_name", "integration_type", "count", "invitee_email",
     "ticket_id", "score", "sentiment", "mrr", "title"])), _JSON, max_size=5), _JSON)
_EVENTS = st.one_of(st.sampled_from(["page_view", "signup_complete", "invite_sent", "integration_connected",
                                     "seats_provisioned", "support_ticket_opened", "Invite Sent", "$identify",
                                     "nps_response", "sales_reply", "trial_converted", "", " page_view"]), _ID)
_KEYS = {"type": st.sampled_from(["track", "page", "screen", "identify", "group", "alias", "bogus", " track"]),
         "event": _EVENTS, "name": _ID, "userId": _ID, "anonymousId": _ID, "timestamp": _STAMP, "messageId": _ID,
         "properties": _PROPS, "traits": _PROPS, "groupId": _ID, "previousId": _ID, "user_id": _ID,
         "anonymous_id": _ID, "message_id": _ID, "group_id": _ID, "previous_id": _ID, "context": _JSON}
_SAFE = st.from_regex(r"\A[a-z0-9_]{1,10}\Z")
_UTC_STAMP = st.builds(lambda moment, digits: moment.isoformat(timespec=digits).replace("+00:00", "Z"),
                       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
                                    timezones=st.just(UTC)),
                       st.sampled_from(["seconds", "milliseconds", "microseconds"]))


@st.composite
def calls(draw):  # noqa: ANN001, ANN201
    """A Segment call as its JSON text: a plain, well-formed call (the shape the fast way reads), then none to three
    changes of any field to anything (missing, mistyped, padded with spaces, under pydantic's other name, another
    time format, nested deep)."""
    kind = draw(st.sampled_from(["track", "track", "page", "screen", "identify", "group", "alias"]))
    call = {"type": kind, "userId": draw(_SAFE), "timestamp": draw(_UTC_STAMP), "messageId": draw(_SAFE)}
    if kind == "track":
        call["event"] = draw(_EVENTS)
    if draw(st.booleans()):
        call["anonymousId"] = draw(_SAFE)
    call["properties" if kind != "identify" else "traits"] = draw(
        st.dictionaries(st.one_of(_SAFE, st.sampled_from(["page_path", "email", "company_size", "count", "score"])),
                        _JSON, max_size=4))
    if kind == "group":
        call["groupId"] = draw(_SAFE)
    if kind == "alias":
        call["previousId"] = draw(_SAFE)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*_KEYS, "deep", "drop"]))
        if key == "drop":
            call.pop(draw(st.sampled_from(sorted(call))), None)
        elif key == "deep":
            depth = draw(st.sampled_from([60, 127, 129, 199, 200, 255, 1000]))
            if not isinstance(call.get("properties"), dict):
                call["properties"] = {}
            call["properties"]["deep"] = json.loads("[" * depth + "]" * depth)
        else:
            call[key] = draw(_KEYS[key])
    text = json.dumps(call, ensure_ascii=draw(st.booleans()))
    return text.encode() if draw(st.booleans()) else text


def outcome(raw):  # noqa: ANN001, ANN201
    """The event and its properties as JSON (so that `true` and `1` differ), or the words of its refusal."""
    try:
        event = parse_event(raw, RULES)
    except EventError as exc:
        return str(exc)
    return event, json.dumps(event.props)


@settings(max_examples=3000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
@example('{"type":"track","event":"page_view","userId":"u","timestamp":"2026-11-02T09:00:00.123Z","messageId":"m",'
         '"properties":{"page_path":"/pricing"}}')
@example('{"event":"x","userId":" u","timestamp":"2026-11-02T09:00:00Z","messageId":"m"}')
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T09:00:00Z","messageId":"m","properties":{" k":1}}')
@example('{"event":"x","userId":"u","anonymous_id":"a","timestamp":"2026-11-02T09:00:00Z","messageId":"m"}')
@example('{"event":"x","user_id":"u","timestamp":"2026-11-02T09:00:00Z","messageId":"m"}')
@example(b'{"event":"x","userId":"u","timestamp":"2026-11-02T09:00:00Z","messageId":"m","context":{"ip":"\xff"}}')
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T09:00:00.1234567Z","messageId":"m"}')
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T10:00:00.1+01:00","messageId":"m"}')
@example('{"event":"x","userId":"u","timestamp":"2026-W45-1T09:00:00Z","messageId":"m"}')  # Python reads weeks
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T090000.1Z","messageId":"m"}')  # and times without colons
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T09:00:00Z","messageId":"m","properties":{"n":1e400}}')
@example('{"event":"x","userId":"u","timestamp":"2026-11-02T09:00:00Z","messageId":"m","userId":"v"}')
def test_a_call_read_the_fast_way_is_the_event_pydantic_makes_of_it_or_the_same_refusal(raw):
    """Most calls are read by msgspec in its plain shape (`scoring/events.py` `_plain`); pydantic's `Call` reads the
    rest. Both must agree on every call: the same event (ids, UTC time, properties, names) or the same words."""
    fast = outcome(raw)
    with mock.patch.object(events, "_plain", lambda raw: None):
        checked = outcome(raw)
    assert fast == checked
    if not isinstance(fast, str):
        assert fast[0].at.tzinfo is UTC and type(fast[0].props) is dict


def test_the_fast_way_reads_the_calls_a_product_sends():
    """The equivalence above is worth something only if the fast way is taken: it is, for a plain track, page,
    identify and group call, and not for a call pydantic must coerce (a numeric id) or say is wrong."""
    plain = [track(timestamp="2026-11-02T14:00:00.250Z"), track(type="page", event=None, name="Pricing",
                                                                 timestamp="2026-11-02T14:00:00Z"),
             {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}, "messageId": "i",
              "timestamp": "2026-11-02T14:00:00.123456Z"}]
    assert all(events._plain(json.dumps(call)) is not None for call in plain)
    assert events._plain(json.dumps(track(userId=42, timestamp="2026-11-02T14:00:00Z"))) is None
    assert events._plain(json.dumps(track())) is None  # an offset other than Z: pydantic converts it


def test_how_deep_a_call_may_nest_depends_on_whether_pqlbot_reads_the_field():
    """Properties nested 300 deep are refused (pydantic's parser stops at about 200; the store's writer at 255). A
    `context` nested as deep is skipped unread, as the HTTP intake skips it: the call is kept."""
    deep = json.loads("[" * 300 + "]" * 300)
    refused = track(timestamp="2026-11-02T14:00:00Z", properties={"integration_type": "Jira", "deep": deep})
    with pytest.raises(EventError, match="not valid JSON"):
        parse_event(json.dumps(refused), RULES)
    kept = parse_event(json.dumps(track(timestamp="2026-11-02T14:00:00Z", context={"deep": deep})), RULES)
    assert (kept.name, kept.props) == ("integration_connected", {"integration_type": "Snowflake"})
