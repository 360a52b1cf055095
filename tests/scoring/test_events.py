"""Product events in Segment's track shape: what is accepted, how it is named, and how bad ones are refused."""

import json
from datetime import UTC, datetime

import pytest

from scoring import EventError, load_rules, parse_event

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
