"""Fuzzing what Slack sends (properly signed, so it reaches the listeners): slash commands with any text,
buttons with any value or missing fields, modal submissions with any state and private_metadata.

Whatever arrives: never a 5xx, never an error in the logs, and the person is answered (privately, in a modal
or by the change they asked for); someone off the roster changes nothing."""

from __future__ import annotations

import itertools
import json
import logging
import time
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.ids import Action, Command, Input, LeadRef, View
from tests.security.support import errors_logged, fuzz, lead_state
from tests.slack.conftest import ANA, BEN, BOSS, CHANNEL, EVE

ROSTER = (ANA, BEN, BOSS)
users = st.one_of(st.sampled_from([ANA, BEN, BOSS, EVE]), st.from_regex(r"U[A-Z0-9]{1,11}", fullmatch=True))
mentions = st.one_of(st.just(""), users.map(lambda u: f"<@{u}|someone>"), users.map(lambda u: f"<@{u}>"),
                     st.text(max_size=12))
#: References that broke lookups before (on PostgreSQL: ids past 32 bits, NUL; anywhere: digits int() refuses).
NASTY_REFS = ["PQL-99999999999999999999", "PQL-2147483648", "12345678901", "PQL-²", "PQL-١", "PQL-0", "PQL--1",
              "a\x00@b.co", "PQL-1\x00", "\x00", "sarah@acme.com", "<mailto:sarah@acme.com|sarah@acme.com>",
              "SARAH@ACME.COM", "sarah", "tina", "%", "_", "' OR 1=1 --", "<!channel>"]
refs = st.one_of(st.sampled_from(NASTY_REFS), st.integers(-3, 2**70).map(lambda n: f"PQL-{n}"), st.text(max_size=20))
#: Weeks and ranges /pql-review must answer without failing (past year 9999) or burning CPU (centuries).
NASTY_WEEKS = ["this", "last", "2026-W45", "2026-W99", "9999-W52", "0001-W01", "0000-W00", "2026-02-30",
               "2026-11-02..2026-11-08", "0001-01-01..9999-12-31", "0001-01-01..9998-12-31", "2026-01-01..2025-01-01",
               "2025-01-01..2026-12-31", "-1", "this last", "\x00"]
command_text = st.one_of(
    st.builds(lambda verb, ref, mention: f"{verb} {ref} {mention}".strip(),
              st.sampled_from(["", "reassign", "why", "pause", "resume", "help", "REASSIGN", "Why"]), refs, mentions),
    st.sampled_from(NASTY_WEEKS),
    st.text(max_size=60),
)


@pytest.fixture
def leads(workspace):
    """Two alerted leads, the first claimed by Ana."""
    claimed, waiting = workspace.lead("sarah"), workspace.lead("tina")
    workspace.click(ANA, Action.CLAIM, claimed)
    return claimed, waiting


_stamps = itertools.count(1)


def interaction(workspace, payload: dict):
    """Signed as Slack signs it. Slack's payloads all differ (action_ts, trigger_id), so each gets a unique
    stamp: an identical body in the same second would be refused as a replay, rightly."""
    for action in payload.get("actions") or []:
        action["action_ts"] = f"1700000000.{next(_stamps)}"
    if "trigger_id" in payload:
        payload["trigger_id"] = f"{next(_stamps)}.trigger"
    return workspace.signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def answered(workspace, since: int, responses: int, user: str) -> bool:
    """Whether `user` was told something since call number `since`: privately (response_url, ephemeral,
    DM), in a modal, on their App Home, or by a review shared in the channel they asked for."""
    if len(workspace.standin.responses) > responses:
        return True
    for call in workspace.standin.calls[since:]:
        params = call.params
        if (call.method, params.get("user") or params.get("users") or params.get("user_id")) in {
                ("chat.postEphemeral", user), ("conversations.open", user), ("views.publish", user)}:
            return True
        if call.method == "views.open" or (call.method == "chat.postMessage" and params.get("channel") ==
                                          workspace.settings.pql_alerts_channel):
            return True
    return False


def check(workspace, caplog, user: str, before, since: int, responses: int, response, *, said: bool = True):
    assert response.status_code == 200, response.text
    assert not errors_logged(caplog.records), errors_logged(caplog.records)
    after = lead_state(workspace.pipeline.engine)
    if user not in ROSTER:
        assert after == before, "someone off the roster changed something"
    if said:
        assert answered(workspace, since, responses, user) or after != before, "nobody was told anything"


