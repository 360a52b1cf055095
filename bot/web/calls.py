"""Segment calls out of a request body: each one an Event the store can keep, or the reason it cannot.

A body is read with orjson. Three things it does not do the way ingestion needs are mended here, each paid
for only by the calls that need it:
- an integer past 64 bits comes out of orjson a float (1.2345678901234568e+29), so two numeric ids that differ
  in their last digits would become one user. A call with an id that came out a float has its call's text
  read again with the stdlib json module, which keeps integers exact, and its ids taken from there;
- a body nested deeper than orjson reads (1,024 levels) or holding anything else it refuses (a lone surrogate,
  1e400) is refused whole. A batch is then split into its calls by `elements`, a scanner of the JSON structure
  that leaves each call's insides alone, and each call is read on its own: only the unreadable ones are
  rejected. A body whose own shape cannot be read is still refused (400);
- properties or traits nested deeper than `MAX_DEPTH` are refused: the store writes JSON with orjson, whose
  writer stops at 255 levels, and nothing a product sends needs more.
What Segment's Tracking API fills in, `with_defaults` fills in too (its spec's common fields): a call with no
`timestamp` happened when it was received, and one with no `messageId` gets an id made from what it says (its
type, name, ids, own time if any, properties and traits), so a retry of it is still a duplicate. Segment's
libraries send both; a hand-written client following Segment's HTTP API docs may not. Files (`pqlbot ingest`)
must still carry both.
Then `storable` holds a call to what the store's columns can keep (a NUL character, a value longer than its
column, a time near the calendar's ends, an integer past an INTEGER column): a call the store would fail on is
rejected as bad input, or the sender would retry it, and the batch around it, forever.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.store.models import EventRecord, Group, Identity, TrialUser
from bot.web.body import Unreadable
from scoring.events import ALIAS, GROUP, IDENTIFY, SIGNUP, Event, EventError, Naming, parse_event
from scoring.identity import ANONYMOUS

#: How deep a call's properties or traits may nest (orjson writes at most 255 levels; products send a few).
MAX_DEPTH = 64
#: The fields that name someone or something: text, however they were sent (Segment passes numbers through).
ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId", "messageId")

#: Times the scorer can move a few days either way from without leaving the calendar (year 1 to 9999).
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
_USER_MAX = EventRecord.__table__.c.user_id.type.length
#: Text columns a call's ids and name land in, and their lengths (a longer value is a DataError on PostgreSQL).
#: An anonymous visitor's events are stored under `anonymous:<anonymousId>`; an alias links its previousId both
#: as it is and as an anonymous visitor's key.
_LIMITS = {
    "userId": _USER_MAX,
    "anonymousId": _USER_MAX - len(ANONYMOUS),
    "event": EventRecord.__table__.c.name.type.length,
    "groupId": min(Group.__table__.c.group_id.type.length, TrialUser.__table__.c.group_id.type.length),
    "previousId": min(_USER_MAX, Identity.__table__.c.alias_key.type.length - len(ANONYMOUS)),
}
_EMAIL_MAX, _DOMAIN_MAX = TrialUser.__table__.c.email.type.length, TrialUser.__table__.c.domain.type.length
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # trial_users.company_size is an INTEGER
#: Properties (of a signup) and traits (of an identify or group call) that land in columns of their own.
_SIZES = frozenset({"company_size", "companySize", "employees", "employee_count", "employeeCount"})
_TIMES = frozenset({"trial_ends_at", "trialEndsAt", "createdAt", "created_at"})

_NUL = b"\\u0000"  # how JSON text carries a NUL character (a raw one is invalid JSON)


# -- reading bodies ------------------------------------------------------------------------------------------

#: What a call says, for an id made of it (`with_defaults`): not its context, which may nest past what writers take.
_SAID = ("type", "event", "name", "userId", "anonymousId", "groupId", "previousId", "timestamp", "properties", "traits")


def with_defaults(call: dict, received: datetime) -> dict:
    """The call with what Segment fills in when it is left out: a `timestamp` the time it was `received`, and a
    `messageId` made from what the call says (the same call sent again gets the same id, and is stored once). The
    call given is not changed."""
    no_time, no_id = call.get("timestamp") is None, call.get("messageId") in (None, "")
    if not (no_time or no_id):
        return call
    filled = dict(call)
    if no_id:
        said = [call.get(field) for field in _SAID]  # its own time, or none: a retry is sent at another moment
        try:
            text = orjson.dumps(said, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):  # an integer past 64 bits, a key that is not text
            text = json.dumps(said, sort_keys=True, default=str).encode()
        filled["messageId"] = "auto-" + hashlib.sha256(text).hexdigest()[:40]
    if no_time:
        filled["timestamp"] = received
    return filled


def one_call(body: bytes, kind: str, rules: Naming, received: datetime | None = None) -> Event:
    """The call a single-call endpoint (/v1/track, /v1/identify, ...) was sent: its `type` is `kind` unless the
    body names its own (Segment's Webhook destination posts every type to one URL). EventError says why a call
    cannot be stored; Unreadable, why the body cannot be read."""
    try:
        call = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Unreadable("body is not valid JSON") from None
    if not isinstance(call, dict):
        raise Unreadable("body must be a JSON object: one Segment call")
    if call.get("type") is None:
        call["type"] = kind
    if _inexact_ids(call):
        _exact_ids(call, body)
    return storable(call, rules, nul_possible=_NUL in body, received=received)


def batch_calls(body: bytes, rules: Naming, received: datetime | None = None) -> tuple[list[Event], list[dict]]:
    """A batch's storable calls, and each other one as `{"index", "reason"}`. Unreadable when the body is not a
    batch at all. Other top-level keys (context, integrations, sentAt, writeKey, ...) are what Segment's libraries
    add: ignored."""
    texts: list[bytes] | None = None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        texts = elements(body)
        calls = [_read_alone(text) for text in texts]
    else:
        if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
            raise Unreadable('body must be a JSON object like {"batch": [call, ...]}')
        calls = payload["batch"]
    if not calls:
        raise Unreadable("batch: must hold at least one call")
    events, rejected, nul_possible = [], [], _NUL in body
    for index, call in enumerate(calls):
        try:
            if isinstance(call, EventError):
                raise call
            if not isinstance(call, dict):  # parse_event would read a string as JSON text
                raise EventError("a call must be a JSON object")
            if _inexact_ids(call):
                texts = texts if texts is not None else elements(body)
                _exact_ids(call, texts[index])
            events.append(storable(call, rules, nul_possible=nul_possible, received=received))
        except EventError as exc:
            rejected.append({"index": index, "reason": str(exc)})
    return events, rejected


def _read_alone(text: bytes) -> object:
    """One call of a batch orjson refused whole, read on its own; an EventError when it is the unreadable one."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            return EventError(f"nested deeper than {MAX_DEPTH} levels")
        return EventError(f"not valid JSON: {exc}")


def _inexact_ids(call: dict) -> bool:
    get = call.get  # spelt out: this runs for every call
    return (type(get("userId")) is float or type(get("anonymousId")) is float or type(get("messageId")) is float
            or type(get("groupId")) is float or type(get("previousId")) is float)


def _exact_ids(call: dict, text: bytes) -> None:
    """Replace the ids orjson read as floats with the integers the call's text spells (stdlib json keeps them
    exact). A float the text really spells (1.5) stays as it is."""
    try:
        exact = json.loads(text)
    except RecursionError:  # nested past what the stdlib reads (about 1,000 levels): too deep to store anyway
        raise EventError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # what orjson read, the stdlib reads too: not met so far
        raise EventError(f"not valid JSON: {exc}") from None
    for field in ID_FIELDS:
        if type(call.get(field)) is float and type(exact.get(field)) is int:
            call[field] = exact[field]


# -- splitting a batch without parsing its calls -----------------------------------------------------------

_SPACE = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRUCTURE = re.compile(rb'["\[\]{}]')  # what opens a string or moves the depth
_SCALAR_END = re.compile(rb"[ \t\n\r,\]}]")
_OPENERS = b"[{"


class _Shapeless(Exception):
    """The body's own structure (the object, the batch array, the commas between calls) cannot be read."""


def elements(body: bytes) -> list[bytes]:
    """The text of each call of a batch body (`{"batch": [call, ...], ...}`), found by the structure alone:
    strings (and their escapes) are skipped whole and brackets counted, so a call's insides can be anything
    orjson may then refuse. The last `batch` key counts, as in orjson. Unreadable when the shape is not that."""
    try:
        found, at = _top_level(body)
    except (_Shapeless, IndexError):
        raise Unreadable("body is not valid JSON") from None
    if found is None:
        raise Unreadable('body must be a JSON object like {"batch": [call, ...]}')
    return found


def _top_level(text: bytes) -> tuple[list[bytes] | None, int]:
    at = _SPACE.match(text, 0).end()
    if text[at] != ord("{"):
        raise _Shapeless
    at = _SPACE.match(text, at + 1).end()
    found = None
    if text[at] == ord("}"):
        at += 1
    else:
        while True:
            key = _STRING.match(text, at)
            if key is None:
                raise _Shapeless
            at = _SPACE.match(text, key.end()).end()
            if text[at] != ord(":"):
                raise _Shapeless
            at = _SPACE.match(text, at + 1).end()
            if _key(key.group()) == "batch":
                found, at = _array(text, at) if text[at] == ord("[") else (None, _value_end(text, at))
            else:
                at = _value_end(text, at)
            at = _SPACE.match(text, at).end()
            if text[at] == ord("}"):
                at += 1
                break
            if text[at] != ord(","):
                raise _Shapeless
            at = _SPACE.match(text, at + 1).end()
    if _SPACE.match(text, at).end() != len(text):
        raise _Shapeless
    return found, at


def _key(text: bytes) -> str | None:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _array(text: bytes, at: int) -> tuple[list[bytes], int]:
    """The items of the array opening at `at`, and where it ends."""
    items: list[bytes] = []
    at = _SPACE.match(text, at + 1).end()
    if text[at] == ord("]"):
        return items, at + 1
    while True:
        end = _value_end(text, at)
        items.append(text[at:end])
        at = _SPACE.match(text, end).end()
        if text[at] == ord("]"):
            return items, at + 1
        if text[at] != ord(","):
            raise _Shapeless
        at = _SPACE.match(text, at + 1).end()


def _value_end(text: bytes, at: int) -> int:
    """Where the value starting at `at` ends: a string, a bracketed value (however deep), or a bare word."""
    first = text[at]
    if first == ord('"'):
        string = _STRING.match(text, at)
        if string is None:
            raise _Shapeless
        return string.end()
    if first in _OPENERS:
        depth = 0
        while (mark := _STRUCTURE.search(text, at)) is not None:
            if text[mark.start()] == ord('"'):
                string = _STRING.match(text, mark.start())
                if string is None:
                    raise _Shapeless
                at = string.end()
                continue
            depth += 1 if text[mark.start()] in _OPENERS else -1
            at = mark.end()
            if depth == 0:
                return at
        raise _Shapeless
    end = _SCALAR_END.search(text, at)
    end = end.start() if end else len(text)
    if end == at:
        raise _Shapeless
    return end


# -- what the store can keep ---------------------------------------------------------------------------------

def storable(call: dict, rules: Naming, *, nul_possible: bool = True, received: datetime | None = None) -> Event:
    """One call as an Event the store can keep, else EventError with the reason. `nul_possible`: False when the
    JSON text it came from holds no escaped NUL (JSON has no other way to carry one). `received`: when the call came
    in over HTTP, which fills in what Segment does (`with_defaults`)."""
    for field in ("properties", "traits"):  # before pydantic, which gives up on deep values with a ValueError
        if _deeper_than(call.get(field), MAX_DEPTH):
            raise EventError(f"{field}: nested deeper than {MAX_DEPTH} levels")
    if received is not None:
        call = with_defaults(call, received)
    try:
        event = parse_event(call, rules)
    except OverflowError:  # an offset that pushes a time past year 1 or 9999 when converted to UTC
        raise EventError("timestamp: is out of range") from None
    if nul_possible and _has_nul(event):
        raise EventError("contains a NUL character (\\u0000), which the store cannot keep")
    for field, value in (("userId", event.user_id), ("anonymousId", event.anonymous_id), ("event", event.name)):
        if value is not None:
            _check_text(field, value)
    if not EARLIEST <= event.at < LATEST:
        raise EventError(f"timestamp: must be between {EARLIEST.year} and {LATEST.year}")
    if event.name in _IN_COLUMNS:
        _IN_COLUMNS[event.name](event.props)
    return event


def _deeper_than(value: object, limit: int) -> bool:
    """Whether `value` nests more than `limit` (1 or more) objects or arrays deep; a flat object is one level.
    The walk stops `limit` levels down, however deep the value goes (orjson hands over up to 1,024 levels)."""
    return type(value) in _CONTAINERS and _nests_below(value, limit - 1)


def _nests_below(value: dict | list, levels: int) -> bool:
    """Whether a container inside `value` nests more than `levels` levels deep."""
    for inner in value.values() if type(value) is dict else value:
        if type(inner) in _CONTAINERS and (levels == 0 or _nests_below(inner, levels - 1)):
            return True
    return False


_CONTAINERS = frozenset({dict, list})  # exactly what orjson makes of objects and arrays


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):  # an Event is a tuple too
        return any(_has_nul(v) for v in value)
    return False


