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
from functools import lru_cache
from operator import attrgetter

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
from scoring.rules import Rules, Signal

EXPLICIT_ASK = "explicit_ask"
ACTIVATION = "activation"
_ASK_WORDS = {ev.DEMO: "requested a demo", ev.CONTACT_SALES: "asked to talk to sales"}


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


def _human_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _evidence(tally: _Tally, trial_day_of, with_day_list: bool) -> str:
    return tally.rule.evidence.format(
        count=tally.count,
        s="" if tally.count == 1 else "s",
        days=len(tally.days),
        values=_human_list(tally.shown) or str(tally.count),
        day_list=", ".join(str(trial_day_of(d)) for d in sorted(tally.days)) if with_day_list else "",
    )


_AT = attrgetter("at")
_ONE_DAY = timedelta(days=1)
# strftime is slow enough to show at 100,000 users; these are the same words.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"


def score_user(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Sequence[PriorDisposition] = (),
) -> ScoreResult:
    """Score one user as of `at` (aware). `dispositions` are the ones the store holds for this user."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    plan = _plan(rules)
    at = at.astimezone(UTC)  # events are UTC; comparing like with like is much cheaper
    seen = sorted(events, key=_AT)  # stable: events at the same instant keep the order they came in
    cut = bisect_right(seen, at, key=_AT)
    if cut < len(seen):
        del seen[cut:]  # after `at`: not happened yet, as far as this verdict knows
    signup_name = ev.SIGNUP
    signups = [e for e in seen if e.name == signup_name]
    if not signups:
        user_id = seen[0].user_id if seen else ""
        return _no_signup(user_id, rules)
    signup = signups[-1]
    start = signup.at
    props = signup.props

    def local(moment: datetime) -> date:
        return moment.astimezone(tz).date()

    first_day = local(start)

    def trial_day_of(day: date) -> int:
        return (day - first_day).days + 1

    trial_ends_at = props.get("trial_ends_at")
    if trial_ends_at:
        last_day = local(datetime.fromisoformat(trial_ends_at) - timedelta(microseconds=1))
    else:
        last_day = first_day + timedelta(days=rules.window.trial_length_days - 1)
    today = _local_date(at, tz)
    trial_day = trial_day_of(today)
    days_left = max(0, (last_day - today).days + 1)

    window_end = start + timedelta(days=rules.window.days)
    signals_by_index = plan.signals
    tallies: list[_Tally | None] = [None] * len(signals_by_index)  # made on a signal's first event
    for_event, star_distinct, billing_tallies = plan.for_event, plan.star_distinct, plan.billing
    activation, asks, special, is_billing = rules.gates.activation_event, plan.asks, plan.special, plan.is_billing
    page_view = ev.PAGE_VIEW
    day, day_ends = first_day, _next_midnight(first_day, tz)
    new_days: list[tuple[date, ev.Event]] = []  # the first in-window event of each active day
    in_window: list[ev.Event] = []
    activated_at: datetime | None = None
    ask: ev.Event | None = None
    saw_billing = False
    converted_at = upgraded_at = checkout_since = opted_out_at = None
    open_tickets: list[str | None] = []

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
        if name not in special:
            continue
        if name in asks:
            ask = ask or event
        elif name == ev.CHECKOUT_STARTED:
            checkout_since = moment
        elif name == ev.CHECKOUT_COMPLETED:
            checkout_since, upgraded_at = None, moment
        elif name == ev.CONVERTED:
            checkout_since, upgraded_at = None, moment
            converted_at = converted_at or moment
        elif name == ev.TICKET_OPENED:
            open_tickets.append(event.props.get("ticket_id"))
        elif name == ev.TICKET_CLOSED and open_tickets:
            ticket = event.props.get("ticket_id")
            open_tickets.remove(ticket if ticket in open_tickets else open_tickets[0])
        elif name == ev.OPT_OUT:
            opted_out_at = moment
    for index in plan.any_event:
        tallies[index] = _Tally(*signals_by_index[index])
        _add_all(tallies[index], in_window, new_days, local)

    email = props.get("email")
    domain = email.rsplit("@", 1)[1] if email else None
    company = props.get("company_name")
    size = props.get("company_size")
    gates = rules.gates
    icp_fit = size is not None and gates.company_size_min <= size <= gates.company_size_max
    size_range = f"{gates.company_size_min:,}-{gates.company_size_max:,}"
    ex = rules.exclusions
    reasons: list[Reason] = []

    def exclude(code: str, detail: str) -> None:
        reasons.append(Reason(code, ReasonKind.EXCLUSION, detail))

    if size is None:
        exclude("company_size_unknown", f"company size unknown, so ICP fit ({size_range}) can't be checked")
    elif not icp_fit:
        exclude("company_size_out_of_range", f"company size {size:,} is outside the ICP range {size_range}")
    if domain in ex.personal_email_domains and not company:
        exclude("personal_email_domain", f"signed up with a personal {domain} address and no company")
    if email and plan.test_email and plan.test_email.match(email):
        exclude("test_account", f"{email} looks like a test or demo sign-up")
    if domain and ex.competitor_domains and _domain_matches(domain, ex.competitor_domains):
        exclude("competitor_domain", f"{domain} is a known competitor")
    if domain and ex.internal_domains and _domain_matches(domain, ex.internal_domains):
        exclude("internal_domain", f"{domain} is one of our own domains")
    if converted_at is not None:
        exclude("already_converted", f"converted to paid on day {trial_day_of(local(converted_at))}: "
                "an expansion lead, not a conversion one")
    for prior in dispositions:
        if start <= prior.at <= at and prior.disposition in ex.dispositions:
            label = prior.disposition.replace("_", " ").capitalize()
            exclude("prior_disposition", f"dispositioned {label} on day {trial_day_of(local(prior.at))} "
                    "of this trial")
            break
    if days_left == 0:
        exclude("trial_ended", f"the trial ended on {_WEEKDAYS[last_day.weekday()]} {last_day.day} "
                f"{_MONTHS[last_day.month - 1]}")
    elif days_left < ex.min_days_left_without_billing_view and not saw_billing:
        exclude("trial_ending", f"{days_left} trial day{'s' * (days_left != 1)} left and no billing or "
                "pricing view: too little time for a sales cycle")

    dnt = rules.do_not_touch
    dont: list[Reason] = []
    if checkout_since is not None and at - checkout_since < timedelta(hours=dnt.checkout_grace_hours):
        dont.append(Reason("checkout_in_progress", ReasonKind.DO_NOT_TOUCH,
                           f"started checkout {_hours(at - checkout_since)} ago: let them finish"))
    if upgraded_at is not None and at - upgraded_at < timedelta(hours=dnt.after_upgrade_hours):
        dont.append(Reason("recently_upgraded", ReasonKind.DO_NOT_TOUCH,
                           f"upgraded {_hours(at - upgraded_at)} ago: let them land first"))
    if open_tickets:
        dont.append(Reason("support_ticket_open", ReasonKind.DO_NOT_TOUCH,
                           "has an open support ticket: resolve it before sales reaches out"))
    if opted_out_at is not None:
        dont.append(Reason("opted_out", ReasonKind.DO_NOT_TOUCH, "opted out of sales contact"))

    met = sorted((t for t in tallies if t is not None and t.met_at is not None), key=lambda t: t.met_at)
    points = sum(t.rule.points for t in met)
    signals = [
        SignalMet(t.key, t.rule.label, t.rule.points, trial_day_of(t.met_on), t.met_at,
                  _evidence(t, trial_day_of, t.key in plan.wants_day_list), t.rule.talk_track, tuple(t.shown))
        for t in met
    ]
    if activated_at is not None:
        signals.append(SignalMet(ACTIVATION, "Activation", 0, trial_day_of(local(activated_at)),
                                 activated_at, "activated", "activation"))
    elif not (ask is not None and icp_fit):  # the fast lane needs no activation, so it is no reason there
        reasons.append(Reason("not_activated", ReasonKind.GATE,
                              "has not completed activation, so no points count yet"))
    strongest = max(met, key=lambda t: (t.rule.points, -t.rule.rank)).key if met else None
    if ask is not None:
        signals.append(SignalMet(EXPLICIT_ASK, "Explicit ask", 0, trial_day_of(local(ask.at)), ask.at,
                                 _ASK_WORDS.get(ask.name, "asked for a conversation"), "fast_lane"))
    signals.sort(key=lambda s: s.at)  # the story in the order it happened

    score = points if activated_at is not None else 0
    tier: Tier | None = None
    qualified_at: datetime | None = None
    if any(r.kind is ReasonKind.EXCLUSION for r in reasons):
        status = Status.EXCLUDED
    elif ask is not None and icp_fit:
        status, tier, qualified_at, strongest = Status.QUALIFIED, Tier.FAST_LANE, ask.at, EXPLICIT_ASK
    elif score >= rules.tiers.qualify:
        tier = Tier.HIGH if score >= rules.tiers.high else Tier.MEDIUM
        qualified_at = max(activated_at, _crossing(met, rules.tiers.qualify))
        status = Status.QUALIFIED
        one_day = len(set().union(*(t.days for t in met))) == 1
        if score == rules.tiers.qualify and one_day:
            if at < qualified_at + timedelta(hours=rules.hold.hours):
                status = Status.HELD
            else:
                status, tier = Status.MONITOR, None
    else:
        status = Status.BELOW_THRESHOLD
    if status in (Status.QUALIFIED, Status.HELD) and dont:
        status = Status.DO_NOT_TOUCH
    reasons.extend(dont)

    return ScoreResult(
        user_id=signup.user_id,
        email=email,
        account=Account(company, domain),
        company_size=size,
        score=score,
        max_score=plan.max_score,
        tier=tier,
        status=status,
        signals=tuple(signals),
        reasons=tuple(reasons),
        strongest_signal=strongest,
        trial_day=trial_day,
        days_left=days_left,
        qualified_at=qualified_at,
        profile=Profile(
            first_name=props.get("first_name"),
            last_name=props.get("last_name"),
            title=props.get("title"),
            plan=props.get("plan"),
            signup_source=props.get("signup_source"),
            signup_at=start,
            trial_ends_on=last_day,
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
        reasons=(Reason("no_signup", ReasonKind.EXCLUSION,
                        "no signup_complete yet: events are kept and scored when it arrives"),),
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
