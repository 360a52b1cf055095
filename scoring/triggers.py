"""Triggers: the rules language beyond seed 002's points (seeds 000 and 001).

A trigger is one or more conditions that must all hold inside one sliding window, on one user (`level = "user"`) or
over the users of one account (`level = "account"`). It has a family (seed 000: `buying`, a rep can accelerate a
purchase; `blocker`, a rep must help them unblock), a strength (seed 000's "Signal strength") and a tier of response
(seed 001: 1 same day, 2 within 72 h, 3 automated nurture only: recorded on the verdict, never routed to a person).

A condition names an event (any name the product sends, after the rules' aliases; `"*"` any product event;
`"billing_view"` a page view on a billing path), may filter it on its properties (`where`), and measures the
matching events inside the window:
- `events`: how many (the default), at least `at_least`;
- `days`: on how many distinct days (the team's time zone);
- `values`: how many distinct values of `field` (`part = "domain"`: of the email domain in it);
- `total`: the sum of the numeric `field` (seats provisioned);
- `users`: how many distinct users (account triggers);
- `growth`: week over week, by at least `at_least` (1.0 is +100 %), for `weeks` weeks in a row (calendar weeks from
  Monday, in the team's time zone): it holds from the first event that makes the latest week grow enough.
A condition with `not_followed_by` holds `for` after each matching event that no `not_followed_by` event followed in
that time ("SSO configuration started, not completed within 7 days").

A trigger fires at the first moment every condition holds inside one window ending then (an event `within` before
that moment or later counts: 48 hours apart counts, a microsecond more does not). Its weight is its strength's
weight, times the window multiplier when the trigger asks for one: the multiplier of the tightest listed span that
holds the events that made it fire (seed 000: "clustered in 48h vs spread over weeks"); with `min_weight`, it fires
only at a moment its weight reaches that.

This module is pure (no clock, no I/O): conditions turn events into occurrences, and `evaluate` judges occurrences as
of a moment. Occurrences are plain tuples, so tallies can keep them and accounts can merge their users'.
"""

from __future__ import annotations

import math
import re
import string
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property, lru_cache
from operator import itemgetter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = itemgetter(0)  # an occurrence's moment
_US = timedelta(microseconds=1)
_DURATION = re.compile(r"^\s*(\d+)\s*(h|d|w)\s*$")
_UNIT_US = {"h": 3_600_000_000, "d": 86_400_000_000, "w": 7 * 86_400_000_000}
#: The window of the whole trial (user triggers only): from the signup to the trial's last day.
TRIAL = "trial"


class Family(StrEnum):
    BUYING = "buying"
    BLOCKER = "blocker"


class Strength(StrEnum):
    VERY_HIGH = "very_high"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: A strength's weight before any window multiplier; what ranks fired triggers against each other.
STRENGTH_WEIGHT = {Strength.VERY_HIGH: 4.0, Strength.HIGH: 3.0, Strength.MEDIUM: 2.0, Strength.LOW: 1.0}


class Level(StrEnum):
    USER = "user"
    ACCOUNT = "account"


#: What a trigger's `evidence` may say, filled in from what fired it (scoring/engine.py `trigger_evidence`).
EVIDENCE_FIELDS = ("count", "s", "days", "values", "users", "total", "span")

#: Seed 001's tiers of response: what a fired trigger asks of the team.
RESPONSE_WORDS = {1: "same day", 2: "within 72 h", 3: "automated nurture only"}