# Slash commands ----------------------------------------------------------------------------------------------

@fuzz(120)
@given(command=st.sampled_from(list(Command)), user=users, text=command_text)
def test_a_slash_command_with_any_text_is_answered_privately(workspace, leads, caplog, command, user, text):
    caplog.set_level(logging.INFO)
    caplog.clear()
    before, since, responses = lead_state(workspace.pipeline.engine), len(workspace.standin.calls), \
        len(workspace.standin.responses)
    response = workspace.command(user, command, text)
    check(workspace, caplog, user, before, since, responses, response)
    assert response.content in (b"", b"null")  # the ack: what people read comes through response_url
    assert all(r.get("response_type") == "ephemeral" for r in workspace.standin.responses[responses:])


# Buttons -----------------------------------------------------------------------------------------------------

OPTIONAL = ["channel", "container", "response_url", "message", "trigger_id", "value", "view"]
values = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**70), 2**70).map(lambda n: json.dumps({"pql_id": n})),
    st.sampled_from(["pause", "resume", "this", "last", "2026-W45", "2026-W99", "", "null", "{}", "[]",
                     '{"pql_id": 1, "extra": 2}', '{"pql_id": "1"}', '{"pql_id": 1.5}', '{"pql_id": null}']),
)


@st.composite
def clicks(draw) -> tuple[str, dict]:
    user = draw(users)
    action = draw(st.sampled_from(list(Action)))
    value = draw(st.one_of(values, st.sampled_from([1, 2]).map(lambda n: LeadRef(pql_id=n).encode())))
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0PQLBOT", "token": "legacy", "team": {"id": "T0TEAM", "domain": "acme"},
        "trigger_id": "1.trigger", "response_url": "{response_url}",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL, "name": "pql-alerts"}, "message": {"ts": "1700000000.000100", "text": "alert"},
        "actions": [{"type": "button", "action_id": str(action), "block_id": "b", "value": value,
                     "action_ts": "1700000000.1"}],
    }
    if draw(st.booleans()):  # from App Home: no channel, no response_url
        payload |= {"container": {"type": "view", "view_id": "V0HOME"}, "view": {"id": "V0HOME", "type": "home"}}
        del payload["channel"], payload["response_url"], payload["message"]
    for key in draw(st.lists(st.sampled_from(OPTIONAL), max_size=3, unique=True)):
        (payload["actions"][0] if key == "value" else payload).pop(key, None)
    return user, payload


@fuzz(120)
@given(click=clicks())
def test_a_button_with_any_value_or_missing_fields_is_answered_and_never_fails(workspace, leads, caplog, click):
    user, payload = click
    caplog.set_level(logging.INFO)
    caplog.clear()
    if payload.get("response_url"):
        payload["response_url"] = workspace.response_url()
    before, since, responses = lead_state(workspace.pipeline.engine), len(workspace.standin.calls), \
        len(workspace.standin.responses)
    check(workspace, caplog, user, before, since, responses, interaction(workspace, payload))


# Modal submissions -------------------------------------------------------------------------------------------

json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                          max_leaves=10)
INPUTS = [str(i) for i in Input]
CHOICES = {Input.TOUCH_CHANNEL: ["email", "call", "linkedin", "fax"], Input.TOUCH_EMAIL: ["email1", "email4"],
           Input.DISPOSITION: ["meeting_set", "nurture", "disqualified", "no_response", "lost"],
           Input.REP: [ANA, BEN, BOSS, EVE, "U0NOBODY"]}


