"""A user's running tallies: what a verdict reads of their events, kept so that new events are added to them
instead of the whole history being read again.

One `Tally` per user, under one rules object and time zone (its plan). It holds the trial's signup, the profile
(signup properties and identify traits, each field with the time it was sent, so the newest wins), the account the
user's latest group call named, one `Counter` per signal, the first activation inside the window, the first
billing view and the first explicit ask since the signup, and the few events that move a do-not-touch state.

Events may arrive in any order. Every aggregate keeps exactly what an earlier event could still change (the
earliest times counted, the first event of each day, the first time of each value), so adding a history one
group at a time, shuffled, gives the same tallies as reading it at once in time order (tests/scoring/test_tally.py
proves it on generated histories). Two things cannot be added:
- a trial that starts over (a newer signup, or a first signup after other events): `add` says so, and the
  caller builds the tallies again from the user's history;
- an event after the moment a verdict is asked for: `latest` says when the last event was, and a verdict as of an
  earlier moment is built from the history cut there (the scorer's `score_user` does).

`state()` and `restore()` turn a tally into plain JSON and back, for the store (trial users' running tallies).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from operator import attrgetter
from typing import Any

import orjson

from scoring import events as ev
from scoring.profile import from_traits

#: Bump when a tally's layout or meaning changes: stored tallies of another version are built again. (3: the
#: triggers' conditions that match the same events share a slot.)
VERSION = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_AT = attrgetter("at")
#: A moment as the tallies keep it (microseconds since the epoch, and the order it arrived in among equals).
Stamp = tuple[datetime, int]


@lru_cache(maxsize=8192)
def next_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant the local `day` ends (DST-aware: a day may last 23 or 25 hours).

    Cached: a whole population shares a few dozen days, and time zone arithmetic is the slow part.
    """
    return datetime.combine(day + _ONE_DAY, time(), tz).astimezone(UTC)