def duration_us(text: str) -> int:
    """`"48h"`, `"7d"`, `"2w"` in microseconds; a ValueError naming the form otherwise."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration: a whole number and h, d or w, e.g. \"48h\", \"7d\", \"2w\"")
    return int(found.group(1)) * _UNIT_US[found.group(2)]


Duration = Annotated[str, Field(description="a whole number and h, d or w: 48h, 7d, 2w")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Filter(_Model):
    """One property filter: `equals` (text regardless of case), `in` / `not_in` a list, `under` a path (itself and
    below it), `at_least` / `at_most` a number. Written in the rules file as a value (equals) or a table."""

    equals: Any = None
    in_: tuple[Any, ...] | None = Field(None, alias="in")
    not_in: tuple[Any, ...] | None = None
    under: str | None = None
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_value(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {"equals": data}

    @model_validator(mode="after")
    def _one_test(self) -> Filter:
        if all(getattr(self, name) is None for name in ("equals", "in_", "not_in", "under", "at_least", "at_most")):
            raise ValueError("a filter needs a value, or one of in, not_in, under, at_least, at_most")
        return self

    def accepts(self, value: Any) -> bool:
        if self.equals is not None and _norm(value) != _norm(self.equals):
            return False
        if self.in_ is not None and _norm(value) not in {_norm(v) for v in self.in_}:
            return False
        if self.not_in is not None and _norm(value) in {_norm(v) for v in self.not_in}:
            return False
        if self.under is not None:
            if not isinstance(value, str):
                return False
            path = value.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
            root = self.under.rstrip("/").lower()
            if not (path == root or path.startswith(root + "/")):
                return False
        if self.at_least is not None or self.at_most is not None:
            number = _number(value)
            if number is None:
                return False
            if self.at_least is not None and number < self.at_least:
                return False
            if self.at_most is not None and number > self.at_most:
                return False
        return True


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


Measure = Literal["events", "days", "values", "total", "users", "growth"]


class Condition(_Model):
    """One condition of a trigger (see the module docstring)."""

    event: str
    where: dict[str, Filter] = Field(default_factory=dict)
    measure: Measure = "events"
    field: str | None = None
    part: Literal["domain"] | None = None
    at_least: Annotated[float, Field(gt=0)] = 1
    weeks: PositiveInt = 2
    not_followed_by: str | None = None
    for_: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        if self.measure in ("values", "total") and not self.field:
            raise ValueError(f"measure {self.measure!r} needs `field`, the property it reads")
        if self.part is not None and self.measure != "values":
            raise ValueError("`part` applies to measure \"values\" only")
        if (self.not_followed_by is None) != (self.for_ is None):
            raise ValueError("`not_followed_by` and `for` go together: \"not completed within `for`\"")
        if self.for_ is not None:
            duration_us(self.for_)
            if self.measure != "events":
                raise ValueError("a `not_followed_by` condition counts events only")
        return self

    @cached_property
    def wait_us(self) -> int:
        """A `not_followed_by` condition's `for`, in microseconds; 0 for any other condition."""
        return 0 if self.for_ is None else duration_us(self.for_)

    @cached_property
    def least(self) -> int:
        """How many occurrences the condition needs before it can hold in any window (measuring users: how many users
        with one): each event, distinct value, day or user it counts comes from an occurrence of its own; growth
        needs its weeks' worth (1, 2 and 4 events for +100 % over two weeks); a total or "not completed" condition
        needs one."""
        if self.measure == "growth":
            # A base week with one, then each week at least `1 + at_least` times the one before, and more.
            week = total = 1
            for _ in range(self.weeks):
                week = max(math.ceil(week * (1 + self.at_least)), week + 1)
                total += week
            return total
        return 1 if self.derived or self.measure == "total" else math.ceil(self.at_least)

    @property
    def derived(self) -> bool:
        """Its occurrences are moments worked out from events (not followed by, growth), not the events."""
        return self.not_followed_by is not None or self.measure == "growth"


