"""Product events: any call of Segment's tracking API in (track, page, screen, identify, group, alias), one
validated `Event` out.

Validation happens once, at the boundary, with pydantic. What comes out is a small slotted
record, because the scorer walks millions of them and pydantic models are too heavy for that.

Calls that are not product events keep a reserved name beginning with `$` (a track call may not use one):
- identify: `$identify`, its props the traits;
- group: `$group`, props `{"group_id": ..., "traits": {...}}`;
- alias: `$alias`, props `{"previous_id": ...}`.
A page call is a `page_view` (its `path` the `page_path`), a screen call a `screen_view` (its name the
`screen_name`). A call carries a `userId`, an `anonymousId`, or both; an anonymous visitor's calls are kept under
their anonymous id until an identify or alias call names the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, Protocol, Required

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

SIGNUP = "signup_complete"
ACTIVATION = "activation_complete"
INVITE = "invite_sent"
INTEGRATION = "integration_connected"
PAGE_VIEW = "page_view"
SESSION = "session_start"
CONVERTED = "trial_converted"
DEMO = "demo_requested"
CONTACT_SALES = "contact_sales_requested"
CHECKOUT_STARTED = "checkout_started"
CHECKOUT_COMPLETED = "checkout_completed"
TICKET_OPENED = "support_ticket_opened"
TICKET_CLOSED = "support_ticket_closed"
OPT_OUT = "sales_opt_out"
#: Seeds 000 and 001's trigger events (the default rules' [triggers]); only this one's property needs a check.
SEATS_PROVISIONED = "seats_provisioned"
NPS_RESPONSE = "nps_response"  # a survey answer: score 0-10, an optional comment (issue 19)
SALES_REPLY = "sales_reply"  # a lead answered outreach: sentiment positive | negative | unsubscribe

SCREEN_VIEW = "screen_view"
IDENTIFY = "$identify"
GROUP = "$group"
ALIAS = "$alias"
#: Names that are not product events: who a user is, their account, their other ids. Not activity.
NOT_ACTIVITY = frozenset({IDENTIFY, GROUP, ALIAS})
RESERVED_PREFIX = "$"

#: A page view on a billing or pricing path. Not sent by products: the scorer derives it.
BILLING_VIEW = "billing_view"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Aliases(Protocol):
    @property
    def aliases(self) -> Mapping[str, str]: ...


class Naming(Protocol):
    """What `parse_event` needs of the rules: their event aliases. `scoring.rules.Rules` is one; this module
    imports nothing from the rules, which import its event names."""

    @property
    def events(self) -> _Aliases: ...


class EventError(ValueError):
    """An event that cannot be used, with a reason a person can act on."""


class _Props(BaseModel):
    model_config = ConfigDict(extra="allow")


class SignupProps(_Props):
    email: str | None = None  # the signup may leave it to an identify call
    company_name: str | None = None
    company_size: NonNegativeInt | None = None
    signup_source: str | None = None
    plan: str | None = None
    trial_ends_at: AwareDatetime | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _EMAIL.match(value):
            raise ValueError("is not an email address")
        return value

    @field_validator("company_name", "title", "first_name", "last_name")
    @classmethod
    def _blank_is_missing(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class InviteProps(_Props):
    invitee_email: str | None = None


class IntegrationProps(_Props):
    integration_type: str = Field(min_length=1)


class PageViewProps(_Props):
    page_path: str = Field(min_length=1)


class ConversionProps(_Props):
    plan: str | None = None
    mrr: NonNegativeFloat | None = None
    conversion_source: str | None = None


class TicketProps(_Props):
    ticket_id: str | None = None


class SeatsProps(_Props):
    """An admin provisioned `count` seats (seed 000's "seat provisioning surge" adds them up)."""

    count: NonNegativeInt

    @field_validator("count", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("is a number of seats, not true or false")
        return value


class NpsProps(_Props):
    """A survey answer (issue 19): `score` 0-10 (NPS: 9-10 promoters, 0-6 detractors), an optional comment."""

    score: int = Field(ge=0, le=10)
    comment: str | None = None

    @field_validator("score", mode="before")
    @classmethod
    def _a_whole_score(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("is a whole number from 0 to 10")
        return value


class ReplyProps(_Props):
    """A lead answered sales outreach (issue 19): how they answered."""

    sentiment: Literal["positive", "negative", "unsubscribe"]


#: Canonical event names and the properties each must carry. Anything else is a plain activity event.
PROPERTY_MODELS: dict[str, type[_Props]] = {
    SIGNUP: SignupProps,
    ACTIVATION: _Props,
    INVITE: InviteProps,
    INTEGRATION: IntegrationProps,
    PAGE_VIEW: PageViewProps,
    SESSION: _Props,
    CONVERTED: ConversionProps,
    DEMO: _Props,
    CONTACT_SALES: _Props,
    CHECKOUT_STARTED: _Props,
    CHECKOUT_COMPLETED: _Props,
    TICKET_OPENED: TicketProps,
    TICKET_CLOSED: TicketProps,
    OPT_OUT: _Props,
    SEATS_PROVISIONED: SeatsProps,
    NPS_RESPONSE: NpsProps,
    SALES_REPLY: ReplyProps,
}
CANONICAL_EVENTS = frozenset(PROPERTY_MODELS)


CALL_TYPES = ("track", "page", "screen", "identify", "group", "alias")


@with_config(ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True,
                         str_strip_whitespace=True))
class Call(TypedDict, total=False):
    """One call of Segment's tracking API, of any type, as the dict its validator gives.

    `context`, `integrations`, `sentAt` and friends are accepted and not kept: nothing here reads them,
    and skipping them is a third of the validation cost at a million events. A typed dict rather than a model:
    the same checks with no object to build, a fifth less time a call.
    """

    # Numeric ids are common (Segment passes them through), so numbers become text: an integer as its decimal
    # digits (the HTTP layer hands over integers beyond 2^64 exactly, not as floats).
    type: Literal["track", "page", "screen", "identify", "group", "alias"]
    event: str | None
    name: str | None
    user_id: Annotated[str | None, Field(alias="userId")]
    anonymous_id: Annotated[str | None, Field(alias="anonymousId")]
    timestamp: Required[AwareDatetime]
    message_id: Required[Annotated[str, Field(alias="messageId", min_length=1, max_length=200)]]
    properties: dict[str, Any]
    traits: dict[str, Any]
    group_id: Annotated[str | None, Field(alias="groupId")]
    previous_id: Annotated[str | None, Field(alias="previousId")]


# The frequent events' properties are checked as typed dicts (no model to build and dump again), keeping every
# property sent besides the one checked: a trigger may filter on any of them (`where`: a page's title, a ticket's
# priority, an integration's workspace).
@with_config(ConfigDict(extra="allow"))
class _Invite(TypedDict, total=False):
    invitee_email: str | None


@with_config(ConfigDict(extra="allow"))
class _Ticket(TypedDict, total=False):
    ticket_id: str | None


@with_config(ConfigDict(extra="allow"))
class _Integration(TypedDict):
    integration_type: Annotated[str, Field(min_length=1)]


@with_config(ConfigDict(extra="allow"))
class _PageView(TypedDict):
    page_path: Annotated[str, Field(min_length=1)]


_validate_call = TypeAdapter(Call).validator
#: The frequent events' checks, each with the one property it reads and whether that may be missing or null. When
#: the property is plain text (non-empty where required) the check would pass the properties as they are, so it is
#: not run (page views and invites are half of all calls); anything else goes through it, for its coercion or its
#: words.
_FAST_PROPS = {
    INVITE: (TypeAdapter(_Invite).validator, "invitee_email", True),
    INTEGRATION: (TypeAdapter(_Integration).validator, "integration_type", False),
    PAGE_VIEW: (TypeAdapter(_PageView).validator, "page_path", False),
    TICKET_OPENED: (TypeAdapter(_Ticket).validator, "ticket_id", True),
    TICKET_CLOSED: (TypeAdapter(_Ticket).validator, "ticket_id", True),
}
_MODEL_PROPS = {
    name: TypeAdapter(model)
    for name, model in PROPERTY_MODELS.items()
    if model.model_fields and name not in _FAST_PROPS
}
_new_event = tuple.__new__  # `Event(...)` without the named tuple's Python-level __new__: a million calls a file


class Event(NamedTuple):
    """One product event, validated and named canonically. `at` is always UTC.

    A named tuple rather than a model: the scorer makes and reads millions of them, and a tuple is
    the cheapest immutable record Python has.
    """

    name: str
    user_id: str | None  # the userId sent; in the store, the user the event belongs to
    at: datetime
    message_id: str
    props: dict[str, Any]
    anonymous_id: str | None = None  # the anonymousId sent, when there was one

    def to_json(self) -> dict[str, Any]:
        """The event as the Segment call `parse_event` reads back into it."""
        call: dict[str, Any] = {"type": "track", "event": self.name}
        if self.name == IDENTIFY:
            call = {"type": "identify", "traits": self.props}
        elif self.name == GROUP:
            call = {"type": "group", "groupId": self.props.get("group_id"), "traits": self.props.get("traits", {})}
        elif self.name == ALIAS:
            call = {"type": "alias", "previousId": self.props.get("previous_id")}
        else:
            call["properties"] = self.props
        if self.user_id is not None:
            call["userId"] = self.user_id
        if self.anonymous_id is not None:
            call["anonymousId"] = self.anonymous_id
        return call | {"timestamp": self.at.isoformat().replace("+00:00", "Z"), "messageId": self.message_id}


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad field, e.g. `properties.company_size: is required`."""
    parts = []
    for item in error.errors(include_url=False):
        where = prefix + ".".join(str(p) for p in item["loc"]) or "event"
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "timezone_aware":
            message = "needs a timezone, e.g. 2026-11-02T09:00:00Z"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_event(raw: str | bytes | dict[str, Any], rules: Naming | None = None) -> Event:
    """Validate one Segment call (any type) and return it as a canonical `Event`.

    Event names are mapped through the rules' aliases ("Invite Sent" -> invite_sent). Unknown names
    are kept as they are: they still count as activity. Raises `EventError` with a readable reason.
    """
    try:
        call = _validate_call.validate_python(raw) if isinstance(raw, dict) else _validate_call.validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise EventError("not valid JSON") from None
        if any(e["type"] == "dict_type" and not e["loc"] for e in exc.errors()):
            raise EventError("an event must be a JSON object") from None
        reason = describe(exc)
        if _no_id(raw):
            reason = f"userId: is required; {reason}"
        raise EventError(reason) from None

    get = call.get
    user_id, anonymous_id = get("user_id") or None, get("anonymous_id") or None  # "" is no id
    kind = get("type", "track")
    if user_id is None and (anonymous_id is None or kind == "alias"):
        raise EventError("userId: is required")
    at = call["timestamp"].astimezone(UTC)
    message_id = call["message_id"]
    if kind == "track":
        name = get("event")
        if not name:
            raise EventError("event: is required for a track call")
        if name[0] == RESERVED_PREFIX:
            raise EventError(f"event: names beginning with {RESERVED_PREFIX} are reserved")
        props = get("properties", {})
    elif kind == "identify":
        # RudderStack's libraries send an identify call's traits in context.traits.
        traits = get("traits") or _context(raw).get("traits") or {}
        if not isinstance(traits, dict):
            raise EventError("traits: must be a JSON object")
        return Event(IDENTIFY, user_id, at, message_id, traits, anonymous_id)
    elif kind == "group":
        if not (group_id := get("group_id")):
            raise EventError("groupId: is required for a group call")
        return Event(GROUP, user_id, at, message_id, {"group_id": group_id, "traits": get("traits", {})},
                     anonymous_id)
    elif kind == "alias":
        if not (previous_id := get("previous_id")):
            raise EventError("previousId: is required for an alias call")
        return Event(ALIAS, user_id, at, message_id, {"previous_id": previous_id}, anonymous_id)
    elif kind == "page":
        name = PAGE_VIEW
        props = get("properties", {})
        path = props.get("page_path") or props.get("path")
        if not path:  # analytics.js puts the page in the call's context as well
            page = _context(raw).get("page")
            path = page.get("path") if isinstance(page, dict) else None
        props = {**props, "page_path": path}
        if page_name := get("name"):
            props.setdefault("page_name", page_name)
    else:  # screen
        name = SCREEN_VIEW
        props = get("properties", {})
        if screen_name := get("name"):
            props = {**props, "screen_name": screen_name}
    if rules is not None:
        name = rules.events.aliases.get(name, name)

    try:
        if (fast := _FAST_PROPS.get(name)) is not None:
            check, field, optional = fast
            value = props.get(field)
            if not (value.__class__ is str and (value or optional) or value is None and optional):
                props = check.validate_python(props)
        elif name in _MODEL_PROPS:
            props = _MODEL_PROPS[name].validate_python(props).model_dump(exclude_none=True, mode="json")
    except ValidationError as exc:
        raise EventError(f"{name}: {describe(exc, 'properties.')}") from None
    except (ValueError, RecursionError):  # pydantic gives up on values nested too deeply to copy
        raise EventError("properties: nested too deeply") from None

    return _new_event(Event, (name, user_id, at, message_id, props, anonymous_id))


def _context(raw: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The call's `context` object, read only when a call needs it (most never do); {} when there is none."""
    try:
        call = raw if isinstance(raw, dict) else json.loads(raw)
    except ValueError:
        return {}
    context = call.get("context") if isinstance(call, dict) else None
    return context if isinstance(context, dict) else {}


def _no_id(raw: str | bytes | dict[str, Any]) -> bool:
    """Whether a call that failed validation also names nobody (said first, as the most basic of its faults)."""
    try:
        call = raw if isinstance(raw, dict) else json.loads(raw)
    except ValueError:
        return False
    return isinstance(call, dict) and not (call.get("userId") or call.get("anonymousId"))


def dumps(event: Event) -> str:
    return json.dumps(event.to_json(), separators=(",", ":"))