@lru_cache(maxsize=65536)
def _quarter_day(quarter: int, tz: tzinfo) -> date:
    # Every time zone's offset is a whole number of quarter hours, so a local date never changes within one.
    return (EPOCH + timedelta(minutes=15 * quarter)).astimezone(tz).date()


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The local date of an instant, for events that come one at a time (cached by the quarter hour)."""
    return _quarter_day(int((moment - EPOCH).total_seconds() // 900), tz)


def value_key(value: Any, message_id: str) -> str:
    """What makes a counted value distinct: text regardless of case and spacing; another value as itself; no
    value, each event on its own."""
    if isinstance(value, str):
        return "s" + value.strip().lower()
    if value:
        return "v" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return "m" + message_id


class Counter:
    """One signal's matching events inside the window: how many, the earliest `keep` of them, each distinct value
    with the first time it was seen, and the first event of each day."""

    __slots__ = ("count", "firsts", "values", "days")

    def __init__(self) -> None:
        self.count = 0
        self.firsts: list[Stamp] = []  # the earliest counted events, at most `keep` (for "at least N")
        self.values: dict[str, list] = {}  # value key -> [first stamp, the value as shown or None]
        self.days: dict[date, datetime] = {}  # local day -> its first matching event

    def add(self, stamp: Stamp, day: date, keep: int, key: str | None, shown: str | None) -> None:
        if key is None:
            self.count += 1
            firsts = self.firsts
            if len(firsts) < keep:
                insort(firsts, stamp)
            elif firsts and stamp < firsts[-1]:
                insort(firsts, stamp)
                firsts.pop()
        else:
            seen = self.values.get(key)
            if seen is None:
                self.values[key] = [stamp, shown]
            elif stamp < seen[0]:
                seen[0], seen[1] = stamp, shown
            self.count = len(self.values)
        first = self.days.get(day)
        if first is None or stamp[0] < first:
            self.days[day] = stamp[0]

    def met(self, min_count: int, min_days: int, distinct: bool) -> datetime | None:
        """When the signal was first met: the later of the moment the count reached `min_count` and the first
        event of the `min_days`-th active day (the first event at which both held); None when it is not met."""
        days = self.days
        if self.count < min_count or len(days) < min_days:
            return None
        by_days = days[min(days) if min_days == 1 else sorted(days)[min_days - 1]]
        if min_count <= 0:
            return by_days
        if distinct:
            by_count = sorted(stamp for stamp, _ in self.values.values())[min_count - 1][0]
        else:
            by_count = self.firsts[min_count - 1][0]
        return by_count if by_count >= by_days else by_days

    def shown(self) -> list[str]:
        """The counted values people can read (integration names), in the order they first came."""
        return [text for _, text in sorted(self.values.values(), key=lambda seen: seen[0]) if text is not None]

    def state(self) -> list:
        return [self.count, [_us(s) for s in self.firsts],
                [[key, *_us(seen[0]), seen[1]] for key, seen in self.values.items()],
                [[day.toordinal(), _micros(first)] for day, first in self.days.items()]]

    @classmethod
    def restore(cls, data: list) -> Counter:
        counter = cls()
        count, firsts, values, days = data
        counter.count = count
        counter.firsts = [_stamp(s) for s in firsts]
        counter.values = {key: [(_time(us), seq), shown] for key, us, seq, shown in values}
        counter.days = {date.fromordinal(day): _time(us) for day, us in days}
        return counter


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // _ONE_US


def _time(us: int) -> datetime:
    return EPOCH + timedelta(0, 0, us)  # positional: a third cheaper than microseconds=us, and it runs per stamp


def _us(stamp: Stamp) -> list[int]:
    return [_micros(stamp[0]), stamp[1]]


def _stamp(data: list[int]) -> Stamp:
    return _time(data[0]), data[1]


class Tally:
    """One user's running tallies (see the module docstring). Read its fields; change it with `add`."""

    __slots__ = ("plan", "tz", "user_id", "signup", "signup_seq", "first_day", "waiting", "profile", "group",
                 "counters", "activation", "billing", "ask", "specials", "latest", "seq", "slots")

    def __init__(self, plan: Any, tz: tzinfo, user_id: str) -> None:
        self.plan, self.tz, self.user_id = plan, tz, user_id
        self.signup: ev.Event | None = None  # the trial's signup: the latest one
        self.signup_seq = 0  # its place among events at the same instant
        self.first_day: date | None = None  # its local date, once asked for
        self.waiting = False  # events came before any signup: built again from the history when it comes
        self.profile: dict[str, tuple[Stamp, Any]] = {}  # field -> (when an identify call sent it, value)
        self.group: tuple[Stamp, str] | None = None  # the account of the latest group call
        self.counters: list[Counter | None] = [None] * len(plan.signals)
        self.activation: Stamp | None = None  # the first activation inside the window
        self.billing: datetime | None = None  # the first billing or pricing view since the signup
        self.ask: tuple[Stamp, str] | None = None  # the first explicit ask since the signup, and its event
        self.specials: list[tuple[Stamp, str, str | None]] = []  # do-not-touch events since the signup, in order
        self.latest: datetime | None = None  # the latest event taken in
        self.seq = 0  # events taken in: the order of arrival among events at the same instant
        # The triggers' slots (scoring/triggers.py `Catalogue`): each condition's occurrences among all the user's
        # product events, any time (user triggers read those since the signup; account triggers merge users').
        # Most stay empty: one shared empty tuple each until an occurrence comes (`Catalogue.feed` makes it a list).
        self.slots: list[Sequence] = [()] * plan.slot_count

    # -- building ----------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, events: Iterable[ev.Event], plan: Any, tz: tzinfo, user_id: str = "", *,
              in_order: bool = False) -> Tally:
        """The tallies of a whole history (any order, unless `in_order` says it is sorted by time already; events
        at the same instant keep the order they came in)."""
        seen = events if in_order else sorted(events, key=_AT)
        tally = cls(plan, tz, user_id or (seen[0].user_id if seen else ""))
        signup = ev.SIGNUP
        for index in range(len(seen) - 1, -1, -1):
            if seen[index].name == signup:
                tally._start(seen[index], index)
                tally._walk_trial(seen)
                return tally
        tally._walk(seen)
        return tally

    def add(self, events: Sequence[ev.Event]) -> bool:
        """Take in new events (in any order). False when the trial starts over with them (a newer signup, or a
        first one after other events): the tallies are then stale, and must be built again from the history."""
        if not events:
            return True
        seen = sorted(events, key=_AT) if len(events) > 1 else events
        for index in range(len(seen) - 1, -1, -1):
            signup = seen[index]
            if signup.name != ev.SIGNUP:
                continue
            if self.signup is None or signup.at >= self.signup.at:  # the latest signup: a trial (re)starts
                if self.signup is not None or self.waiting:
                    return False  # events were counted for no trial, or for the one it replaces
                self._start(signup, self.seq + index)
            break
        self._walk(seen)
        return True

    def _start(self, signup: ev.Event, seq: int) -> None:
        self.signup, self.signup_seq, self.first_day = signup, seq, None

    def start_day(self) -> date:
        """The local date the trial started (its day 1)."""
        if self.first_day is None:
            self.first_day = local_day(self.signup.at, self.tz)
        return self.first_day

    def _profile(self, name: str, stamp: Stamp, value: Any) -> None:
        held = self.profile.get(name)
        if held is None or stamp >= held[0]:
            self.profile[name] = (stamp, value)

    def _walk_trial(self, seen: Sequence[ev.Event]) -> None:
        """`_walk` for a whole history in time order, with its signup found: the hot loop of a population's rescore.

        The same tallies as `_walk`, made faster by the order: the local date moves forward only, the first events
        counted are the first ones met, and the counters of every event (the "*" signals) are filled at the end
        from the events inside the window and the first event of each day. Its state stays in local names; the
        rare events (asks, do-not-touch, identify, group) go to `_note`."""
        plan, tz, counters = self.plan, self.tz, self.counters
        start = self.signup.at
        window_end = start + plan.window
        counted, with_billing = plan.named, plan.named_with_billing
        is_billing, special, not_activity = plan.is_billing, plan.special, ev.NOT_ACTIVITY
        activation, page_view, keeps, distinct = plan.activation, ev.PAGE_VIEW, plan.keeps, plan.distinct
        note = self._note
        day = self.first_day = local_day(start, tz)
        day_ends = next_midnight(day, tz)
        new_days: list[tuple[date, datetime]] = []  # each active day in the window, and its first event
        in_window = 0  # events inside the window
        firsts: list[Stamp] = []  # the first of them, as many as an any-event counter keeps
        keep_firsts = plan.keep_firsts
        activated: Stamp | None = None
        billing_at: datetime | None = None
        catalogue, slots, user = plan.catalogue, self.slots, self.user_id
        feed_all, feeds, plain = bool(catalogue.any_event), catalogue.wanted, catalogue.plain
        for seq, event in enumerate(seen):
            name = event.name
            if name in not_activity:
                note(event, (event.at, seq), start)
                continue
            moment = event.at
            fed = plain.get(name)
            if fed is not None:  # `catalogue.feed`'s plain occurrences, appended in time order
                found = ((moment - EPOCH) // _ONE_US, None, 1.0, user)
                for index in fed:
                    if slots[index]:
                        slots[index].append(found)
                    else:
                        slots[index] = [found]
            elif feed_all or name in feeds:
                catalogue.feed(slots, name, event.props, moment, user)
            if moment < start:
                continue  # before this trial: not ours to judge
            if name in special:
                note(event, (moment, seq), start)  # and it counts as activity too
            if name == page_view:
                billing = is_billing(event.props.get("page_path", ""))
                if billing and billing_at is None:
                    billing_at = moment
            else:
                billing = False
            if moment >= window_end:
                continue
            if moment >= day_ends or not new_days:
                while moment >= day_ends:
                    day += _ONE_DAY
                    day_ends = next_midnight(day, tz)
                new_days.append((day, moment))
            in_window += 1
            if in_window <= keep_firsts:
                firsts.append((moment, seq))
            if name == activation and activated is None:
                activated = (moment, seq)
            indices = with_billing.get(name) if billing else counted.get(name)
            if indices is None:
                continue
            stamp = (moment, seq)
            for index in indices:
                counter = counters[index]
                if counter is None:
                    counter = counters[index] = Counter()
                field = distinct[index]
                if field is None:
                    counter.count += 1
                    if len(counter.firsts) < keeps[index]:
                        counter.firsts.append(stamp)
                    if day not in counter.days:
                        counter.days[day] = moment
                else:
                    value = event.props.get(field)
                    counter.add(stamp, day, keeps[index], value_key(value, event.message_id),
                                value.strip() if isinstance(value, str) else None)
        seq = len(seen)
        if in_window:
            days = dict(new_days)
            for index in plan.star:
                counter = counters[index] = Counter()
                field = distinct[index]
                if field is None:
                    counter.count, counter.firsts, counter.days = in_window, firsts[:keeps[index]], days
                else:  # distinct values of every event: rare; counted as `_walk` does
                    self._count_all(counter, seen, start, window_end, index)
        self.activation, self.billing = activated, billing_at
        self.seq = seq
        self.latest = seen[-1].at if seen else None

    def _count_all(self, counter: Counter, seen: Sequence[ev.Event], start: datetime, window_end: datetime,
                   index: int) -> None:
        field, keep, tz = self.plan.distinct[index], self.plan.keeps[index], self.tz
        for seq, event in enumerate(seen):
            if start <= event.at < window_end and event.name not in ev.NOT_ACTIVITY:
                value = event.props.get(field)
                counter.add((event.at, seq), local_day(event.at, tz), keep, value_key(value, event.message_id),
                            value.strip() if isinstance(value, str) else None)

    def _walk(self, seen: Sequence[ev.Event]) -> None:
        """Take in events in time order, any of them, into tallies that may already hold others (an event may be
        earlier than some of those). The rare events (asks, do-not-touch, identify, group) go to `_note`."""
        plan, tz, counters = self.plan, self.tz, self.counters
        signup = self.signup
        start = signup.at if signup is not None else None
        window_end = start + plan.window if start is not None else None
        counted, star, with_billing = plan.counted, plan.star, plan.with_billing
        is_billing, special, not_activity = plan.is_billing, plan.special, ev.NOT_ACTIVITY
        activation, page_view, keeps, distinct = plan.activation, ev.PAGE_VIEW, plan.keeps, plan.distinct
        seq = self.seq
        latest = self.latest
        day: date | None = None
        day_starts = day_ends = EPOCH
        catalogue, slots, user = plan.catalogue, self.slots, self.user_id
        feed_all, feeds = bool(catalogue.any_event), catalogue.wanted
        for event in seen:
            moment, name = event.at, event.name
            stamp = (moment, seq)
            seq += 1
            if latest is None or moment > latest:
                latest = moment
            if name in not_activity:
                self._note(event, stamp, start)
                continue
            if feed_all or name in feeds:
                catalogue.feed(slots, name, event.props, moment, user)
            if start is None:
                self.waiting = True
                continue
            if moment < start:
                continue  # before this trial: not ours to judge
            if name in special:
                self._note(event, stamp, start)  # and it counts as activity too
            billing = name == page_view and is_billing(event.props.get("page_path", ""))
            if billing and (self.billing is None or moment < self.billing):
                self.billing = moment
            if moment >= window_end:
                continue
            if not day_starts <= moment < day_ends:  # events in order change day rarely
                day = local_day(moment, tz)
                day_starts, day_ends = next_midnight(day - _ONE_DAY, tz), next_midnight(day, tz)
            if name == activation and (self.activation is None or stamp < self.activation):
                self.activation = stamp
            for index in with_billing.get(name, star) if billing else counted.get(name, star):
                counter = counters[index]
                if counter is None:
                    counter = counters[index] = Counter()
                field = distinct[index]
                if field is None:  # Counter.add, inlined: this runs for most events of a population's rescore
                    counter.count += 1
                    firsts = counter.firsts
                    if len(firsts) < keeps[index]:
                        if not firsts or stamp >= firsts[-1]:
                            firsts.append(stamp)
                        else:
                            insort(firsts, stamp)
                    elif stamp < firsts[-1]:
                        insort(firsts, stamp)
                        firsts.pop()
                    days = counter.days
                    first = days.get(day)
                    if first is None or moment < first:
                        days[day] = moment
                else:
                    value = event.props.get(field)
                    counter.add(stamp, day, keeps[index], value_key(value, event.message_id),
                                value.strip() if isinstance(value, str) else None)
        self.seq, self.latest = seq, latest

    def _note(self, event: ev.Event, stamp: Stamp, start: datetime | None) -> None:
        """An identify or group call, an ask, or a change of state: checkout, upgrade, conversion, support
        tickets, opt-out."""
        name = event.name
        if name == ev.IDENTIFY:
            for field, value in from_traits(event.props).items():
                self._profile(field, stamp, value)
            return
        if name == ev.GROUP:
            if self.group is None or stamp >= self.group[0]:
                self.group = (stamp, event.props["group_id"])
            return
        if name == ev.ALIAS:
            return
        if start is None:
            self.waiting = True
            return
        if event.at < start:
            return
        if name in self.plan.asks:
            if self.ask is None or stamp < self.ask[0]:
                self.ask = (stamp, name)
            return
        insort(self.specials, (stamp, name, event.props.get("ticket_id")))

    # -- reading -----------------------------------------------------------------------------------------------

    def states(self) -> tuple[datetime | None, datetime | None, datetime | None, datetime | None, list]:
        """The do-not-touch states the events left, in time order: checkout under way since, upgraded at,
        converted at, opted out at, and the support tickets still open."""
        checkout_since = upgraded_at = converted_at = opted_out_at = None
        open_tickets: list[str | None] = []
        for (moment, _), name, ticket in self.specials:
            if name == ev.CHECKOUT_STARTED:
                checkout_since = moment
            elif name == ev.CHECKOUT_COMPLETED:
                checkout_since, upgraded_at = None, moment
            elif name == ev.CONVERTED:
                checkout_since, upgraded_at = None, moment
                converted_at = converted_at or moment
            elif name == ev.TICKET_OPENED:
                open_tickets.append(ticket)
            elif name == ev.TICKET_CLOSED and open_tickets:
                open_tickets.remove(ticket if ticket in open_tickets else open_tickets[0])
            elif name == ev.OPT_OUT:
                opted_out_at = moment
        return checkout_since, upgraded_at, converted_at, opted_out_at, open_tickets

    # -- storing -----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The tallies as values JSON can write (times as microseconds since the epoch, days as ordinals). The slots
        are the tally's own lists, not copies: write the state out before adding to the tally again."""
        signup = self.signup
        return {
            "v": VERSION,
            "signup": None if signup is None else [_micros(signup.at), self.signup_seq, signup.message_id,
                                                   signup.props],
            "waiting": self.waiting,
            "profile": {name: [*_us(stamp), value] for name, (stamp, value) in self.profile.items()},
            "group": None if self.group is None else [*_us(self.group[0]), self.group[1]],
            "counters": [None if c is None else c.state() for c in self.counters],
            "activation": None if self.activation is None else _us(self.activation),
            "billing": None if self.billing is None else _micros(self.billing),
            "ask": None if self.ask is None else [*_us(self.ask[0]), self.ask[1]],
            "specials": [[*_us(stamp), name, ticket] for stamp, name, ticket in self.specials],
            "latest": None if self.latest is None else _micros(self.latest),
            "seq": self.seq,
            "slots": self.slots,  # lists of tuples, which JSON writes as arrays (restore makes tuples again)
        }

    @classmethod
    def restore(cls, data: dict[str, Any], plan: Any, tz: tzinfo, user_id: str) -> Tally | None:
        """A tally from `state()`; None when it was made by another version of this module or other rules."""
        if not _restorable(data, plan):
            return None
        tally = cls(plan, tz, user_id)
        if (signup := data["signup"]) is not None:
            us, tally.signup_seq, message_id, props = signup
            tally.signup = ev.Event(ev.SIGNUP, user_id, _time(us), message_id, props)
        tally.waiting = data["waiting"]
        tally.profile = {name: ((_time(us), seq), value) for name, (us, seq, value) in data["profile"].items()}
        if (group := data["group"]) is not None:
            tally.group = ((_time(group[0]), group[1]), group[2])
        tally.counters = [None if c is None else Counter.restore(c) for c in data["counters"]]
        tally.activation = None if data["activation"] is None else _stamp(data["activation"])
        tally.billing = None if data["billing"] is None else _time(data["billing"])
        tally.ask = None if data["ask"] is None else (_stamp(data["ask"][:2]), data["ask"][2])
        tally.specials = [((_time(us), seq), name, ticket) for us, seq, name, ticket in data["specials"]]
        tally.latest = None if data["latest"] is None else _time(data["latest"])
        tally.seq = data["seq"]
        tally.slots = [list(map(tuple, items)) if items else () for items in data["slots"]]  # () as __init__ has
        return tally

    @staticmethod
    def restore_slots(data: dict[str, Any], plan: Any,
                      wanted: Iterable[int]) -> tuple[list[Sequence], datetime | None] | None:
        """Of a tally's `state()`, only the slots `wanted` (the others empty) and when its latest event was, as
        `restore` would give them; None where `restore` gives None. What an account reads of a member's tallies,
        without the rest: a live group's roll-up reads several members' stored tallies for each user it judges."""
        if not _restorable(data, plan):
            return None
        stored = data["slots"]
        slots: list[Sequence] = [()] * len(stored)
        for index in wanted:
            if items := stored[index]:
                slots[index] = list(map(tuple, items))
        return slots, None if data["latest"] is None else _time(data["latest"])


def _restorable(data: dict[str, Any], plan: Any) -> bool:
    """Whether a stored state was made by this version of the module, under a plan of this shape."""
    return data.get("v") == VERSION and len(data["counters"]) == len(plan.signals) and \
        len(data["slots"]) == len(plan.catalogue)
