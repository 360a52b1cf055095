"""The PQL scorer: one user's events, the rules and a moment `at` in; a `ScoreResult` out.

Pure: no clock, no I/O. Everything is judged as of `at`, so the same inputs always give the same answer.

The order of judgement:
- no signup yet: excluded (kept, and scored once the signup arrives);
- any exclusion (fit, personal or test email, competitor, converted, earlier disposition, trial
  ending): excluded, with every reason;
- an explicit ask from an ICP-fit user: fast lane, whatever the points;
- activation gate, then points from signals met inside the window: medium or high at the threshold;
- exactly at the threshold with every signal on one day: held for a while, then monitor;
- a lead that would be routed but is in a do-not-touch state: do_not_touch, with the reason.
"""

from __future__ import annotations

import fnmatch
import gc
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from operator import attrgetter
from typing import Any

from scoring import events as ev
from scoring.result import (
    Account,
    PriorDisposition,
    Profile,
    Reason,
    ReasonKind,
    ScoreResult,
    SignalMet,
    Status,
    Tier,
)
from scoring.rules import DoNotTouch, Rules, Signal
from templates import sentences, table

EXPLICIT_ASK = "explicit_ask"
ACTIVATION = "activation"
#: The words of the signals the scorer adds itself, and of lists of values (templates/scoring/signals.j2); cached,
#: as every activated user's verdict says "activated".
_words = cache(sentences("scoring/signals.j2"))


class _Tally:
    """Counts one signal's matching events and notes when it was first met."""

    __slots__ = ("key", "rule", "values", "shown", "count", "days", "met_at", "met_on")

    def __init__(self, key: str, rule: Signal) -> None:
        self.key = key
        self.rule = rule
        self.values: set = set()
        self.shown: list[str] = []
        self.count = 0
        self.days: set[date] = set()
        self.met_at: datetime | None = None
        self.met_on: date | None = None

    def add(self, event: ev.Event, day: date) -> None:
        rule = self.rule
        if rule.distinct is None:
            self.count += 1
        else:
            value = event.props.get(rule.distinct)
            key = value.strip().lower() if isinstance(value, str) else (value or event.message_id)
            if key not in self.values:
                self.values.add(key)
                if isinstance(value, str):
                    self.shown.append(value.strip())
            self.count = len(self.values)
        self.days.add(day)
        if self.met_at is None and self.count >= rule.min_count and len(self.days) >= rule.min_days:
            self.met_at, self.met_on = event.at, day


class _Plan:
    """What one rules object means for the hot loop, worked out once rather than per user or event."""

    def __init__(self, rules: Rules) -> None:
        self.signals = list(rules.signals.items())
        self.for_event: dict[str, list[int]] = defaultdict(list)
        self.star_distinct: list[int] = []
        self.any_event: list[int] = []
        self.billing: list[int] = []
        for index, (_, rule) in enumerate(self.signals):
            if rule.event == "*":
                # Counting every event is done in one go after the loop (see _Tally.add_all).
                (self.any_event if rule.distinct is None else self.star_distinct).append(index)
            elif rule.event == ev.BILLING_VIEW:
                self.billing.append(index)
            else:
                self.for_event[rule.event].append(index)
        self.is_billing = lru_cache(maxsize=4096)(rules.events.is_billing)  # few distinct paths, many views
        patterns = rules.exclusions.test_email_patterns
        self.test_email = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
        self.max_score = rules.max_score
        self.asks = frozenset(rules.fast_lane.events)
        # Events the loop must look at beyond the signals: asks and the do-not-touch states.
        self.special = self.asks | {ev.CHECKOUT_STARTED, ev.CHECKOUT_COMPLETED, ev.CONVERTED, ev.TICKET_OPENED,
                                    ev.TICKET_CLOSED, ev.OPT_OUT}
        self.wants_day_list = {key for key, rule in self.signals if "{day_list}" in rule.evidence}


_PLANS: dict[int, tuple[Rules, _Plan]] = {}


def _plan(rules: Rules) -> _Plan:
    cached = _PLANS.get(id(rules))
    if cached is None or cached[0] is not rules:
        if len(_PLANS) > 32:
            _PLANS.clear()
        cached = _PLANS[id(rules)] = (rules, _Plan(rules))
    return cached[1]