@st.composite
def state_values(draw) -> object:
    """Mostly the shape Slack sends (block id -> action id -> element state) with odd contents, sometimes not."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    values = {}
    for block in draw(st.lists(st.sampled_from(INPUTS), max_size=4, unique=True)):
        choices = CHOICES.get(block)
        element = draw(st.one_of(
            st.fixed_dictionaries({"type": st.just("static_select"), "selected_option": st.one_of(
                st.none(), st.fixed_dictionaries({"value": st.sampled_from(choices) if choices else st.text()}),
                json_value)}),
            st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": st.one_of(st.none(),
                                                                                           st.text(max_size=200))}),
            st.fixed_dictionaries({"type": st.just("checkboxes"), "selected_options": json_value}),
            json_value,
        ))
        values[block] = {block: element} if draw(st.integers(0, 4)) else draw(json_value)
    return values


metadata = st.one_of(st.sampled_from([1, 2]).map(lambda n: LeadRef(pql_id=n).encode()), values, st.none())


@fuzz(120)
@given(user=users, callback=st.sampled_from(list(View)), state=state_values(), private_metadata=metadata)
def test_a_modal_submission_with_any_state_or_metadata_gets_an_ack_or_a_modal_error(
        workspace, leads, caplog, user, callback, state, private_metadata):
    caplog.set_level(logging.INFO)
    caplog.clear()
    view = {"id": "V0MODAL", "type": "modal", "callback_id": str(callback), "state": {"values": state}}
    if private_metadata is not None:
        view["private_metadata"] = private_metadata
    payload = {"type": "view_submission", "team": {"id": "T0TEAM"}, "user": {"id": user, "team_id": "T0TEAM"},
               "api_app_id": "A0PQLBOT", "token": "legacy", "trigger_id": "1.trigger", "view": view}
    before, since, responses = lead_state(workspace.pipeline.engine), len(workspace.standin.calls), \
        len(workspace.standin.responses)
    response = interaction(workspace, payload)
    check(workspace, caplog, user, before, since, responses, response, said=False)
    after = lead_state(workspace.pipeline.engine)
    if response.content not in (b"", b"null"):
        answer = response.json()
        assert answer["response_action"] == "errors"
        assert all(isinstance(text, str) and text.strip() for text in answer["errors"].values())
        assert after == before, "a submission answered with an error changed something"
    elif callback is not View.DETAILS:  # closing the details modal says nothing, and need not
        assert after != before or answered(workspace, since, responses, user), "the modal closed on nothing"


# What the fuzzing found ------------------------------------------------------------------------------------------
# Each of these was an "incident" (an ERROR with a traceback and "Sorry, that didn't work"), a 3-second stall
# and a 404, or a wrong action (a pause switch with any other value resumed the rep); each is now a plain
# answer to the person.

FOUND_IN_COMMANDS = {
    "a lead number past 32 bits (PostgreSQL: integer out of range)": (Command.CLAIM, "PQL-99999999999999999999"),
    "a numeric reference past 32 bits in /pql why": (Command.PQL, "why 12345678901"),
    "a reassign of a lead number past 32 bits": (Command.PQL, f"reassign PQL-2147483648 <@{BEN}>"),
    "a digit int() refuses (ValueError)": (Command.CLAIM, "PQL-²"),
    "a NUL in an email (PostgreSQL cannot compare it)": (Command.CLAIM, "sarah\x00@acme.com"),
    "an ISO week past year 9999 (OverflowError)": (Command.REVIEW, "9999-W52"),
    "a range ending on the calendar's last day (OverflowError)": (Command.REVIEW, "0001-01-01..9999-12-31"),
    "a range of eight thousand years (23 s of CPU per request)": (Command.REVIEW, "0001-01-01..8000-12-31"),
}


@pytest.mark.parametrize(("command", "text"), list(FOUND_IN_COMMANDS.values()), ids=list(FOUND_IN_COMMANDS))
def test_what_people_type_that_broke_a_command_is_now_answered_plainly(workspace, leads, caplog, command, text):
    caplog.set_level(logging.INFO)
    started = time.perf_counter()
    assert workspace.command(BOSS, command, text).status_code == 200
    assert time.perf_counter() - started < 2
    [answer] = workspace.standin.responses[-1:]
    assert "incident" not in answer["text"] and answer["text"].strip()
    assert not errors_logged(caplog.records)


def _click(user: str, action: Action, **changes) -> dict:
    payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0TEAM"}, "api_app_id": "A0PQLBOT",
               "trigger_id": "1.trigger", "container": {"type": "message", "channel_id": CHANNEL},
               "channel": {"id": CHANNEL}, "actions": [{"type": "button", "action_id": str(action), "block_id": "b",
                                                        "value": LeadRef(pql_id=1).encode()}]}
    for key, value in changes.items():
        if key == "value":
            payload["actions"][0].pop("value") if value is None else payload["actions"][0].update(value=value)
        elif value is None:
            payload.pop(key)
        else:
            payload[key] = value
    return payload


FOUND_IN_BUTTONS = {
    "a value that is no lead reference": _click(ANA, Action.CLAIM, value=""),
    "a button without a value": _click(BOSS, Action.SET_DISPOSITION, value=None),
    "a lead id past 32 bits": _click(BOSS, Action.RELEASE, value=json.dumps({"pql_id": 2**40})),
    "a lead that does not exist": _click(ANA, Action.CLAIM, value=LeadRef(pql_id=999).encode()),
    "details of a lead that does not exist": _click(ANA, Action.DETAILS, value=LeadRef(pql_id=999).encode()),
    "no trigger to open a modal with": _click(BOSS, Action.REASSIGN, trigger_id=None),
    "a share of a week that is no week": _click(ANA, Action.SHARE_REVIEW, value="2026-W99"),
    "a pause switch with another value": _click(ANA, Action.PAUSE, value="maybe"),
}


@pytest.mark.parametrize("payload", list(FOUND_IN_BUTTONS.values()), ids=list(FOUND_IN_BUTTONS))
def test_a_button_payload_that_broke_a_listener_is_now_a_private_answer(workspace, leads, caplog, payload):
    caplog.set_level(logging.INFO)
    user = payload["user"]["id"]
    since = len(workspace.standin.calls)
    assert interaction(workspace, payload).status_code == 200
    told = [c.params["text"] for c in workspace.standin.calls[since:]
            if c.method == "chat.postEphemeral" and c.params["user"] == user]
    assert told and "incident" not in told[0], told
    assert not errors_logged(caplog.records)


FOUND_IN_MODALS = {
    "private_metadata that is no lead reference": (View.LOG_TOUCH, "nope", {}),
    "no private_metadata": (View.REASSIGN, None, {Input.REP: {Input.REP: {"selected_option": {"value": BEN}}}}),
    "state values that are a list": (View.SET_DISPOSITION, LeadRef(pql_id=1).encode(), []),
    "an input that is a string": (View.LOG_TOUCH, LeadRef(pql_id=1).encode(), {Input.TOUCH_CHANNEL: "email"}),
    "a selected option that is a list": (View.CLAIM_FOR, LeadRef(pql_id=2).encode(),
                                         {Input.REP: {Input.REP: {"selected_option": [BEN]}}}),
    "a note with a NUL (PostgreSQL cannot store it)": (View.LOG_TOUCH, LeadRef(pql_id=1).encode(), {
        Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"selected_option": {"value": "call"}}},
        Input.TOUCH_NOTE: {Input.TOUCH_NOTE: {"value": "left\x00 a message"}}}),
}


@pytest.mark.parametrize(("callback", "metadata_", "state"), list(FOUND_IN_MODALS.values()), ids=list(FOUND_IN_MODALS))
def test_a_modal_payload_that_broke_a_listener_is_now_an_error_in_the_modal_or_an_ack(
        workspace, leads, caplog, callback, metadata_, state):
    caplog.set_level(logging.INFO)
    view = {"id": "V1", "type": "modal", "callback_id": str(callback), "state": {"values": state}}
    if metadata_ is not None:
        view["private_metadata"] = metadata_
    payload = {"type": "view_submission", "user": {"id": ANA}, "team": {"id": "T0TEAM"}, "api_app_id": "A0PQLBOT",
               "trigger_id": "1.trigger", "view": view}
    started = time.perf_counter()
    response = interaction(workspace, payload)
    assert response.status_code == 200 and time.perf_counter() - started < 2
    if response.content not in (b"", b"null"):
        assert response.json()["response_action"] == "errors"
    assert not errors_logged(caplog.records)


def test_a_listener_that_fails_before_its_ack_still_acks_at_once_and_says_sorry(workspace, leads, monkeypatch):
    """Before: the failure skipped ack(), so Bolt waited out Slack's 3 seconds and answered 404 (Slack shows
    a connection error). Now the guard acks, and the person gets the incident id privately."""
    def store_down(*args, **kwargs):
        raise RuntimeError("store down")

    monkeypatch.setattr(workspace.server.runtime, "actor", store_down)
    started = time.perf_counter()
    response = workspace.submit(ANA, View.LOG_TOUCH, 1, {
        Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"selected_option": {"value": "call"}}}})
    assert response.status_code == 200 and time.perf_counter() - started < 2
    dm = [c.params["text"] for c in workspace.standin.calls_to("chat.postMessage") if c.params["channel"] == f"D{ANA}"]
    assert dm and "incident" in dm[-1]
