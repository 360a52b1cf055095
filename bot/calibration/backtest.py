"""`pqlbot backtest`: replay a history through a rules file, day by day in the team's timezone, and read what it
would have done (issue 19; seeds 000, 001 and 002).

The replay, per user (calls under an anonymous id are the user's once a call links them, as the scorer has it):
- their events, in time order, are taken into the user's running tallies one local day at a time, and the day is
  judged at its end (23:59:59.999999 local, DST-aware), as the bot would have seen it that evening;
- a "started, not completed within N days" wait that ends on a day without events is judged at that day's end too,
  and so is a do-not-touch window closing on such a day (a checkout's grace, the hours after an upgrade) once it
  held back a lead, as the bot's wake sweep judges the user when it closes (bot/sweeps/wake.py);
- the first `trial_converted` ends the user's replay: the day it lands on is judged just before it (what was
  raised that day was raised before they paid), and nothing is raised after it;
- a trigger counts as fired once per user, on the day it first shows in a verdict (routed or nurture-only, and
  whatever the do-not-touch states: it fired); two rows stand for the points model and the explicit ask, so every
  lead is in the table: `points` (seed 002's points reached the threshold) and `explicit_ask` (the fast lane);
- a lead is raised on the first day a verdict is `qualified`; it counts against capacity on the business day it
  reaches the reps (bot/domain/guardrails.py: a weekend's leads swell Monday's), and seed 002's volume guardrail
  (more than 10 per SDR per business day for 3+ business days running) is that module's rule, not a copy.

Conversion is seed 001's: a `trial_converted` within 60 days of the trigger firing, contacted or not. Contacted is
a rep's touch (the store's touches, or `sales_touch` / `sales_reply` events in a file) from the firing up to the
conversion, or to 60 days when there was none. Dark-funnel rate: converted with no touch / fired (seed 000's "share
of triggered accounts that convert with no rep contact"); assisted lift: `bot/calibration/stats.py`'s `lift`.

Account triggers (scoring/accounts.py) are judged over each account's members as the store judges them: each
member's tallies up to their own conversion, merged; a trigger fires at the first moment its conditions hold
(scoring/triggers.py `evaluate`), so one look over the whole history, cut just before any member paid (a customer's
later firing is expansion, not this table's), finds when it first fired. It is counted once per account: converted
when any member paid within 60 days of it, contacted when a rep touched any member. The account's lead is raised
on the day it qualifies, as the store raises it: unless a member's lead was raised by then (that lead becomes the
account's), and its members' leads raised later are not raised (they join its contact map). Members' exclusions
are read from their verdicts at the end of their replays.
Group traits (an account's size from a group call) are the history's latest, not the day's.

What the replay reports is what judging each of those days would report; it is made fast by not asking for verdicts
that cannot add to it (`_Prospects`: what a user's whole history says they can show, and when), and by sharing the
users among worker processes (`_replay_users`). `replay(..., every_day=True)` judges every day, the reference
tests/calibration/test_fast_replay.py holds the fast replay to.

`replay` is three steps, so that a big file's users can be replayed where they are parsed (bot/cli/split.py: each
process of `pqlbot backtest FILE` parses, replays and hands back its own users; handing parsed events between
processes costs as much as parsing them): the users' histories (`Histories`) and the accounts' group traits
(`account_traits`); each user's replay, kept when it has anything to show (`replayed`, its `Replays`: those of
several processes add up to one); and the report on them (`report`), the same whoever replayed them. The accounts
are judged from their members' replays (`judge_accounts`): by the report, or, on several processes, each in the
process its members are sent to, the report then applying what they found (`Replays.accounts`).
"""

from __future__ import annotations

import multiprocessing
import os
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple

from bot.calibration.stats import (
    CONVERSION_DAYS,
    MIN_SAMPLE,
    Recommendation,
    lift,
    rate,
    recommend,
    wilson,
)
from bot.domain.guardrails import VOLUME_PER_REP, VOLUME_STREAK, busy_runs, per_business_day
from scoring import Event, Rules, ScoreResult, Status, Tier
from scoring import events as ev
from scoring.accounts import Slots, account_part, account_status, fired_triggers, has_account_triggers, stopping_codes
from scoring.engine import ACTIVATION, ASK_OVERRIDES, FIT, group_traits, judge, plan_of, wake
from scoring.identity import is_anonymous, resolve
from scoring.tally import Tally
from scoring.triggers import Level, micros, moment_of