class Trigger(_Model):
    """A trigger (see the module docstring): its conditions, window, and what it means to a rep."""

    label: str
    family: Family
    strength: Strength
    response: Literal[1, 2, 3]
    level: Level = Level.USER
    within: Duration
    all: tuple[Condition, ...] = Field(min_length=1)
    talk_track: str
    evidence: str
    seed: str = ""  # which seed and row it implements: shown by `pqlbot rules`
    icp_gate: bool = False  # whether seed 002's ICP gate ([gates]) applies to it
    window_multiplier: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    min_weight: Annotated[float, Field(ge=0)] = 0

    @field_validator("within")
    @classmethod
    def _window(cls, within: str) -> str:
        if within != TRIAL:
            duration_us(within)
        return within

    @model_validator(mode="after")
    def _consistent(self) -> Trigger:
        if self.within == TRIAL and self.level is Level.ACCOUNT:
            raise ValueError("an account trigger has no trial: give `within` a duration such as \"14d\"")
        for span in self.window_multiplier:
            if self.within != TRIAL and duration_us(span) > duration_us(self.within):
                raise ValueError(f"window_multiplier span {span!r} is longer than the window ({self.within})")
            duration_us(span)
        for condition in self.all:
            if condition.measure == "users" and self.level is Level.USER:
                raise ValueError("measure \"users\" counts an account's users: it needs level = \"account\"")
        for _, named, _, _ in string.Formatter().parse(self.evidence):
            if named is not None and named not in EVIDENCE_FIELDS:
                fields = ", ".join(f"{{{name}}}" for name in EVIDENCE_FIELDS)
                raise ValueError(f"evidence: {{{named}}} is not filled in (it may say {fields})")
        return self

    @cached_property
    def window_us(self) -> int | None:
        """The sliding window in microseconds; None for the trial's."""
        return None if self.within == TRIAL else duration_us(self.within)

    @cached_property
    def _spans(self) -> list[tuple[int, float]]:
        """The window multiplier's spans in microseconds, tightest first, with their factors."""
        return sorted((duration_us(span), factor) for span, factor in self.window_multiplier.items())

    @property
    def weight(self) -> float:
        return STRENGTH_WEIGHT[self.strength]

    @property
    def routed(self) -> bool:
        """Tier 1 and 2 go to a person; tier 3 is recorded for automated nurture only."""
        return self.response != 3

    def multiplier(self, span_us: int) -> float:
        """The window multiplier for events that span `span_us`: the tightest listed span holding them; 1 when none
        does (or none is listed)."""
        return next((factor for limit, factor in self._spans if span_us <= limit), 1.0)


# -- occurrences ----------------------------------------------------------------------------------------------------

#: One matching event as the tallies keep it: (microseconds since the epoch, the value it counts for, the amount it
#: adds, the user). The value is the distinct key (values), or None; the amount the numeric field (total) or 1.
Occurrence = tuple[int, str | None, float, str]


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // _US


def moment_of(us: int) -> datetime:
    return EPOCH + timedelta(0, 0, us)  # positional: a third cheaper than microseconds=us, and it runs per stamp


def matches(condition: Condition, name: str, props: Mapping[str, Any], is_billing) -> bool:  # noqa: ANN001
    """Whether an event (its canonical name and properties) is one the condition counts. `is_billing(path)` says
    whether a page path is a billing one (the rules' [events] billing_paths)."""
    wanted = condition.event
    if wanted == "billing_view":
        if name != "page_view" or not is_billing(props.get("page_path", "")):
            return False
    elif wanted != "*" and wanted != name:
        return False
    for prop, test in condition.where.items():
        if not test.accepts(props.get(prop)):
            return False
    return True


def occurrence(condition: Condition, at_us: int, props: Mapping[str, Any], user: str) -> Occurrence:
    """The occurrence an event the condition counts adds."""
    value: str | None = None
    amount = 1.0
    if condition.measure == "values":
        raw = props.get(condition.field)
        if isinstance(raw, str):
            raw = raw.strip().lower()
            if condition.part == "domain":
                raw = raw.rsplit("@", 1)[1] if "@" in raw else None
        value = None if raw in (None, "") else str(raw)
    elif condition.measure == "total":
        amount = _number(props.get(condition.field)) or 0.0
    return (at_us, value, amount, user)


# -- evaluation -----------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Fired:
    """A trigger that fired: when, how tight its events were, its weight, and what a rep reads of it."""

    name: str
    trigger: Trigger
    at: datetime
    span_us: int
    weight: float
    count: int  # events counted by its first condition in the window that fired it
    days: int  # distinct days of the events counted, in the window
    values: tuple[str, ...] = ()  # distinct values counted (integration types, invitee domains)
    users: tuple[str, ...] = ()  # the users whose events made it fire
    total: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def at_us(self) -> int:
        return micros(self.at)