def _add_all(tally: _Tally, events: Sequence[ev.Event], new_days: Sequence[tuple[date, ev.Event]], local) -> None:
    """`tally.add` for every in-window event at once, for signals that count each event (no distinct)."""
    rule = tally.rule
    tally.count = len(events)
    tally.days = {day for day, _ in new_days}
    if tally.count >= rule.min_count and len(new_days) >= rule.min_days:
        by_count = events[max(rule.min_count, 1) - 1]  # the event that reached the count
        by_days = new_days[rule.min_days - 1][1]  # the first event of the day that reached the days
        first = by_count if by_count.at >= by_days.at else by_days
        tally.met_at, tally.met_on = first.at, local(first.at)


@cache
def _list_separators() -> tuple[str, str]:
    return table("scoring/signals.j2", "list_separator"), table("scoring/signals.j2", "list_last_separator")


def _human_list(items: Sequence[str]) -> str:
    """A list as words: "slack, jira and github"."""
    if len(items) <= 1:
        return "".join(items)
    separator, last = _list_separators()
    return f"{separator.join(items[:-1])}{last}{items[-1]}"


def _evidence(tally: _Tally, trial_day_of, with_day_list: bool) -> str:
    return tally.rule.evidence.format(
        count=tally.count,
        s="" if tally.count == 1 else "s",
        days=len(tally.days),
        values=_human_list(tally.shown) or str(tally.count),
        day_list=", ".join(str(trial_day_of(d)) for d in sorted(tally.days)) if with_day_list else "",
    )