def _signup(props: Mapping[str, Any]) -> None:
    _check_columns("properties", props)


def _identify(traits: Mapping[str, Any]) -> None:
    _check_columns("traits", traits)
    if isinstance(company := traits.get("company"), dict):  # Segment's reserved trait: name, employee_count, ...
        _check_columns("traits.company", company)


def _group(props: Mapping[str, Any]) -> None:
    _check_text("groupId", props["group_id"])
    _check_columns("traits", props["traits"])


def _alias(props: Mapping[str, Any]) -> None:
    _check_text("previousId", props["previous_id"])


#: The events whose values land in columns of their own, and the check of those values.
_IN_COLUMNS = {SIGNUP: _signup, IDENTIFY: _identify, GROUP: _group, ALIAS: _alias}


def _check_text(field: str, value: str) -> None:
    if len(value) > _LIMITS[field]:
        raise EventError(f"{field}: is longer than {_LIMITS[field]} characters")


def _check_columns(where: str, values: Mapping[str, Any]) -> None:
    email = values.get("email")
    if isinstance(email, str) and (len(email) > _EMAIL_MAX or len(email.rsplit("@", 1)[-1]) > _DOMAIN_MAX):
        raise EventError(f"{where}.email: is longer than {_EMAIL_MAX} characters (or its domain than {_DOMAIN_MAX})")
    for key in _SIZES.intersection(values):
        size = _number(values[key])
        if size is not None and size > _INT_MAX:
            raise EventError(f"{where}.{key}: must be at most {_INT_MAX}")
        if size is not None and size < _INT_MIN:
            raise EventError(f"{where}.{key}: must be at least {_INT_MIN}")
    for key in _TIMES.intersection(values):
        if not _time_in_range(values[key]):
            raise EventError(f"{where}.{key}: must be between {EARLIEST.year} and {LATEST.year}")


def _number(value: object) -> float | None:
    """A count as a product may send it: a number, or text spelling one (NaN and words are not counts)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number else None
    return None


def _time_in_range(value: object) -> bool:
    """Whether a time the store may keep in a column is inside the calendar it can compute with. Text that is
    not an ISO time is not a time: the scorer ignores or refuses it."""
    if not isinstance(value, str):
        return True
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return True
    try:
        return EARLIEST <= (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) < LATEST
    except OverflowError:
        return False