#: Events in a file that say a rep reached the user (the store's touches say it there).
TOUCH_EVENTS = frozenset({"sales_touch", "sales_reply"})
#: The rows of the table that are not triggers of the rules file.
POINTS, EXPLICIT_ASK = "points", "explicit_ask"
_WITHIN = timedelta(days=CONVERSION_DAYS)
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_AT = attrgetter("at")


@dataclass(frozen=True, slots=True)
class Raised:
    """A lead the rules raise: whose, on which local day, and what fired by then."""

    user_id: str
    day: date
    why: tuple[str, ...]


@dataclass(slots=True)
class TriggerFigures:
    """One row of the keep-or-retire table."""

    name: str
    family: str
    fired: int = 0
    converted: int = 0
    contacted: int = 0
    contacted_converted: int = 0
    minimum: int = MIN_SAMPLE
    level: str = "user"  # "account": fired over the users of one account (counted once per account)
    #: Of `fired`, those whose 60 days were not over when the history ends, and of those, the ones converted already.
    young: int = 0
    young_converted: int = 0

    @property
    def open(self) -> int:
        """Firings whose outcome is not known yet: inside their 60 days at the history's end, not converted."""
        return self.young - self.young_converted

    @property
    def alone(self) -> int:
        return self.fired - self.contacted

    @property
    def alone_converted(self) -> int:
        return self.converted - self.contacted_converted

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.fired)

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.converted, self.fired)

    @property
    def dark_funnel_rate(self) -> float | None:
        return rate(self.alone_converted, self.fired)

    @property
    def assisted_lift(self) -> float | None:
        return lift(self.contacted, self.contacted_converted, self.alone, self.alone_converted)

    @property
    def recommendation(self) -> Recommendation:
        return recommend(self.fired, self.converted, self.minimum, settled=self.fired - self.young,
                         settled_converted=self.converted - self.young_converted)

    def count(self, fired_at: datetime, converted_at: datetime | None, contacted: bool,
              horizon: datetime | None) -> None:
        """One firing at `fired_at`: converted (within 60 days) at `converted_at` or not, contacted or not; its 60
        days over by `horizon` (when history, or the pilot, stops), or not (None: over)."""
        converts = converted_at is not None and fired_at <= converted_at <= fired_at + _WITHIN
        young = horizon is not None and fired_at + _WITHIN > horizon
        self.fired += 1
        self.converted += converts
        self.contacted += contacted
        self.contacted_converted += converts and contacted
        self.young += young
        self.young_converted += young and converts

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval or (None, None)
        return {
            "name": self.name, "family": self.family, "fired": self.fired, "converted": self.converted,
            "conversion_rate": self.conversion_rate, "ci_low": low, "ci_high": high,
            "contacted": self.contacted, "contacted_converted": self.contacted_converted,
            "dark_funnel_rate": self.dark_funnel_rate, "assisted_lift": self.assisted_lift,
            "recommendation": self.recommendation.value, "level": self.level, "open": self.open,
        }


@dataclass(frozen=True, slots=True)
class Day:
    """A business day: the leads that reach the reps on it, against what they can take."""

    date: date
    raised: int
    capacity: int | None

    @property
    def over(self) -> bool:
        return self.capacity is not None and self.raised > self.capacity

    def to_json(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "raised": self.raised, "capacity": self.capacity}