_AT = attrgetter("at")
_MET_AT = attrgetter("met_at")
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=8192)
def _next_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant the local `day` ends (DST-aware: a day may last 23 or 25 hours).

    Cached: a whole population shares a few dozen days, and time zone arithmetic is the slow part.
    """
    return datetime.combine(day + _ONE_DAY, time(), tz).astimezone(UTC)


@lru_cache(maxsize=1024)
def _local_date(moment: datetime, tz: tzinfo) -> date:
    """For the few moments every user shares (the `at` of a sweep)."""
    return moment.astimezone(tz).date()


def _domain_matches(domain: str, listed: Iterable[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in listed)


class _Trial:
    """The trial as of `at`, read from its signup: who signed up (and whether they fit the ICP), when it started,
    its scoring window, its last day, and where `at` falls in it. Days are local dates in the team's time zone."""

    __slots__ = ("signup", "props", "start", "tz", "first_day", "last_day", "day", "days_left", "window_end",
                 "email", "domain", "company", "size", "icp_fit")

    def __init__(self, signup: ev.Event, rules: Rules, at: datetime, tz: tzinfo) -> None:
        self.signup, self.props, self.start, self.tz = signup, signup.props, signup.at, tz
        props = self.props
        self.first_day = self.local(self.start)
        trial_ends_at = props.get("trial_ends_at")
        if trial_ends_at:
            self.last_day = self.local(datetime.fromisoformat(trial_ends_at) - timedelta(microseconds=1))
        else:
            self.last_day = self.first_day + timedelta(days=rules.window.trial_length_days - 1)
        today = _local_date(at, tz)
        self.day = self.day_of(today)
        self.days_left = max(0, (self.last_day - today).days + 1)
        self.window_end = self.start + timedelta(days=rules.window.days)

        self.email = email = props.get("email")
        self.domain = email.rsplit("@", 1)[1] if email else None
        self.company = props.get("company_name")
        self.size = size = props.get("company_size")
        gates = rules.gates
        self.icp_fit = size is not None and gates.company_size_min <= size <= gates.company_size_max

    def local(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def day_of(self, day: date) -> int:
        """The trial day of a local date: 1 is the signup's."""
        return (day - self.first_day).days + 1


class _Walk:
    """What walking one trial's events found: a tally per signal (None until its first event), when the user
    activated, the first explicit ask, whether they viewed billing or pricing, and the do-not-touch states."""

    __slots__ = ("tallies", "activated_at", "ask", "saw_billing", "checkout_since", "upgraded_at", "converted_at",
                 "opted_out_at", "open_tickets")

    def __init__(self, signals: int) -> None:
        self.tallies: list[_Tally | None] = [None] * signals
        self.activated_at: datetime | None = None
        self.ask: ev.Event | None = None
        self.saw_billing = False
        self.checkout_since: datetime | None = None
        self.upgraded_at: datetime | None = None
        self.converted_at: datetime | None = None
        self.opted_out_at: datetime | None = None
        self.open_tickets: list[str | None] = []

    def note(self, event: ev.Event, asks: frozenset[str]) -> None:
        """An ask, or a change of state: checkout, upgrade, conversion, support tickets, opt-out."""
        name, moment = event.name, event.at
        if name in asks:
            self.ask = self.ask or event
        elif name == ev.CHECKOUT_STARTED:
            self.checkout_since = moment
        elif name == ev.CHECKOUT_COMPLETED:
            self.checkout_since, self.upgraded_at = None, moment
        elif name == ev.CONVERTED:
            self.checkout_since, self.upgraded_at = None, moment
            self.converted_at = self.converted_at or moment
        elif name == ev.TICKET_OPENED:
            self.open_tickets.append(event.props.get("ticket_id"))
        elif name == ev.TICKET_CLOSED and self.open_tickets:
            ticket = event.props.get("ticket_id")
            self.open_tickets.remove(ticket if ticket in self.open_tickets else self.open_tickets[0])
        elif name == ev.OPT_OUT:
            self.opted_out_at = moment


def score_user(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Sequence[PriorDisposition] = (),
) -> ScoreResult:
    """Score one user as of `at` (aware). `dispositions` are the ones the store holds for this user.

    The steps, in the order of judgement (see the module docstring): the events as of `at`, the trial read
    from its signup, the walk through the events, the exclusions, the activation gate and the do-not-touch
    reasons, the signals met, then status and tier.
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    plan = _plan(rules)
    at = at.astimezone(UTC)  # events are UTC; comparing like with like is much cheaper
    seen = _as_of(events, at)
    signup = _last_signup(seen)
    if signup is None:
        return _no_signup(seen[0].user_id if seen else "", rules)
    trial = _Trial(signup, rules, at, tz)
    walk = _walk(seen, trial, plan, rules.gates.activation_event)

    reasons = _exclusions(trial, walk, plan, rules, at, dispositions)
    excluded = bool(reasons)
    if walk.activated_at is None and not (walk.ask is not None and trial.icp_fit):
        # The activation gate; the fast lane needs no activation, so it is no reason there.
        reasons.append(Reason("not_activated", ReasonKind.GATE, {}))
    dont = _do_not_touch(walk, rules.do_not_touch, at)

    met, signals = _signals_met(walk, trial, plan)
    score = sum(t.rule.points for t in met) if walk.activated_at is not None else 0
    status, tier, qualified_at = _status_and_tier(excluded, walk, trial, met, score, rules, at)
    if status in (Status.QUALIFIED, Status.HELD) and dont:
        status = Status.DO_NOT_TOUCH
    reasons.extend(dont)
    strongest = EXPLICIT_ASK if tier is Tier.FAST_LANE else _strongest(met)
    return _result(trial, plan, score, status, tier, qualified_at, signals, reasons, strongest)


def _as_of(events: Iterable[ev.Event], at: datetime) -> list[ev.Event]:
    """The events in time order, up to and including `at`."""
    seen = sorted(events, key=_AT)  # stable: events at the same instant keep the order they came in
    cut = bisect_right(seen, at, key=_AT)
    if cut < len(seen):
        del seen[cut:]  # after `at`: not happened yet, as far as this verdict knows
    return seen


def _last_signup(seen: Sequence[ev.Event]) -> ev.Event | None:
    """The latest signup: a user who signs up again starts a new trial."""
    signup_name = ev.SIGNUP
    for event in reversed(seen):
        if event.name == signup_name:
            return event
    return None


def _walk(seen: Sequence[ev.Event], trial: _Trial, plan: _Plan, activation: str) -> _Walk:
    """One pass over the trial's events (in time order): signal tallies and activation from the events inside
    the window; billing views, asks and do-not-touch states from every event since the signup.

    The hot loop of a population's rescore: its state stays in local names, and the rare events that are asks
    or change a do-not-touch state go to `_Walk.note`.
    """
    walk = _Walk(len(plan.signals))
    tallies, signals_by_index = walk.tallies, plan.signals
    for_event, star_distinct, billing_tallies = plan.for_event, plan.star_distinct, plan.billing
    asks, special, is_billing = plan.asks, plan.special, plan.is_billing
    page_view = ev.PAGE_VIEW
    start, window_end, tz = trial.start, trial.window_end, trial.tz
    day = trial.first_day
    day_ends = _next_midnight(day, tz)
    new_days: list[tuple[date, ev.Event]] = []  # the first in-window event of each active day
    in_window: list[ev.Event] = []
    activated_at: datetime | None = None
    saw_billing = False

    for event in seen:
        moment = event.at
        if moment < start:
            continue  # before this trial: not ours to judge
        name = event.name
        billing = name == page_view and is_billing(event.props.get("page_path", ""))
        if billing:
            saw_billing = True
        if moment < window_end:
            if moment >= day_ends or not new_days:  # events are in order: the local date changes rarely
                while moment >= day_ends:
                    day += _ONE_DAY
                    day_ends = _next_midnight(day, tz)
                new_days.append((day, event))
            in_window.append(event)
            if name == activation and activated_at is None:
                activated_at = moment
            for index in (*for_event.get(name, ()), *star_distinct, *(billing_tallies if billing else ())):
                tally = tallies[index]
                if tally is None:
                    tally = tallies[index] = _Tally(*signals_by_index[index])
                tally.add(event, day)
        if name in special:
            walk.note(event, asks)
    for index in plan.any_event:
        tallies[index] = _Tally(*signals_by_index[index])
        _add_all(tallies[index], in_window, new_days, trial.local)
    walk.activated_at, walk.saw_billing = activated_at, saw_billing
    return walk


def _exclusions(
    trial: _Trial, walk: _Walk, plan: _Plan, rules: Rules, at: datetime, dispositions: Sequence[PriorDisposition]
) -> list[Reason]:
    """Every exclusion that applies: fit, personal or test email, competitor or internal domain, converted,
    an earlier disposition this trial, the trial ended or ending."""
    ex = rules.exclusions
    reasons: list[Reason] = []

    def exclude(code: str, **params: Any) -> None:
        reasons.append(Reason(code, ReasonKind.EXCLUSION, params))

    size, email, domain = trial.size, trial.email, trial.domain
    if not trial.icp_fit:
        size_range = {"size_min": rules.gates.company_size_min, "size_max": rules.gates.company_size_max}
        if size is None:
            exclude("company_size_unknown", **size_range)
        else:
            exclude("company_size_out_of_range", size=size, **size_range)
    if domain in ex.personal_email_domains and not trial.company:
        exclude("personal_email_domain", domain=domain)
    if email and plan.test_email and plan.test_email.match(email):
        exclude("test_account", email=email)
    if domain and ex.competitor_domains and _domain_matches(domain, ex.competitor_domains):
        exclude("competitor_domain", domain=domain)
    if domain and ex.internal_domains and _domain_matches(domain, ex.internal_domains):
        exclude("internal_domain", domain=domain)
    if walk.converted_at is not None:
        exclude("already_converted", day=trial.day_of(trial.local(walk.converted_at)))
    for prior in dispositions:
        if trial.start <= prior.at <= at and prior.disposition in ex.dispositions:
            exclude("prior_disposition", disposition=prior.disposition, day=trial.day_of(trial.local(prior.at)))
            break
    if trial.days_left == 0:
        exclude("trial_ended", on=trial.last_day.isoformat(), weekday=trial.last_day.weekday())
    elif trial.days_left < ex.min_days_left_without_billing_view and not walk.saw_billing:
        exclude("trial_ending", days_left=trial.days_left)
    return reasons


def _do_not_touch(walk: _Walk, dnt: DoNotTouch, at: datetime) -> list[Reason]:
    """Why a rep must not reach out now, though the lead would be routed: a checkout under way, a recent upgrade,
    an open support ticket, an opt-out."""
    dont: list[Reason] = []
    if walk.checkout_since is not None and at - walk.checkout_since < timedelta(hours=dnt.checkout_grace_hours):
        dont.append(Reason("checkout_in_progress", ReasonKind.DO_NOT_TOUCH,
                           {"seconds": (at - walk.checkout_since).total_seconds()}))
    if walk.upgraded_at is not None and at - walk.upgraded_at < timedelta(hours=dnt.after_upgrade_hours):
        dont.append(Reason("recently_upgraded", ReasonKind.DO_NOT_TOUCH,
                           {"seconds": (at - walk.upgraded_at).total_seconds()}))
    if walk.open_tickets:
        dont.append(Reason("support_ticket_open", ReasonKind.DO_NOT_TOUCH, {}))
    if walk.opted_out_at is not None:
        dont.append(Reason("opted_out", ReasonKind.DO_NOT_TOUCH, {}))
    return dont


def _signals_met(walk: _Walk, trial: _Trial, plan: _Plan) -> tuple[list[_Tally], list[SignalMet]]:
    """The tallies that met their signal, in the order they were met; and every signal to show, in the order it
    happened: those, activation and the explicit ask (both worth no points)."""
    met = sorted((t for t in walk.tallies if t is not None and t.met_at is not None), key=_MET_AT)
    day_of, wants_day_list = trial.day_of, plan.wants_day_list
    signals = [
        SignalMet(t.key, t.rule.label, t.rule.points, day_of(t.met_on), t.met_at,
                  _evidence(t, day_of, t.key in wants_day_list), t.rule.talk_track, tuple(t.shown))
        for t in met
    ]
    if walk.activated_at is not None:
        signals.append(SignalMet(ACTIVATION, _words("activation_label"), 0, day_of(trial.local(walk.activated_at)),
                                 walk.activated_at, _words("activation_evidence"), "activation"))
    if (ask := walk.ask) is not None:
        signals.append(SignalMet(EXPLICIT_ASK, _words("explicit_ask_label"), 0, day_of(trial.local(ask.at)), ask.at,
                                 _words("explicit_ask_evidence", event=ask.name), "fast_lane"))
    signals.sort(key=_AT)  # the story in the order it happened
    return met, signals


def _strongest(met: Sequence[_Tally]) -> str | None:
    """The met signal worth the most points (the rules' rank breaks ties)."""
    return max(met, key=lambda t: (t.rule.points, -t.rule.rank)).key if met else None


def _status_and_tier(
    excluded: bool, walk: _Walk, trial: _Trial, met: Sequence[_Tally], score: int, rules: Rules, at: datetime
) -> tuple[Status, Tier | None, datetime | None]:
    """Status, tier and when the user qualified, before the do-not-touch states: excluded; else the fast lane for
    an ICP-fit user's explicit ask; else by points at the thresholds, with every signal on one day held for a while
    at exactly the threshold, then monitor."""
    if excluded:
        return Status.EXCLUDED, None, None
    if walk.ask is not None and trial.icp_fit:
        return Status.QUALIFIED, Tier.FAST_LANE, walk.ask.at
    tiers = rules.tiers
    if score < tiers.qualify:
        return Status.BELOW_THRESHOLD, None, None
    tier = Tier.HIGH if score >= tiers.high else Tier.MEDIUM
    qualified_at = max(walk.activated_at, _crossing(met, tiers.qualify))
    if score == tiers.qualify and len(set().union(*(t.days for t in met))) == 1:
        if at < qualified_at + timedelta(hours=rules.hold.hours):
            return Status.HELD, tier, qualified_at
        return Status.MONITOR, None, qualified_at
    return Status.QUALIFIED, tier, qualified_at


def _result(
    trial: _Trial,
    plan: _Plan,
    score: int,
    status: Status,
    tier: Tier | None,
    qualified_at: datetime | None,
    signals: list[SignalMet],
    reasons: list[Reason],
    strongest: str | None,
) -> ScoreResult:
    props = trial.props
    return ScoreResult(
        user_id=trial.signup.user_id,
        email=trial.email,
        account=Account(trial.company, trial.domain),
        company_size=trial.size,
        score=score,
        max_score=plan.max_score,
        tier=tier,
        status=status,
        signals=tuple(signals),
        reasons=tuple(reasons),
        strongest_signal=strongest,
        trial_day=trial.day,
        days_left=trial.days_left,
        qualified_at=qualified_at,
        profile=Profile(
            first_name=props.get("first_name"),
            last_name=props.get("last_name"),
            title=props.get("title"),
            plan=props.get("plan"),
            signup_source=props.get("signup_source"),
            signup_at=trial.start,
            trial_ends_on=trial.last_day,
        ),
    )


def _crossing(met: Sequence[_Tally], threshold: int) -> datetime:
    """When the points first reached the threshold (`met` is in the order the signals were met)."""
    total = 0
    for tally in met:
        total += tally.rule.points
        if total >= threshold:
            return tally.met_at
    raise AssertionError("called only when the threshold was reached")


def _no_signup(user_id: str, rules: Rules) -> ScoreResult:
    return ScoreResult(
        user_id=user_id,
        email=None,
        account=Account(None, None),
        company_size=None,
        score=0,
        max_score=rules.max_score,
        tier=None,
        status=Status.EXCLUDED,
        signals=(),
        reasons=(Reason("no_signup", ReasonKind.EXCLUSION, {}),),
        strongest_signal=None,
        trial_day=None,
        days_left=None,
    )


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work on millions of small, acyclic objects.

    Reference counting still frees everything at once; only the generation scans wait, and at a
    million events those scans cost seconds while finding nothing to collect.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def score_users(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Mapping[str, Sequence[PriorDisposition]] | None = None,
) -> list[ScoreResult]:
    """Score every user who has an event, in the order users first appear."""
    by_user: dict[str, list[ev.Event]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    dispositions = dispositions or {}
    with paused_gc():
        return [
            score_user(user_events, rules, at, tz=tz, dispositions=dispositions.get(user_id, ()))
            for user_id, user_events in by_user.items()
        ]