def derived_occurrences(condition: Condition, occurrences: Sequence[Occurrence], ends: Sequence[Occurrence],
                        at_us: int, tz: tzinfo) -> list[Occurrence]:
    """The moments a derived condition holds from, up to `at_us`: `for` after each matching event no `ends` event
    followed within it; or, for growth, the events that made the latest week grow enough."""
    if condition.not_followed_by is not None:
        wait = condition.wait_us
        end_times = sorted(e[0] for e in ends)
        found = []
        for us, value, amount, user in occurrences:
            due = us + wait
            if due > at_us:
                continue
            # Ended by an event after it (or at the same instant), up to the due moment inclusive.
            index = bisect_left(end_times, us)
            if index < len(end_times) and end_times[index] <= due:
                continue
            found.append((due, value, amount, user))
        found.sort()
        return found
    return _growth(condition, occurrences, at_us, tz)


_QUARTER_US = 900_000_000


@lru_cache(maxsize=65536)
def _quarter_date(quarter: int, tz: tzinfo) -> date:
    # Every time zone's offset is a whole number of quarter hours, so a local date never changes within one.
    return moment_of(quarter * _QUARTER_US).astimezone(tz).date()


def local_date(us: int, tz: tzinfo) -> date:
    """The local date of a moment (microseconds since the epoch) in `tz`; cached by the quarter hour, as a population's
    events share few."""
    return _quarter_date(us // _QUARTER_US, tz)


@lru_cache(maxsize=65536)
def _quarter_week(quarter: int, tz: tzinfo) -> date:
    day = _quarter_date(quarter, tz)
    return day - timedelta(days=day.weekday())


def _week_of(us: int, tz: tzinfo) -> date:
    """The Monday of the local week of a moment (cached by the quarter hour, as `local_date`)."""
    return _quarter_week(us // _QUARTER_US, tz)


def _growth(condition: Condition, occurrences: Sequence[Occurrence], at_us: int, tz: tzinfo) -> list[Occurrence]:
    """Events at which the week they fall in has grown by `at_least` over the week before, for `weeks` weeks in a
    row (each earlier week counted whole; the base week had at least one event)."""
    kept = bisect_right(occurrences, at_us, key=_TIME)  # in time order: those up to `at_us`
    if not kept:
        return []
    seven = timedelta(days=7)
    # The base week, `weeks` before an event's, must hold an event: with the first and the last event's weeks closer
    # than that, none can grow (an account of one user's two-week trial, most days). Not worth a walk.
    if _week_of(occurrences[kept - 1][0], tz) - _week_of(occurrences[0][0], tz) < seven * condition.weeks:
        return []
    week_of = [_quarter_week(item[0] // _QUARTER_US, tz) for item in occurrences[:kept]]  # `_week_of`, inlined
    weeks: dict[date, int] = {}
    for week in week_of:
        weeks[week] = weeks.get(week, 0) + 1
    factor = 1 + condition.at_least
    found: list[Occurrence] = []
    seen: dict[date, int] = {}
    for item, week in zip(occurrences, week_of, strict=False):
        seen[week] = seen.get(week, 0) + 1
        counts = [seen[week]] + [weeks.get(week - seven * back, 0) for back in range(1, condition.weeks + 1)]
        # counts[0] is this week so far; counts[k] the whole week k weeks before.
        if counts[-1] > 0 and all(counts[k] >= factor * counts[k + 1] and counts[k] > counts[k + 1]
                                  for k in range(condition.weeks)):
            found.append(item)
    return found


def _measure(condition: Condition, items: Sequence[Occurrence], tz: tzinfo) -> float:
    measure = condition.measure
    if measure in ("events", "growth") or condition.derived:
        return len(items)
    if measure == "days":
        return len({local_date(us, tz) for us, *_ in items})
    if measure == "values":
        return len({value for _, value, _, _ in items if value is not None})
    if measure == "total":
        return sum(amount for _, _, amount, _ in items)
    return len({user for *_, user in items})  # users


def _tightest_start(condition: Condition, items: Sequence[Occurrence], tz: tzinfo) -> int:
    """The latest moment from which the condition's events up to the window's end still hold it."""
    need = condition.at_least
    if condition.measure == "events" or condition.derived:
        return items[len(items) - math.ceil(need)][0]
    for start in range(len(items) - 1, -1, -1):
        if _measure(condition, items[start:], tz) >= need:
            return items[start][0]
    return items[0][0]


def evaluate(name: str, trigger: Trigger, occurrences: Sequence[Sequence[Occurrence]], at_us: int, tz: tzinfo, *,
             since_us: int | None = None, until_us: int | None = None) -> Fired | None:
    """Whether `trigger` fired by `at_us`, and when first: `occurrences[i]` are condition i's, in time order (derived
    conditions' already worked out by `derived_occurrences`). Only occurrences from `since_us` (the trial's start,
    for user triggers) and up to `until_us` (the trial window's end, for `within = "trial"`) count."""
    limit = at_us if until_us is None else min(at_us, until_us)
    lists, times = [], []
    for items in occurrences:
        column = [item[0] for item in items]
        low = 0 if since_us is None else bisect_left(column, since_us)
        high = bisect_right(column, limit)
        if high <= low:
            return None
        lists.append(items[low:high])
        times.append(column[low:high])
    window = trigger.window_us
    ends = sorted({us for column in times for us in column})
    conditions = trigger.all
    for end in ends:
        start = (since_us if since_us is not None else -(1 << 62)) if window is None else end - window
        inside = []
        for condition, items, column in zip(conditions, lists, times, strict=True):
            low, high = bisect_left(column, start), bisect_right(column, end)
            if high <= low or _measure(condition, items[low:high], tz) < condition.at_least:
                break
            inside.append(items[low:high])
        else:
            span = end - min(_tightest_start(c, items, tz) for c, items in zip(conditions, inside, strict=True))
            weight = trigger.weight * trigger.multiplier(span)
            if weight < trigger.min_weight:
                continue
            first = inside[0]
            counted = [item for items in inside for item in items]
            return Fired(
                name=name, trigger=trigger, at=moment_of(end), span_us=span, weight=weight, count=len(first),
                days=len({local_date(us, tz) for us, *_ in counted}),
                values=tuple(dict.fromkeys(v for items, c in zip(inside, conditions, strict=True)
                                           if c.measure == "values" for _, v, _, _ in items if v is not None)),
                users=tuple(dict.fromkeys(user for *_, user in counted)),
                total=sum(a for items, c in zip(inside, conditions, strict=True) if c.measure == "total"
                          for _, _, a, _ in items),
            )
    return None


# -- the catalogue compiled for the tallies --------------------------------------------------------------------------

def _occurrence_key(condition: Condition) -> str:
    """What makes two conditions' occurrences the same: the events they match and what each occurrence carries.
    How many they need, over how many weeks, and what may end them are read when judging, not when feeding."""
    kind = condition.measure if condition.measure in ("values", "total") else "events"
    return Condition(event=condition.event, where=condition.where, measure=kind, field=condition.field,
                     part=condition.part).model_dump_json(by_alias=True)


def _route(feeders: tuple) -> tuple[str | None, Any, tuple]:
    """How an event name's feeders are chosen for one event: (None, the feeders as (slot, how), ...) when none tests
    a property; (the property, {its text value: the feeders it passes}, the feeders) when they all test the same
    one, so a population's page paths are each tested once; ("", {}, the feeders) otherwise, tested every time."""
    tested = {field for _, checks, _ in feeders for field, _ in checks}
    if not tested:
        return None, tuple((index, condition) for index, _, condition in feeders), feeders
    if len(tested) == 1 and all(len(checks) <= 1 for _, checks, _ in feeders):
        return next(iter(tested)), {}, feeders
    return "", {}, feeders


class Catalogue:
    """The rules' triggers laid out for running tallies: each distinct condition (and each `not_followed_by` event)
    is a *slot*, a time-ordered list of occurrences a tally keeps; conditions that match the same events into the
    same occurrences share one (three pricing views and a pricing view with no upgrade click after it read one list).

    `feed` adds an event's occurrences to a tally's slot lists; `fired` judges one trigger over slot lists (a user's,
    or an account's merged from its users'). `slots_of_level(level)` says which slots a level's triggers read."""

    def __init__(self, triggers: Mapping[str, Trigger], is_billing) -> None:  # noqa: ANN001
        self.triggers = dict(triggers)
        self.is_billing = is_billing
        self.conditions: list[Condition] = []
        keys: dict[str, int] = {}

        def slot(condition: Condition) -> int:
            key = _occurrence_key(condition)
            if key not in keys:
                keys[key] = len(self.conditions)
                self.conditions.append(condition)
            return keys[key]

        #: trigger name -> for each condition, (its slot, the slot of its `not_followed_by` events or None)
        self.layout: dict[str, list[tuple[int, int | None]]] = {}
        for name, trigger in self.triggers.items():
            self.layout[name] = [
                (slot(c), None if c.not_followed_by is None else slot(Condition(event=c.not_followed_by)))
                for c in trigger.all
            ]
        #: trigger name -> its "not completed within" waits: (the wait in µs, the slot of the events that start one,
        #: the slot of those that end it), for `due`
        self.waits: dict[str, tuple[tuple[int, int, int], ...]] = {
            name: tuple((c.wait_us, index, end) for c, (index, end) in zip(trigger.all, self.layout[name], strict=True)
                        if c.not_followed_by is not None and end is not None)
            for name, trigger in self.triggers.items()}
        self.by_event: dict[str, list[int]] = {}
        self.any_event: list[int] = []
        self.billing: list[int] = []
        for index, condition in enumerate(self.conditions):
            if condition.event == "*":
                self.any_event.append(index)
            elif condition.event == "billing_view":
                self.billing.append(index)
            else:
                self.by_event.setdefault(condition.event, []).append(index)
        self.wanted = frozenset(self.by_event) | ({"page_view"} if self.billing else frozenset())
        # For each event name, what feeding it takes: its feeders (slot, property tests, how the occurrence is made,
        # None for a plain one), routed by `_route`.
        billing_test = ("page_path", lambda path: isinstance(path, str) and is_billing(path))
        feeders: dict[int, tuple] = {}
        for index, condition in enumerate(self.conditions):
            checks = tuple((prop, test.accepts) for prop, test in condition.where.items())
            if condition.event == "billing_view":
                checks = (billing_test, *checks)
            plain = condition.measure not in ("values", "total")
            feeders[index] = (index, checks, None if plain else condition)
        any_event = tuple(feeders[i] for i in self.any_event)
        named = {name: tuple(feeders[i] for i in indices) for name, indices in self.by_event.items()}
        if self.billing:
            named["page_view"] = (*named.get("page_view", ()), *(feeders[i] for i in self.billing))
        self._any = _route(any_event) if any_event else None
        self._quiet = {name: _route(found) for name, found in named.items()}  # not activity: "*" do not count it
        self._routes = {name: _route((*found, *any_event)) for name, found in named.items()}
        #: Event names every feeder of which adds a plain occurrence (no property tested, no value or amount kept:
        #: signups, session starts), with their slots: a history read in time order appends one occurrence to each
        #: of them, the same as `feed` adds, without a call per event (scoring/tally.py `Tally._walk_trial`).
        self.plain: dict[str, tuple[int, ...]] = {
            name: tuple(index for index, _ in kept) for name, (prop, kept, _) in self._routes.items()
            if prop is None and all(condition is None for _, condition in kept)}
        self._of_level: dict[Level, frozenset[int]] = {}

    def __len__(self) -> int:
        return len(self.conditions)

    def slots_of_level(self, level: Level) -> frozenset[int]:
        """The slots `level`'s triggers read (worked out once: a rescore asks for every user)."""
        found = self._of_level.get(level)
        if found is None:
            found = self._of_level[level] = frozenset(
                s for name, t in self.triggers.items() if t.level is level for pair in self.layout[name]
                for s in pair if s is not None)
        return found

    def feed(self, lists: list[list[Occurrence]], name: str, props: Mapping[str, Any], at_us: int | datetime,
             user: str, *, activity: bool = True) -> None:
        """Add an event's occurrences to `lists` (one per slot, kept in time order; an empty one may be a tuple, and is
        then replaced by a list). `activity`: whether the event is
        a product event ("*" conditions count it). `at_us` may be the event's aware moment instead: it is worked out
        only when the event is kept (most page views are not)."""
        route = self._routes.get(name, self._any) if activity else self._quiet.get(name)
        if route is None:
            return
        prop, kept, feeders = route
        if prop is not None:  # kept: the feeders each value of `prop` passes, remembered for text
            value = props.get(prop) if prop else None
            passing = kept.get(value) if prop and type(value) is str else None
            if passing is None:
                passing = tuple((index, condition) for index, checks, condition in feeders
                                if all(accepts(props.get(field)) for field, accepts in checks))
                if prop and type(value) is str:
                    if len(kept) >= 8192:
                        kept.clear()
                    kept[value] = passing
            kept = passing
        for index, condition in kept:
            if type(at_us) is not int:
                at_us = (at_us - EPOCH) // _US  # micros(), inlined: this runs for most kept events
            found = (at_us, None, 1.0, user) if condition is None else occurrence(condition, at_us, props, user)
            items = lists[index]
            if not items:
                lists[index] = [found]  # an empty slot may be a shared empty tuple (scoring/tally.py `Tally`)
            elif items[-1][0] <= at_us:
                items.append(found)
            else:
                items.insert(bisect_right(items, at_us, key=_TIME), found)

    def fired(self, name: str, lists: Sequence[Sequence[Occurrence]], at_us: int, tz: tzinfo, *,
              since_us: int | None = None, until_us: int | None = None) -> Fired | None:
        """Whether trigger `name` fired by `at_us` over these slot lists (see `evaluate`)."""
        trigger = self.triggers[name]
        columns = []
        for (index, end), condition in zip(self.layout[name], trigger.all, strict=True):
            items = lists[index]
            if condition.derived:
                items = derived_occurrences(condition, items, () if end is None else lists[end], at_us, tz)
            columns.append(items)
        return evaluate(name, trigger, columns, at_us, tz, since_us=since_us, until_us=until_us)

    def due(self, names: Iterable[str], lists: Sequence[Sequence[Occurrence]], at_us: int, *,
            ended: bool = False) -> int | None:
        """The soonest moment after `at_us` one of triggers `names` may fire with no new event (a `not_followed_by`
        wait ending); None: none may. With `ended`, a wait an event has ended already is left out (the engine's
        `wake` and `until`); without, every wait still running counts: the days `pqlbot backtest` judges besides
        those with events, as before the wake sweep (judging a day more can raise a lead a time-alone turn made,
        which the replay has no other way to see). Asked of every user a rescore judges: the slot lists are in time
        order, so each wait's first running occurrence is found by bisection."""
        soonest: int | None = None
        for name in names:
            for wait, index, end in self.waits[name]:
                items = lists[index]
                if not items or items[-1][0] + wait <= at_us:
                    continue  # none started, or every wait over by `at_us`
                stops = sorted(e[0] for e in lists[end]) if ended and lists[end] else None
                for position in range(bisect_right(items, at_us - wait, key=_TIME), len(items)):
                    us = items[position][0]
                    if soonest is not None and us + wait >= soonest:
                        break  # in time order: the later ones end later still
                    if stops is not None:
                        after = bisect_left(stops, us)
                        if after < len(stops) and stops[after] <= us + wait:
                            continue  # ended in time, as `derived_occurrences` has it
                    soonest = us + wait
                    break
        return soonest