@dataclass(slots=True)
class Backtest:
    triggers: list[TriggerFigures]
    days: list[Day]
    raised: dict[str, Raised]
    reps: int | None
    cap: int
    busy: list[list[date]] = field(default_factory=list)
    has_touches: bool = False

    @property
    def days_over_capacity(self) -> list[date]:
        return [day.date for day in self.days if day.over]

    def guardrails(self) -> dict[str, Any]:
        return {
            "reps": self.reps,
            "cap": self.cap,
            "days_over_capacity": len(self.days_over_capacity),
            "volume": {
                "per_rep_per_day": VOLUME_PER_REP,
                "days_running": VOLUME_STREAK,
                "breached": bool(self.busy),
                "runs": [[day.isoformat() for day in run] for run in self.busy],
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "triggers": [row.to_json() for row in self.triggers],
            "days": [day.to_json() for day in self.days],
            "guardrails": self.guardrails(),
            "raised": len(self.raised),
        }


@dataclass(frozen=True, slots=True)
class Window:
    """The replay's days (local dates, both included; None: from the first event, or to the last)."""

    start: date | None = None
    end: date | None = None

    def holds(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@lru_cache(maxsize=65536)
def _day_end(day: date, tz: tzinfo) -> datetime:
    """The last instant of the local `day`, in UTC (a DST day lasts 23 or 25 hours)."""
    return datetime.combine(day + _DAY, time(), tz).astimezone(UTC) - _ONE_US


def _judged_at(day: date, tz: tzinfo, converted_at: datetime | None) -> datetime:
    """When a day is judged: at its end, or just before the user paid on it (nothing is judged after)."""
    at = _day_end(day, tz)
    return converted_at - _ONE_US if converted_at is not None and at >= converted_at else at


@lru_cache(maxsize=65536)
def _quarter_day(quarter: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(quarter * 900, UTC).astimezone(tz).date()


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The local date of an instant (every zone's offset is whole quarter hours: cached by the quarter hour)."""
    return _quarter_day(int(moment.timestamp() // 900), tz)


def replay(
    events: Iterable[Event],
    rules: Rules,
    *,
    tz: tzinfo,
    is_business_day: Callable[[date], bool],
    window: Window = Window(),
    reps: int | None = None,
    cap: int = 5,
    touches: Mapping[str, Sequence[datetime]] | None = None,
    minimum: int = MIN_SAMPLE,
    every_day: bool = False,
    workers: int | None = None,
) -> Backtest:
    """Replay `events` through `rules` (see the module docstring). `touches`: a rep's touches by user id, beside
    the history's own touch events; `reps` x `cap`: the team's capacity per business day (None: not known).
    `every_day`: judge every day the replay visits, the slow reference the fast replay is tested against.
    `workers`: processes sharing the users (None: one per CPU for a population big enough to be worth it)."""
    resolved = resolve(list(events))
    histories = Histories.of(enumerate(resolved))
    for user_id, moments in (touches or {}).items():
        histories.touched[user_id].extend(moments)
    replays = replayed(histories, rules, tz=tz, groups=account_traits(resolved), window=window, every_day=every_day,
                       workers=workers)
    return report(replays, rules, is_business_day=is_business_day, window=window, reps=reps, cap=cap,
                  minimum=minimum)


def account_traits(calls: Iterable[Event]) -> dict[str, Any]:
    """The accounts' group traits by group id, from every group call, in the order they came (whoever sent them,
    an anonymous visitor too): the history's latest, with no cut-off, as the module docstring says."""
    return group_traits(calls, _NEVER)


@dataclass(slots=True)
class Histories:
    """What the replay reads of each user, from calls already under the user they belong to (`resolve`), in the
    order they came: the user's events in time order (a rep's touches apart), where their history starts (the place
    of its first call: users are reported in that order), their first conversion, and their touches. An anonymous
    visitor's calls are dropped: nobody replays them."""

    events: dict[str, list[Event]]
    starts: dict[str, int]
    converted: dict[str, datetime]
    touched: defaultdict[str, list[datetime]]

    @classmethod
    def of(cls, calls: Iterable[tuple[int, Event]]) -> Histories:
        """From (place, call) pairs: a call's line in the file, or its place among the calls."""
        by_user: dict[str, list[Event]] = {}
        starts: dict[str, int] = {}
        converted: dict[str, datetime] = {}
        touched: defaultdict[str, list[datetime]] = defaultdict(list)
        for place, event in calls:
            user_id = event.user_id
            if user_id is None or is_anonymous(user_id):
                continue
            if event.name in TOUCH_EVENTS:
                touched[user_id].append(event.at)
                continue
            if event.name == ev.CONVERTED and (user_id not in converted or event.at < converted[user_id]):
                converted[user_id] = event.at
            if (history := by_user.get(user_id)) is None:
                by_user[user_id] = history = []
                starts[user_id] = place
            history.append(event)
        for history in by_user.values():
            history.sort(key=_AT)
        return cls(by_user, starts, converted, touched)


class Replayed(NamedTuple):
    """One user's replay, as the report reads it: where their history starts (`Histories.starts`), the lead raised
    (if any), each trigger's first firing, their first conversion, their touches in time order, and what their
    account's triggers read of them (`AccountMember`, when the rules have account triggers and they belong to one)."""

    start: int
    user_id: str
    lead: Raised | None
    fired: dict[str, datetime]
    converted_at: datetime | None
    touches: list[datetime]
    member: AccountMember | None = None


#: A user as their account's triggers read them: the account's key, the codes of their reasons that may stop an
#: account (scoring/accounts.py `stopping_codes`, as of the end of their replay) and the part of their tallies an
#: account reads (`Slots`; None when it holds nothing): all a backtest needs, and little to pass between processes.
#: Every user of an account has one: a member with nothing for its triggers still converts it, or stops it.
AccountMember = tuple[str, tuple[str, ...], "Slots | None"]


@dataclass(slots=True)
class Replays:
    """What a report is made of: the replays of the users with anything to show (a lead, a trigger that fired), in
    the order users first appear; the first and last local day of anyone's history (the report's days, where the
    window sets no bound); and whether anyone was touched. The replays of several processes, each of its own users,
    add up to those of one (`merged`)."""

    users: list[Replayed]
    first: date | None
    last: date | None
    touched: bool
    tz: tzinfo = UTC  # the team's: the days the account leads are raised on
    #: The accounts' outcomes, once judged where the members were (`judge_accounts`, bot/cli/split.py); None: the
    #: report judges them from the users' `member`s.
    accounts: list[AccountOutcome] | None = None

    @classmethod
    def merged(cls, parts: Sequence[Replays]) -> Replays:
        """Several processes' replays, each of its own users, as one process's: the users in the order they first
        appear, the span from the earliest day to the latest."""
        return cls(sorted((user for part in parts for user in part.users), key=_start),
                   min((part.first for part in parts if part.first is not None), default=None),
                   max((part.last for part in parts if part.last is not None), default=None),
                   any(part.touched for part in parts), parts[0].tz if parts else UTC,
                   None if any(part.accounts is None for part in parts)
                   else sorted((account for part in parts for account in part.accounts or ()), key=_start))


def _start(user: Replayed | AccountOutcome) -> int:
    return user.start


def replayed(histories: Histories, rules: Rules, *, tz: tzinfo, groups: Mapping[str, Any], window: Window,
             every_day: bool = False, workers: int | None = None) -> Replays:
    """Each user's replay through `rules` (`_replay_users`, `workers` processes), kept for those with anything to
    show, and the span of the histories. `groups`: the accounts' group traits (`account_traits`), which may have
    been read from more calls than these users'."""
    users = list(histories.events.items())
    outcomes = _replay_users(users, (rules, tz, groups, histories.converted, window, every_day), workers)
    shown = []
    first = last = None
    for (user_id, history), (lead, fired, member) in zip(users, outcomes, strict=True):
        begins, ends = local_day(history[0].at, tz), local_day(history[-1].at, tz)
        first = begins if first is None or begins < first else first
        last = ends if last is None or ends > last else last
        if lead is not None or fired or member is not None:
            shown.append(Replayed(histories.starts[user_id], user_id, lead, fired, histories.converted.get(user_id),
                                  sorted(histories.touched.get(user_id, ())), member))
    return Replays(shown, first, last, any(histories.touched.values()), tz)


def report(replays: Replays, rules: Rules, *, is_business_day: Callable[[date], bool], window: Window = Window(),
           reps: int | None = None, cap: int = 5, minimum: int = MIN_SAMPLE) -> Backtest:
    """The report on `replays` through `rules`: per trigger, fired, converted and contacted (`_count`); the leads
    raised, per business day of the window (the histories' span where it sets no bound) against the capacity,
    `reps` x `cap`; and seed 002's runs of busy days."""
    rows = _rows(rules, minimum)
    raised: dict[str, Raised] = {}
    # Conversions are read off the whole history: a firing's 60 days are over once it ends 60 days after it.
    ends = _day_end(replays.last, replays.tz) if replays.last is not None else None
    for user in replays.users:
        if user.lead is not None:
            raised[user.user_id] = user.lead
        if user.fired:
            _count(rows, user.fired, user.converted_at, user.touches, ends)
    if has_account_triggers(rules):
        accounts = replays.accounts
        if accounts is None:
            accounts = judge_accounts(replays.users, rules, window, replays.tz)
        for account in accounts:  # keyed by the account's key in `raised`
            _count(rows, account.fired, account.paid, account.touches, ends)
            for user_id in account.absorbed:
                del raised[user_id]
            if account.lead is not None:
                raised[account.key] = account.lead
    start, end = window.start or replays.first, window.end or replays.last
    daily: dict[date, int] = defaultdict(int)
    for lead in raised.values():
        daily[lead.day] += 1
    counted = per_business_day(daily, is_business_day)
    capacity = reps * cap if reps is not None else None
    days = []
    if start is not None and end is not None:
        day = start
        while day <= end:
            if is_business_day(day):
                days.append(Day(day, counted.get(day, 0), capacity))
            day += _DAY
        # Leads of the window's last days off count on the business day after it: shown, not lost.
        days.extend(Day(d, n, capacity) for d, n in sorted(counted.items()) if d > end)
    busy = busy_runs(daily, reps, is_business_day) if reps else []
    return Backtest(list(rows.values()), days, raised, reps, cap, busy, has_touches=replays.touched)


class AccountOutcome(NamedTuple):
    """What an account adds to the report (`judge_accounts`): its triggers' first firings (inside the window, before
    any member paid), counted once for it, with its first conversion and its members' touches; its own lead, when it
    raises one; and the members whose leads it takes in (in its contact map: not raised). `start`: its first member's
    (`Histories.starts`), so the accounts of several processes are applied in the order one process would."""

    start: int
    key: str
    fired: dict[str, datetime]
    paid: datetime | None
    touches: list[datetime]
    lead: Raised | None
    absorbed: tuple[str, ...]


def judge_accounts(users: Iterable[Replayed], rules: Rules, window: Window, tz: tzinfo) -> list[AccountOutcome]:
    """The account triggers, judged over each account's members (see `AccountMember`; `users`: all the replays of
    the members of the accounts judged, in any order): counted once per account, first fired before any member paid;
    and the account leads, as the store makes them (bot/services/account_leads.py): a qualified account raises a lead
    on the day it qualifies unless one of its members' leads was raised by then (that lead becomes the account's: no
    new lead), and its members' leads raised later are not raised at all (they join its contact map). In the order
    accounts first appear."""
    accounts: dict[str, list[Replayed]] = {}
    for user in sorted(users, key=_start):
        if user.member is not None:
            accounts.setdefault(user.member[0], []).append(user)
    outcomes = []
    for key, members in accounts.items():
        paid = min((user.converted_at for user in members if user.converted_at is not None), default=None)
        readers = [(None, user.member[2]) for user in members if user.member[2] is not None]  # their tallies alone
        if not readers:
            continue
        limit = _NEVER if paid is None else paid - _ONE_US  # a customer already: what fires after is expansion
        fired = [f for f in fired_triggers(readers, rules, limit, tz) if window.holds(local_day(f.at, tz))]
        if not fired:
            continue
        touches = sorted(moment for user in members for moment in user.touches)
        lead, absorbed = None, ()
        status, qualified_at = account_status([user.member[1] for user in members], fired)
        if status is Status.QUALIFIED and qualified_at is not None:
            day = local_day(qualified_at, tz)
            theirs = [user.lead for user in members if user.lead is not None]
            # Qualified after the account's lead opened: in its contact map, no lead.
            absorbed = tuple(mine.user_id for mine in theirs if mine.day > day)
            if not any(mine.day <= day for mine in theirs):
                lead = Raised(key, day, tuple(sorted(f.name for f in fired if f.trigger.routed)))
        outcomes.append(AccountOutcome(members[0].start, key, {f.name: f.at for f in fired}, paid, touches, lead,
                                       absorbed))
    return outcomes


#: A user's replay: the lead raised (if any), each trigger's first firing, what their account reads of them.
Outcome = tuple["Raised | None", dict[str, datetime], "AccountMember | None"]
#: Users below which one process replays them all: a worker process costs more than it saves.
PARALLEL_FROM = 2000
_NOTHING: Outcome = (None, {}, None)
_JOB: tuple = ()  # the users and what their replay reads, left for forked workers to read (not pickled)


def _replay_users(users: list[tuple[str, list[Event]]], job: tuple, workers: int | None) -> list[Outcome]:
    """Each user's replay, in the order of `users`: in this process, or shared among forked worker processes (one
    per CPU), users in consecutive slices, each worker's outcomes put back in place, so the report is the same."""
    global _JOB
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = workers if len(users) >= PARALLEL_FROM else 1
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_replay_one(user_id, history, *job) for user_id, history in users]
    _JOB = (users, job)
    try:
        slices = workers * 8  # small enough slices that a worker with cheap users takes more of them
        bounds = [len(users) * n // slices for n in range(slices + 1)]
        outcomes: list = [_NOTHING] * len(users)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for found in pool.map(_replay_slice, bounds[:-1], bounds[1:]):
                for index, outcome in found:
                    outcomes[index] = outcome
        return outcomes
    finally:
        _JOB = ()


def _replay_slice(start: int, stop: int) -> list[tuple[int, Outcome]]:
    """A worker's share: the users `start` to `stop` of the job it was forked with, those with anything to show."""
    users, job = _JOB
    found = []
    for index in range(start, stop):
        outcome = _replay_one(*users[index], *job)
        if outcome[0] is not None or outcome[1] or outcome[2] is not None:
            found.append((index, outcome))
    return found


def _replay_one(user_id: str, history: list[Event], rules: Rules, tz: tzinfo, groups: Mapping[str, Any],
                converted: Mapping[str, datetime], window: Window, every_day: bool) -> Outcome:
    return _replay_user(user_id, history, rules, tz, groups, converted.get(user_id), window, every_day=every_day)


def _rows(rules: Rules, minimum: int) -> dict[str, TriggerFigures]:
    rows = {POINTS: TriggerFigures(POINTS, "buying", minimum=minimum),
            EXPLICIT_ASK: TriggerFigures(EXPLICIT_ASK, "buying", minimum=minimum)}
    for name, trigger in rules.triggers_of(Level.USER).items():
        rows[name] = TriggerFigures(name, str(trigger.family), minimum=minimum)
    for name, trigger in rules.triggers_of(Level.ACCOUNT).items():
        rows[name] = TriggerFigures(name, str(trigger.family), minimum=minimum, level="account")
    return rows


#: A moment after any replay's last: what fires in the end fires by then.
_FOREVER_US = 1 << 62
_NEVER = datetime.max.replace(tzinfo=UTC)
#: The exclusions read from the user's profile alone (scoring/engine.py `_exclusions`): while the profile stays the
#: same, each holds on every day or on none.
LASTING = frozenset({"company_size_out_of_range", "company_size_unknown", "email_unknown", "personal_email_domain",
                     "test_account", "competitor_domain", "internal_domain"})
_PROFILE_CALLS = frozenset({ev.IDENTIFY, ev.GROUP})


@dataclass(frozen=True, slots=True)
class _Prospects:
    """The most a user's verdicts can show over their replay, read once from their whole replayed history (one
    trial): when each user trigger first fires, when the explicit ask comes, when the points reach the threshold.
    A day's verdict is worth asking for only when it could add to what the replay noted (`worth`).

    Why a day's verdict needs no more than this (tests/calibration/test_fast_replay.py checks it against judging
    every day):
    - a trigger fires at the first moment its conditions hold on the events up to then (scoring/triggers.py), and
      every event up to a judged moment is in that day's tallies: so it shows by a day's end only once its first
      firing read from the whole history has passed (later, still, when an exclusion stops it that day);
    - a verdict is `qualified` only with an explicit ask, the points at the threshold, or a routed trigger that
      fired. The first ask, the activation and the moment each signal was met are the same read from any later day
      of the same trial: so the points are at the threshold on a day only once the whole history's verdict's
      signals met by then add up to it (none count before the activation);
    - an exclusion read from the profile alone (`LASTING`) holds on every day while the profile stays the same;
      what it stops (scoring/engine.py: every trigger, or those that keep the ICP gate, and the points; the ask
      unless it waives it) shows on no day;
    - a trial that starts over (a second signup) can take back what the first trial had: no bound, every day judged.
    """

    firsts: dict[str, datetime]  # user trigger -> the first moment it fires
    routed: frozenset[str]  # those of them that go to a person (tier 1 or 2): they qualify the user
    ask_at: datetime | None  # the first explicit ask
    points_at: datetime | None  # when the points first reach the threshold

    @classmethod
    def of(cls, replayed: Sequence[Event], tally: Tally, final: ScoreResult, rules: Rules, tz: tzinfo
           ) -> _Prospects | None:
        """From the user's replayed history (one trial: else None), its tallies and its verdict at its end."""
        if sum(event.name == ev.SIGNUP for event in replayed) != 1:
            return None
        plan = plan_of(rules)
        ask_at = tally.ask[0][0] if tally.ask is not None else None  # the first ask since the signup
        points_at = _points_reached(final, rules.tiers.qualify)
        # The user triggers with an occurrence for every condition (no other can fire), in the rules' order.
        candidates = {name: trigger for name, trigger, _, _ in plan.candidates(tally.slots)}
        signup_day = local_day(tally.signup.at, tz)
        if all(local_day(event.at, tz) <= signup_day for event in replayed if event.name in _PROFILE_CALLS):
            # The profile is the same on every day with a trial to judge: what it excludes, it excludes on each.
            lasting = {reason.code for reason in final.reasons if reason.code in LASTING}
            if ask_at is not None and lasting <= ASK_OVERRIDES:
                lasting = set()  # an explicit ask waives them on the days it is there
            if lasting - FIT:  # stops every trigger, and the points
                candidates, points_at = {}, None
            elif lasting:  # the ICP gate: stops the triggers that keep it, and the points unless a trigger qualifies
                candidates = {name: t for name, t in candidates.items() if not t.icp_gate}
            if lasting - ASK_OVERRIDES:
                ask_at = None
        else:
            lasting = set()
        since, catalogue, slots = micros(tally.signup.at), plan.catalogue, tally.slots
        firsts = {}
        for name in candidates:
            if (found := catalogue.fired(name, slots, _FOREVER_US, tz, since_us=since)) is not None:
                firsts[name] = found.at
        routed = frozenset(name for name in firsts if candidates[name].routed)
        if lasting and not routed:
            points_at = None
        return cls(firsts, routed, ask_at, points_at)

    @property
    def nothing(self) -> bool:
        """No verdict of the replay can raise a lead or show a row of the table."""
        return not (self.firsts or self.ask_at or self.points_at)

    def worth(self, at: datetime, lead: Raised | None, fired: Mapping[str, datetime]) -> bool:
        """Whether a verdict as of `at` could add to `lead` and `fired`: a trigger's first showing, the lead, the
        explicit ask's or the points' row."""
        ready = [name for name, first in self.firsts.items() if first <= at]
        if any(name not in fired for name in ready):
            return True
        ask = self.ask_at is not None and self.ask_at <= at
        points = self.points_at is not None and self.points_at <= at
        if lead is None and (ask or points or any(name in self.routed for name in ready)):
            return True
        return (ask and EXPLICIT_ASK not in fired) or (points and POINTS not in fired)

    def shown(self, lead: Raised | None, fired: Mapping[str, datetime]) -> bool:
        """Everything the replay can show has shown: the days after add nothing."""
        return (lead is not None and all(name in fired for name in self.firsts)
                and (self.ask_at is None or EXPLICIT_ASK in fired) and (self.points_at is None or POINTS in fired))


def _points_reached(verdict: ScoreResult, threshold: int) -> datetime | None:
    """When the verdict's points first reached `threshold`: once its signals met by then add up to it, and not
    before the activation (no points count without it). None: they never do."""
    activated = next((signal.at for signal in verdict.signals if signal.name == ACTIVATION), None)
    if activated is None:
        return None
    total = 0
    for signal in verdict.signals:  # in the order they happened
        total += signal.points
        if total >= threshold:
            return max(activated, signal.at)
    return None


def _replay_user(user_id: str, history: list[Event], rules: Rules, tz: tzinfo, groups: Mapping[str, Any],
                 converted_at: datetime | None, window: Window, *, every_day: bool = False
                 ) -> Outcome:
    """One user's replay: the lead raised (if any) and each trigger's first firing inside the window.

    The days are walked as the module docstring says; a day is judged only when its verdict could add something
    (`_Prospects.worth`), and the walk stops once everything the user can show has shown. `every_day`: judge
    every day the walk visits (the reference the fast path is tested against, tests/calibration)."""
    plan = plan_of(rules)
    count = len(history)
    if converted_at is not None:
        count = next((i for i, event in enumerate(history) if event.at >= converted_at), count)
    hope = member = whole = final = None
    accounts = bool(plan.account_triggers)
    if count and (accounts or not every_day):
        # The whole replayed history's tallies and verdict: what the fast replay may hope for, and what the
        # user's account reads of them.
        # Judged at the end of the history's last day, as the walk judges that day: its verdict serves there too.
        whole = Tally.build(history[:count], plan, tz, user_id, in_order=True)
        last = _judged_at(local_day(history[count - 1].at, tz), tz, converted_at)
        final = judge(whole, rules, last, group=groups.get(whole.group[1]) if whole.group is not None else None)
        if not every_day:
            hope = _Prospects.of(history[:count], whole, final, rules, tz)
        if accounts and (key := final.account.key) is not None:
            slots = account_part(whole, rules)
            member = (key, stopping_codes(final), slots if any(slots.slots) else None)
    if hope is not None and hope.nothing:
        return None, {}, member
    lead: Raised | None = None
    fired: dict[str, datetime] = {}
    tally: Tally | None = None
    taken = upto = 0  # events walked; events in the tallies (built when a day is judged, or a wait looked for)
    due: datetime | None = None  # a wait that ends with no event: judged at the end of its day
    while taken < count or due is not None:
        next_day = local_day(history[taken].at, tz) if taken < count else None
        if due is not None and (next_day is None or local_day(due, tz) < next_day):
            day, batch = local_day(due, tz), False  # no event that day: the wait's end is judged that evening
        else:
            # The day's events: those up to its last instant (the history is in time order).
            batch, day, taken = True, next_day, bisect_right(history, _day_end(next_day, tz), taken, count, key=_AT)
        at = _judged_at(day, tz, converted_at)
        if window.end is not None and day > window.end or (not batch and at < due):
            break
        due = verdict = None
        if window.holds(day) and (hope is None or hope.worth(at, lead, fired)):
            tally, upto = _tallies(tally, upto, history, taken, plan, tz, user_id, whole, count)
            if tally is whole and at == last:
                verdict = final  # the last day, judged already
            else:
                group = groups.get(tally.group[1]) if tally.group is not None else None
                verdict = judge(tally, rules, at, group=group)
            lead = _note(verdict, rules, user_id, day, lead, fired)
            if hope is not None and hope.shown(lead, fired):
                break  # all it can show has shown: the days after add nothing
        held_off = verdict is not None and verdict.status is Status.DO_NOT_TOUCH  # a lead a window may let go
        if ((plan.waits or held_off) and (converted_at is None or at < converted_at - _ONE_US)
                and (taken >= count or local_day(history[taken].at, tz) > day + _DAY)
                and (hope is None or hope.worth(_NEVER, lead, fired))):
            if held_off or hope is None:  # the day's own tallies (a window's state is the day's)
                tally, upto = _tallies(tally, upto, history, taken, plan, tz, user_id, whole, count)
                waits = tally
            else:  # one trial: the whole history's waits read as of `at` are the day's (`_wait_ends`)
                waits = whole
            if waits.signup is not None and waits.signup.at <= at:  # only a day without events needs these
                ends = (_wait_ends(waits, plan, at) if plan.waits else None,
                        wake(tally, rules, at, verdict) if held_off else None)  # e.g. a checkout's grace ending
                due = min((end for end in ends if end is not None), default=None)
    return lead, fired, member


def _tallies(tally: Tally | None, upto: int, history: list[Event], taken: int, plan: Any, tz: tzinfo,
             user_id: str, whole: Tally | None, count: int) -> tuple[Tally, int]:
    """The tallies of `history[:taken]`, from those of `history[:upto]` (None: none yet); `whole`: those of
    `history[:count]`, when built already (the replay's last day with events then needs no tallies of its own: most
    users with anything to show are judged on it alone; nothing is added to them after, as nothing comes)."""
    if tally is None and taken == count and whole is not None:
        return whole, count
    if tally is None or (taken > upto and not tally.add(history[upto:taken])):
        tally = Tally.build(history[:taken], plan, tz, user_id, in_order=True)
    return tally, taken


def _wait_ends(tally: Tally, plan: Any, at: datetime) -> datetime | None:
    """The first "not completed within N days" wait still running at `at` (the engine's `until` reads the same).
    `tally` may hold events after `at` (a one-trial user's whole history): a wait they start ends after the next
    day with events, which the walk judges first, and reads again then."""
    due = plan.catalogue.due(plan.waits, tally.slots, micros(at))
    return moment_of(due) if due is not None else None


def _note(result: ScoreResult, rules: Rules, user_id: str, day: date, lead: Raised | None,
          fired: dict[str, datetime]) -> Raised | None:
    """Take in a day's verdict: the triggers that show for the first time, and the lead if this is its day."""
    for met in result.triggers:
        if met.name not in fired:
            fired[met.name] = met.at
    if result.status is Status.QUALIFIED:
        if result.tier is Tier.FAST_LANE:
            fired.setdefault(EXPLICIT_ASK, result.qualified_at or _day_end(day, UTC))
        elif result.score >= rules.tiers.qualify:
            fired.setdefault(POINTS, result.qualified_at or _day_end(day, UTC))
        if lead is None:
            lead = Raised(user_id, day, tuple(sorted(fired)))
    return lead


def _count(rows: Mapping[str, TriggerFigures], fired: Mapping[str, datetime], converted_at: datetime | None,
           touches: Sequence[datetime], ends: datetime | None) -> None:
    """Each trigger's firing into its row; `ends`: the history's last instant."""
    for name, at in fired.items():
        row = rows.get(name)
        if row is None:  # not a user trigger of these rules (an account trigger's name)
            continue
        until = converted_at if converted_at is not None and converted_at >= at else at + _WITHIN
        row.count(at, converted_at, any(at <= moment <= until for moment in touches), ends)


@dataclass(frozen=True, slots=True)
class Difference:
    """A lead one rules file raises and the other does not."""

    user_id: str
    day: date
    why: tuple[str, ...]
    raised_by: str  # "rules" | "against"

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "date": self.day.isoformat(), "why": list(self.why),
                "raised_by": self.raised_by}


def differences(rules: Backtest, against: Backtest) -> list[Difference]:
    """The leads raised by one side only, by day then user."""
    only = [Difference(u, lead.day, lead.why, "rules") for u, lead in rules.raised.items()
            if u not in against.raised]
    only += [Difference(u, lead.day, lead.why, "against") for u, lead in against.raised.items()
             if u not in rules.raised]
    return sorted(only, key=lambda d: (d.day, d.user_id))
