"""The PQL scorer: one user's events, the rules and a moment `at` in; a `ScoreResult` out.

Pure: no clock, no I/O. Everything is judged as of `at`, so the same inputs always give the same answer.

The order of judgement:
- no signup yet: excluded (kept, and scored once the signup arrives);
- an explicit ask: fast lane, whatever the points and at any company size (known or not), unless an exclusion
  it does not override stops it (`ASK_OVERRIDES`);
- any exclusion (fit, personal or test email, competitor, converted, earlier disposition, trial
  ending): excluded, with every reason;
- activation gate, then points from signals met inside the window: medium or high at the threshold;
- exactly at the threshold with every signal on one day: held for a while, then monitor;
- a lead that would be routed but is in a do-not-touch state: do_not_touch, with the reason.

Triggers (seeds 000 and 001, scoring/triggers.py) are judged beside the points, each `level = "user"` one over the
user's events since the signup (a `within = "trial"` one up to the end of the trial's last day):
- a fired trigger counts for the user unless an exclusion stops it. Every exclusion stops a trigger, except the fit
  ones (company size out of range or unknown) when its `icp_gate` is false: seed 000 routes blockers and expansion
  in every band, and seed 002's ICP gate is the pilot's points model's. What counts is listed on `triggers`; a
  trigger an exclusion stops is not (the exclusion's reason says why nothing was);
- a routed trigger (tier of response 1 or 2) that counts qualifies the user, with no activation needed (the
  activation gate is the points model's), at the moment it fired; a user it qualifies despite a fit exclusion
  loses that reason, as the fast lane's users do;
- tier 3 triggers (automated nurture only) are listed and never qualify anyone, nor show among the signals;
- tier: response 1 is high, 2 medium; the verdict's tier is the highest of the points', the triggers' and the fast
  lane's (the fast lane highest). qualified_at is the earliest moment among what qualified (the fast lane's clock
  starts at the ask, as before);
- family: buying when an ask, the points or a buying trigger qualified the user; else blocker when a blocker
  trigger did; None when nothing did;
- the hold (exactly at the threshold, on one day) and monitor stay the points model's: a trigger that qualifies a
  held user makes them qualified;
- each routed trigger that counts is also a signal worth no points (its label, evidence and talk track), so alerts,
  summaries and outreach show it; when triggers qualified the user and the points did not, the strongest of them
  (weight, then tier of response) is the strongest signal and picks the talk track.
"""

from __future__ import annotations

import fnmatch
import gc
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache, lru_cache
from hashlib import blake2b
from operator import attrgetter
from typing import Any

import orjson

from scoring import events as ev
from scoring.identity import is_anonymous, resolve
from scoring.profile import GroupTraits, from_signup, newer
from scoring.result import (
    Account,
    Band,
    PriorDisposition,
    Profile,
    Reason,
    ReasonKind,
    ScoreResult,
    SignalMet,
    Status,
    Tier,
    TriggerMet,
    account_key,
)
from scoring.rules import DoNotTouch, Rules, Signal
from scoring.tally import Counter, Tally, local_day, next_midnight
from scoring.triggers import TRIAL, Catalogue, Fired, Level, micros, moment_of
from templates import sentences, table

EXPLICIT_ASK = "explicit_ask"
ACTIVATION = "activation"
#: The exclusions an explicit ask overrides (seed 000: the fast lane "bypasses all band logic and compound scoring"):
#: fit (company size out of range or unknown, a personal email with no company) and time (fewer than the trial days
#: a sales cycle needs: they asked). Every other exclusion stops it: those that protect people (a test or internal
#: account, a competitor, no email to check those by, already a customer, a Disqualified or No Response disposition
#: this trial) and the trial being over; so does any exclusion added later, unless it is named here.
ASK_OVERRIDES = frozenset({"company_size_out_of_range", "company_size_unknown", "personal_email_domain",
                           "trial_ending"})
#: The exclusions a trigger whose `icp_gate` is false is not stopped by: seed 002's ICP gate, the fit ones.
FIT = frozenset({"company_size_out_of_range", "company_size_unknown"})
#: A trigger's tier of response as the lead's tier (seed 001: tier 1 same day, tier 2 within 72 h).
RESPONSE_TIER = {1: Tier.HIGH, 2: Tier.MEDIUM}
_TIER_RANK = {Tier.MEDIUM: 1, Tier.HIGH: 2, Tier.FAST_LANE: 3}
#: The words of the signals the scorer adds itself, and of lists of values (templates/scoring/signals.j2); cached,
#: as every activated user's verdict says "activated".
_words = cache(sentences("scoring/signals.j2"))


class _Plan:
    """What one rules object means for the hot loop, worked out once rather than per user or event."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.signals = list(rules.signals.items())
        self.for_event: dict[str, tuple[int, ...]] = {}
        star: list[int] = []
        billing: list[int] = []
        for index, (_, rule) in enumerate(self.signals):
            if rule.event == "*":
                star.append(index)
            elif rule.event == ev.BILLING_VIEW:
                billing.append(index)
            else:
                self.for_event[rule.event] = (*self.for_event.get(rule.event, ()), index)
        self.star = tuple(star)
        # The counters each event name feeds, with the any-event ones; a billing view feeds the billing ones too.
        self.counted = {name: (*indices, *star) for name, indices in self.for_event.items()}
        self.with_billing = {name: (*self.counted.get(name, star), *billing)
                             for name in (*self.for_event, ev.PAGE_VIEW)}
        # The same without the any-event ones, for a whole history in order (they are filled at the end).
        self.named = dict(self.for_event)
        self.named_with_billing = {name: (*self.for_event.get(name, ()), *billing)
                                   for name in (*self.for_event, ev.PAGE_VIEW)}
        self.keeps = [max(rule.min_count, 1) for _, rule in self.signals]  # earliest events a counter keeps
        self.keep_firsts = max((self.keeps[index] for index in star), default=0)  # an any-event counter's most
        self.distinct = [rule.distinct for _, rule in self.signals]
        self.window = timedelta(days=rules.window.days)
        self.trial_days = timedelta(days=rules.window.trial_length_days - 1)  # after the first
        self.activation = rules.gates.activation_event
        self.is_billing = lru_cache(maxsize=4096)(rules.events.is_billing)  # few distinct paths, many views
        patterns = rules.exclusions.test_email_patterns
        self.test_email = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
        self.max_score = rules.max_score
        self.asks = frozenset(rules.fast_lane.events)
        # Events the tallies note beyond the signals: asks and the do-not-touch states.
        self.special = self.asks | {ev.CHECKOUT_STARTED, ev.CHECKOUT_COMPLETED, ev.CONVERTED, ev.TICKET_OPENED,
                                    ev.TICKET_CLOSED, ev.OPT_OUT}
        self.wants_day_list = {key for key, rule in self.signals if "{day_list}" in rule.evidence}
        # A population's users share their companies' sizes, industries and plans: each mix is worked out once.
        self.firmographics = lru_cache(maxsize=8192)(self._firmographics)
        # The triggers' conditions as the tallies keep them (scoring/triggers.py).
        self.catalogue = catalogue = Catalogue(rules.triggers, self.is_billing)
        self.slot_count = len(catalogue)  # a tally's slot lists, one per slot
        # The user triggers, each with the slots that must hold something before it can fire (its conditions'
        # own: a condition with none cannot hold) and how long after their first occurrence (a "not completed
        # within" wait), so a user with none of their events costs a look per trigger.
        self.user_triggers = []
        for name, trigger in rules.triggers_of(Level.USER).items():
            needs = [(slot, c.wait_us)
                     for (slot, _), c in zip(catalogue.layout[name], trigger.all, strict=True)]
            mask = sum({1 << slot for slot, _ in needs})  # the slots as bits: one test for all of them
            self.user_triggers.append((name, trigger, mask, tuple(need for need in needs if need[1])))
        self.waits = [name for name, _, _, _ in self.user_triggers if catalogue.waits[name]]  # those that wait
        self.user_slots = sorted(catalogue.slots_of_level(Level.USER))
        self._candidates: dict[bytes, tuple] = {}
        self.account_triggers = tuple(rules.triggers_of(Level.ACCOUNT))
        self.account_slots = tuple(sorted(catalogue.slots_of_level(Level.ACCOUNT)))  # the slots they read
        # Each account trigger's conditions as what their slots must hold before it can fire: (the slot, whether
        # it counts the users with an occurrence rather than the occurrences, how many; `Condition.least`).
        self.account_needs = {
            name: tuple((slot, c.measure == "users", c.least)
                        for (slot, _), c in zip(catalogue.layout[name], trigger.all, strict=True))
            for name, trigger in rules.triggers_of(Level.ACCOUNT).items()}
        # The exclusions' rules, read once; a population's users share their domains, each looked at once.
        ex = rules.exclusions
        self.size_min, self.size_max = rules.gates.company_size_min, rules.gates.company_size_max
        self.size_range = {"size_min": self.size_min, "size_max": self.size_max}
        self.personal = ex.personal_email_domains
        self.competitor = lru_cache(maxsize=8192)(lambda domain: _domain_matches(domain, ex.competitor_domains))
        self.internal = lru_cache(maxsize=8192)(lambda domain: _domain_matches(domain, ex.internal_domains))
        self.dispositions = ex.dispositions
        self.min_days_left = ex.min_days_left_without_billing_view
        self.dnt = rules.do_not_touch

    def candidates(self, slots: Sequence[Sequence]) -> tuple:
        """The user triggers that may fire over these slot lists: those whose conditions' slots all hold something
        (a condition with no occurrence at all cannot hold). Worked out once for each set of filled slots: a
        population's users fill a few dozen."""
        filled = bytes(map(bool, slots))
        found = self._candidates.get(filled)
        if found is None:
            mask = sum(1 << slot for slot, full in enumerate(filled) if full)
            found = self._candidates[filled] = tuple(t for t in self.user_triggers if not t[2] & ~mask)
        return found

    def _firmographics(self, size: int | None, industry: str | None, plan: str | None) -> tuple[Band, int | None]:
        """The band of a company size, and the ACV potential of that band, industry and plan."""
        band = self.rules.bands.of(size)
        return band, self.rules.acv.potential(band, industry, plan)


_PLANS: dict[int, tuple[Rules, _Plan]] = {}


def plan_of(rules: Rules) -> _Plan:
    """The rules, worked out for the hot loop (cached per rules object)."""
    cached = _PLANS.get(id(rules))
    if cached is None or cached[0] is not rules:
        if len(_PLANS) > 32:
            _PLANS.clear()
        cached = _PLANS[id(rules)] = (rules, _Plan(rules))
    return cached[1]


@cache
def _list_separators() -> tuple[str, str]:
    return table("scoring/signals.j2", "list_separator"), table("scoring/signals.j2", "list_last_separator")


def _human_list(items: Sequence[str]) -> str:
    """A list as words: "slack, jira and github"."""
    if len(items) <= 1:
        return "".join(items)
    separator, last = _list_separators()
    return f"{separator.join(items[:-1])}{last}{items[-1]}"


class _Met:
    """A signal the user met: its rule, its counter, and when it was first met (the tally's words for it)."""

    __slots__ = ("key", "rule", "counter", "met_at", "met_on")

    def __init__(self, key: str, rule: Signal, counter: Counter, met_at: datetime, met_on: date) -> None:
        self.key, self.rule, self.counter, self.met_at, self.met_on = key, rule, counter, met_at, met_on


def _evidence(met: _Met, trial_day_of, with_day_list: bool, shown: tuple[str, ...]) -> str:
    """What a rep reads of a met signal (`shown`: its counter's values as people read them)."""
    counter = met.counter
    day_list = ", ".join(str(trial_day_of(d)) for d in sorted(counter.days)) if with_day_list else ""
    return _evidence_words(met.rule.evidence, counter.count, len(counter.days), shown, day_list)


@lru_cache(maxsize=1 << 14)
def _evidence_words(evidence: str, count: int, days: int, shown: tuple[str, ...], day_list: str) -> str:
    """A signal's `evidence` filled in; cached, as a population's users share a few counts, days and values."""
    return evidence.format(
        count=count,
        s="" if count == 1 else "s",
        days=days,
        values=_human_list(shown) or str(count),
        day_list=day_list,
    )


_AT = attrgetter("at")
_MET_AT = attrgetter("met_at")


@lru_cache(maxsize=1024)
def _local_date(moment: datetime, tz: tzinfo) -> date:
    """For the few moments every user shares (the `at` of a sweep)."""
    return moment.astimezone(tz).date()


#: `micros` of the few moments every user shares (the `at` of a sweep).
_at_micros = lru_cache(maxsize=1024)(micros)


def _domain_matches(domain: str, listed: Iterable[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in listed)


def profile_of(tally: Tally, group: GroupTraits | None = None) -> Mapping[str, Any]:
    """The user's profile (scoring/profile.py): each field's newest value, from the trial's signup, identify calls
    and their account's group traits (`group`: field -> (when it was sent, value))."""
    signup = tally.signup
    if not tally.profile and not group:
        return signup.props if signup is not None else {}  # the common case: the signup's properties say it all
    fields = from_signup(signup.props) if signup is not None else {}
    sent: dict[str, tuple] = dict.fromkeys(fields, (signup.at, tally.signup_seq, 1)) if signup is not None else {}
    for name, (stamp, value) in tally.profile.items():
        mark = (*stamp, 1)
        if name not in sent or mark >= sent[name]:
            fields[name], sent[name] = value, mark
    for name, (at, value) in (group or {}).items():
        mark = (at, -1, 0)  # the user's own word wins a tie
        if name not in sent or mark > sent[name]:
            fields[name], sent[name] = value, mark
    return fields


class _Trial:
    """The trial as of `at`, read from its signup and the user's profile: who signed up (and whether they fit the
    ICP), when it started, its scoring window, its last day, and where `at` falls in it. Days are local dates in
    the team's time zone."""

    __slots__ = ("signup", "props", "profile", "start", "tz", "first_day", "last_day", "day", "days_left",
                 "window_end", "email", "domain", "company", "size", "icp_fit")

    def __init__(self, tally: Tally, profile: Mapping[str, Any], rules: Rules, plan: _Plan, at: datetime) -> None:
        signup, tz = tally.signup, tally.tz
        self.signup, self.props, self.profile, self.start, self.tz = signup, signup.props, profile, signup.at, tz
        self.first_day = tally.start_day()
        trial_ends_at = self.props.get("trial_ends_at")
        if trial_ends_at:
            self.last_day = self.local(datetime.fromisoformat(trial_ends_at) - timedelta(microseconds=1))
        else:
            self.last_day = self.first_day + plan.trial_days
        today = _local_date(at, tz)
        self.day = (today - self.first_day).days + 1
        self.days_left = max(0, (self.last_day - today).days + 1)
        self.window_end = self.start + plan.window

        self.email = email = profile.get("email")
        self.domain = email.rsplit("@", 1)[1] if email else None
        self.company = profile.get("company_name")
        self.size = size = profile.get("company_size")
        self.icp_fit = size is not None and plan.size_min <= size <= plan.size_max

    def local(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def day_of(self, day: date) -> int:
        """The trial day of a local date: 1 is the signup's."""
        return (day - self.first_day).days + 1


def score_user(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Sequence[PriorDisposition] = (),
    groups: Mapping[str, GroupTraits] | None = None,
) -> ScoreResult:
    """Score one user as of `at` (aware) from their events. `dispositions` are the ones the store holds for this
    user; `groups` the accounts' group traits, by group id (the user's latest group call says which is theirs).

    The events as of `at` are taken into tallies (scoring/tally.py), then judged (`judge`)."""
    return score_user_and_tally(events, rules, at, tz=tz, dispositions=dispositions, groups=groups)[0]


def score_user_and_tally(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Sequence[PriorDisposition] = (),
    groups: Mapping[str, GroupTraits] | None = None,
) -> tuple[ScoreResult, Tally]:
    """`score_user`, with the tallies it judged: an account's verdict merges its users' (scoring/accounts.py)."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    at = at.astimezone(UTC)  # events are UTC; comparing like with like is much cheaper
    tally = tally_as_of(events, rules, at, tz)
    group = groups.get(tally.group[1]) if groups and tally.group is not None else None
    return judge(tally, rules, at, dispositions=dispositions, group=group), tally


def tally_as_of(events: Iterable[ev.Event], rules: Rules, at: datetime, tz: tzinfo = UTC) -> Tally:
    """A user's tallies from their history up to and including `at` (aware): what `judge` reads."""
    return Tally.build(_as_of(events, at.astimezone(UTC)), plan_of(rules), tz, in_order=True)


def judge(
    tally: Tally,
    rules: Rules,
    at: datetime,
    *,
    dispositions: Sequence[PriorDisposition] = (),
    group: GroupTraits | None = None,
) -> ScoreResult:
    """The verdict on a user's tallies as of `at`, which must not be before their latest event.

    The steps, in the order of judgement (see the module docstring): the trial read from its signup and profile,
    the exclusions, the user triggers they do not stop, the activation gate and the do-not-touch reasons, the
    signals met, then status and tier (the points', then with the routed triggers'), family and strongest signal.
    """
    at = at.astimezone(UTC)
    if tally.latest is not None and tally.latest > at:
        raise ValueError("a verdict as of a moment before the user's latest event: build the tallies up to it")
    plan = plan_of(rules)
    if tally.signup is None:
        return _no_signup(tally.user_id, rules)
    trial = _Trial(tally, profile_of(tally, group), rules, plan, at)
    checkout_since, upgraded_at, converted_at, opted_out_at, open_tickets = tally.states()

    reasons = _exclusions(trial, tally, plan, rules, at, dispositions, converted_at)
    activated_at = tally.activation[0] if tally.activation is not None else None
    ask_at = tally.ask[0][0] if tally.ask is not None else None
    if ask_at is not None and all(reason.code in ASK_OVERRIDES for reason in reasons):
        reasons = []  # the fast lane: these exclusions are no reason against an explicit ask
    excluded = bool(reasons)
    fired = _triggers(tally, trial, plan, at, reasons) if plan.user_triggers else []
    routed = [f for f in fired if f.trigger.routed]
    if routed and excluded:
        reasons = []  # only fit exclusions, which these triggers are not stopped by (`_triggers`)
    if activated_at is None and ask_at is None and not routed:
        # The activation gate; the fast lane and triggers need no activation, so it is no reason there.
        reasons.append(Reason("not_activated", ReasonKind.GATE, {}))
    dont = _do_not_touch(plan.dnt, at, checkout_since, upgraded_at, open_tickets, opted_out_at)

    met, signals = _signals_met(tally, trial, plan)
    score = sum(m.rule.points for m in met) if activated_at is not None else 0
    status, tier, qualified_at = _status_and_tier(excluded, activated_at, ask_at, met, score, rules, at)
    by_points = status is Status.QUALIFIED
    if routed:
        status, tier, qualified_at = _with_triggers(status, tier, qualified_at, routed)
    family = _family(status, by_points, routed)
    if status in (Status.QUALIFIED, Status.HELD) and dont:
        status = Status.DO_NOT_TOUCH
    reasons.extend(dont)
    if tier is Tier.FAST_LANE:
        strongest = EXPLICIT_ASK
    elif routed and not by_points:
        strongest = max(routed, key=lambda f: (f.weight, -f.trigger.response)).name
    else:
        strongest = _strongest(met)
    triggers = ()
    if fired:
        triggers = tuple(trigger_met(f) for f in fired)
        signals = sorted([*signals, *(_as_signal(t, trial) for t in triggers if t.routed)], key=_AT)
    result = _result(tally, trial, plan, score, status, tier, qualified_at, signals, reasons, strongest)
    result.family, result.triggers = family, triggers
    return result


def _triggers(tally: Tally, trial: _Trial, plan: _Plan, at: datetime, reasons: Sequence[Reason]) -> list[Fired]:
    """The user triggers that fired by `at` and that no exclusion stops (see the module docstring), in the rules'
    order."""
    stopped_all = any(reason.code not in FIT for reason in reasons)
    if stopped_all:
        return []
    fit_excluded = bool(reasons)
    slots, catalogue, tz = tally.slots, plan.catalogue, trial.tz
    at_us = since_us = trial_end_us = None
    fired = []
    for name, trigger, _, waits in plan.candidates(slots):  # those with an occurrence for every condition
        if fit_excluded and trigger.icp_gate:
            continue  # the ICP gate
        if at_us is None:
            at_us, since_us = _at_micros(at), micros(trial.start)
        if waits and any(slots[slot][0][0] + wait > at_us for slot, wait in waits):
            continue  # a "not completed within" wait not over yet for even the first
        until_us = None
        if trigger.within == TRIAL:
            if trial_end_us is None:
                trial_end_us = micros(next_midnight(trial.last_day, tz)) - 1
            until_us = trial_end_us
        found = catalogue.fired(name, slots, at_us, tz, since_us=since_us, until_us=until_us)
        if found is not None:
            fired.append(found)
    return fired


def _with_triggers(status: Status, tier: Tier | None, qualified_at: datetime | None,
                   routed: Sequence[Fired]) -> tuple[Status, Tier | None, datetime | None]:
    """Status, tier and qualified_at once the routed triggers that count are added to the points' and the ask's."""
    best = max((RESPONSE_TIER[f.trigger.response] for f in routed), key=_TIER_RANK.__getitem__)
    first = min(f.at for f in routed)
    if status is Status.QUALIFIED:
        if tier is Tier.FAST_LANE:
            return status, tier, qualified_at  # the fast lane's clock starts at the ask
        return status, max(tier, best, key=_TIER_RANK.__getitem__), min(qualified_at, first)
    return Status.QUALIFIED, best, first  # the hold, monitor and threshold are the points' alone


def _family(status: Status, by_points: bool, routed: Sequence[Fired]) -> str | None:
    """Buying when an ask, the points or a buying trigger qualified the user; else blocker; None: no lead."""
    if status is not Status.QUALIFIED:
        return None
    if by_points or any(f.trigger.family == "buying" for f in routed):
        return "buying"
    return "blocker"


def trigger_met(fired: Fired) -> TriggerMet:
    """A fired trigger as a verdict lists it (an account trigger with the users whose events fired it)."""
    trigger = fired.trigger
    return TriggerMet(
        name=fired.name, label=trigger.label, family=str(trigger.family), strength=str(trigger.strength),
        response=trigger.response, level=str(trigger.level), at=fired.at, evidence=trigger_evidence(fired),
        weight=fired.weight, talk_track=trigger.talk_track,
        users=fired.users if trigger.level is Level.ACCOUNT else (),
    )


def trigger_evidence(fired: Fired) -> str:
    """What a rep reads of a fired trigger: its `evidence` with {count}, {s}, {days}, {values}, {users}, {total} and
    {span} ("within 31 h", "over 3 days") filled in."""
    total = fired.total
    return fired.trigger.evidence.format(
        count=fired.count,
        s="" if fired.count == 1 else "s",
        days=fired.days,
        values=_human_list(fired.values) or str(fired.count),
        users=len(fired.users),
        total=f"{total:,.0f}" if total == int(total) else f"{total:,.2f}",
        span=_words("trigger_span", minutes=-(-fired.span_us // 60_000_000), days=fired.days),
    )



def _as_signal(met: TriggerMet, trial: _Trial) -> SignalMet:
    """A routed trigger as a signal worth no points, so the alert, its summary and the outreach show it."""
    return SignalMet(met.name, met.label, 0, trial.day_of(trial.local(met.at)), met.at, met.evidence, met.talk_track)


def read_key(tally: Tally, rules: Rules, dispositions: Sequence[PriorDisposition] = ()) -> str:
    """A key of everything `judge` reads of the tallies and the dispositions, the moment aside: tallies with the
    same key get the same verdict at the same moment. Counters enter only once met (an unmet signal shows
    nowhere), and then only with what their evidence sentence can show. Stable across processes (a digest)."""
    plan = plan_of(rules)
    signup = tally.signup
    counters = []
    for (_, rule), counter in zip(plan.signals, tally.counters, strict=True):
        met_at = counter.met(rule.min_count, rule.min_days, rule.distinct is not None) if counter else None
        counters.append(None if met_at is None else
                        (met_at, counter.count, sorted(counter.days), counter.shown() if rule.distinct else None))
    summary = (
        None if signup is None else (signup.message_id, signup.at),
        sorted((name, value) for name, (_, value) in tally.profile.items()),
        None if tally.group is None else tally.group[1],
        tally.activation, tally.billing is not None, tally.ask, tally.specials, counters,
        [(prior.disposition, prior.at) for prior in dispositions],
        # What the user triggers read: their slots' occurrences (the moment aside, the same slots fire the same).
        [tally.slots[slot] for slot in plan.user_slots],
    )
    return blake2b(orjson.dumps(summary, default=str), digest_size=8).hexdigest()


def until(tally: Tally, rules: Rules, at: datetime, result: ScoreResult) -> datetime:
    """How long `result` (the verdict on `tally` as of `at`) stands if no event comes: until the team's next
    midnight (the trial day moves), a hold ends, a do-not-touch window closes, the words of one change ("started
    checkout 3 h ago"), or a trigger's "not completed within N days" wait ends."""
    return until_and_wake(tally, rules, at, result)[0]


def until_and_wake(tally: Tally, rules: Rules, at: datetime, result: ScoreResult) -> tuple[datetime, datetime | None]:
    """`until` and `wake` at once (ingestion asks both of each user it judges)."""
    at = at.astimezone(UTC)
    windows = _open_windows(tally, rules, at)
    turns = _turns(tally, rules, at, result, windows)
    ends = [next_midnight(_local_date(at, tally.tz), tally.tz), *turns,
            *(_elapsed_words_change(since, at) for since, _ in windows)]
    return min(ends), min(turns, default=None)


def wake(tally: Tally, rules: Rules, at: datetime, result: ScoreResult) -> datetime | None:
    """When `result` (the verdict on `tally` as of `at`) next changes with no event and no new day: a trigger's "not
    completed within N days" wait ends, a do-not-touch window closes, a hold ends; None when nothing waits. What the
    wake sweep (bot/sweeps/wake.py) judges the user again at, so that a trigger fires when it comes due rather than at
    the user's next event or the next full rescore."""
    at = at.astimezone(UTC)
    return min(_turns(tally, rules, at, result, _open_windows(tally, rules, at)), default=None)


def _open_windows(tally: Tally, rules: Rules, at: datetime) -> list[tuple[datetime, datetime]]:
    """The do-not-touch windows still open at `at` (a checkout's grace, the hours after an upgrade): (since, end)."""
    checkout_since, upgraded_at, *_ = tally.states()
    dnt = rules.do_not_touch
    return [(since, since + timedelta(hours=hours))
            for since, hours in ((checkout_since, dnt.checkout_grace_hours), (upgraded_at, dnt.after_upgrade_hours))
            if since is not None and at - since < timedelta(hours=hours)]


def _turns(tally: Tally, rules: Rules, at: datetime, result: ScoreResult,
           windows: list[tuple[datetime, datetime]]) -> list[datetime]:
    """The moments after `at` (UTC) at which `result` turns with time alone (`wake`'s, and `until`'s besides the
    day and the words); `windows`: `_open_windows` at `at`."""
    ends = [end for _, end in windows]
    if result.status is Status.HELD and result.qualified_at is not None:
        ends.append(result.qualified_at + timedelta(hours=rules.hold.hours))
    plan = plan_of(rules)
    if plan.waits and tally.signup is not None:
        # A "started, not completed within N days" wait that ends with no event may fire a trigger then.
        due = plan.catalogue.due(plan.waits, tally.slots, micros(at), ended=True)
        if due is not None:
            ends.append(moment_of(due))
    return [end for end in ends if end > at]


def _elapsed_words_change(since: datetime, at: datetime) -> datetime:
    """When the words of the time since `since` ("20 min", "3 h") next change after `at`: minutes round at the half
    minute, hours at the half hour, and minutes give way to hours at the hour (a second early: rounding is never
    crossed unseen)."""
    seconds = (at - since).total_seconds()
    step = 60 if seconds < 3600 else 3600
    boundary = (math.ceil(seconds / step - 0.5) + 0.5) * step  # the next half step (now, on one: it rounds next)
    if step == 60:
        boundary = min(boundary, 3600)
    return since + timedelta(seconds=boundary - 1)


def _as_of(events: Iterable[ev.Event], at: datetime) -> list[ev.Event]:
    """The events in time order, up to and including `at`."""
    seen = sorted(events, key=_AT)  # stable: events at the same instant keep the order they came in
    cut = bisect_right(seen, at, key=_AT)
    if cut < len(seen):
        del seen[cut:]  # after `at`: not happened yet, as far as this verdict knows
    return seen


def _exclusions(
    trial: _Trial, tally: Tally, plan: _Plan, rules: Rules, at: datetime, dispositions: Sequence[PriorDisposition],
    converted_at: datetime | None,
) -> list[Reason]:
    """Every exclusion that applies: fit, personal or test email, competitor or internal domain, converted,
    an earlier disposition this trial, the trial ended or ending."""
    reasons: list[Reason] = []
    exclusion = ReasonKind.EXCLUSION

    size, email, domain = trial.size, trial.email, trial.domain
    if not trial.icp_fit:
        if size is None:
            reasons.append(Reason("company_size_unknown", exclusion, dict(plan.size_range)))
        else:
            reasons.append(Reason("company_size_out_of_range", exclusion, {"size": size, **plan.size_range}))
    if email is None:
        reasons.append(Reason("email_unknown", exclusion, {}))
    if domain in plan.personal and not trial.company:
        reasons.append(Reason("personal_email_domain", exclusion, {"domain": domain}))
    if email and plan.test_email and plan.test_email.match(email):
        reasons.append(Reason("test_account", exclusion, {"email": email}))
    if domain and plan.competitor(domain):
        reasons.append(Reason("competitor_domain", exclusion, {"domain": domain}))
    if domain and plan.internal(domain):
        reasons.append(Reason("internal_domain", exclusion, {"domain": domain}))
    if converted_at is not None:
        reasons.append(Reason("already_converted", exclusion, {"day": trial.day_of(trial.local(converted_at))}))
    for prior in dispositions:
        if trial.start <= prior.at <= at and prior.disposition in plan.dispositions:
            reasons.append(Reason("prior_disposition", exclusion, {
                "disposition": prior.disposition, "day": trial.day_of(trial.local(prior.at))}))
            break
    if trial.days_left == 0:
        reasons.append(Reason("trial_ended", exclusion,
                              {"on": trial.last_day.isoformat(), "weekday": trial.last_day.weekday()}))
    elif trial.days_left < plan.min_days_left and tally.billing is None:
        reasons.append(Reason("trial_ending", exclusion, {"days_left": trial.days_left}))
    return reasons


def _do_not_touch(dnt: DoNotTouch, at: datetime, checkout_since: datetime | None, upgraded_at: datetime | None,
                  open_tickets: list, opted_out_at: datetime | None) -> list[Reason]:
    """Why a rep must not reach out now, though the lead would be routed: a checkout under way, a recent upgrade,
    an open support ticket, an opt-out."""
    dont: list[Reason] = []
    if checkout_since is not None and at - checkout_since < timedelta(hours=dnt.checkout_grace_hours):
        dont.append(Reason("checkout_in_progress", ReasonKind.DO_NOT_TOUCH,
                           {"seconds": (at - checkout_since).total_seconds()}))
    if upgraded_at is not None and at - upgraded_at < timedelta(hours=dnt.after_upgrade_hours):
        dont.append(Reason("recently_upgraded", ReasonKind.DO_NOT_TOUCH,
                           {"seconds": (at - upgraded_at).total_seconds()}))
    if open_tickets:
        dont.append(Reason("support_ticket_open", ReasonKind.DO_NOT_TOUCH, {}))
    if opted_out_at is not None:
        dont.append(Reason("opted_out", ReasonKind.DO_NOT_TOUCH, {}))
    return dont


def _signals_met(tally: Tally, trial: _Trial, plan: _Plan) -> tuple[list[_Met], list[SignalMet]]:
    """The signals met, in the order they were met; and every signal to show, in the order it happened: those,
    activation and the explicit ask (both worth no points)."""
    met: list[_Met] = []
    tz = trial.tz
    for (key, rule), counter in zip(plan.signals, tally.counters, strict=True):
        if counter is None:
            continue
        met_at = counter.met(rule.min_count, rule.min_days, rule.distinct is not None)
        if met_at is not None:
            met.append(_Met(key, rule, counter, met_at, local_day(met_at, tz)))
    if len(met) > 1:
        met.sort(key=_MET_AT)
    day_of, wants_day_list = trial.day_of, plan.wants_day_list
    signals = []
    for m in met:
        shown = tuple(m.counter.shown()) if m.rule.distinct is not None else ()
        signals.append(SignalMet(m.key, m.rule.label, m.rule.points, day_of(m.met_on), m.met_at,
                                 _evidence(m, day_of, m.key in wants_day_list, shown), m.rule.talk_track, shown))
    if tally.activation is not None:
        activated_at = tally.activation[0]
        signals.append(SignalMet(ACTIVATION, _words("activation_label"), 0, day_of(local_day(activated_at, tz)),
                                 activated_at, _words("activation_evidence"), "activation"))
    if tally.ask is not None:
        (ask_at, _), ask_name = tally.ask
        signals.append(SignalMet(EXPLICIT_ASK, _words("explicit_ask_label"), 0, day_of(local_day(ask_at, tz)),
                                 ask_at, _words("explicit_ask_evidence", event=ask_name), "fast_lane"))
    if len(signals) > 1:
        signals.sort(key=_AT)  # the story in the order it happened
    return met, signals


def _strongest(met: Sequence[_Met]) -> str | None:
    """The met signal worth the most points (the rules' rank breaks ties)."""
    if len(met) <= 1:
        return met[0].key if met else None
    return max(met, key=lambda m: (m.rule.points, -m.rule.rank)).key


def _status_and_tier(
    excluded: bool, activated_at: datetime | None, ask_at: datetime | None, met: Sequence[_Met], score: int,
    rules: Rules, at: datetime,
) -> tuple[Status, Tier | None, datetime | None]:
    """Status, tier and when the user qualified, before the do-not-touch states: excluded; else the fast lane for
    an explicit ask (the exclusions it overrides are gone by now); else by points at the thresholds, with every
    signal on one day held for a while at exactly the threshold, then monitor."""
    if excluded:
        return Status.EXCLUDED, None, None
    if ask_at is not None:
        return Status.QUALIFIED, Tier.FAST_LANE, ask_at
    tiers = rules.tiers
    if score < tiers.qualify:
        return Status.BELOW_THRESHOLD, None, None
    tier = Tier.HIGH if score >= tiers.high else Tier.MEDIUM
    qualified_at = max(activated_at, _crossing(met, tiers.qualify))
    if score == tiers.qualify and len(set().union(*(m.counter.days for m in met))) == 1:
        if at < qualified_at + timedelta(hours=rules.hold.hours):
            return Status.HELD, tier, qualified_at
        return Status.MONITOR, None, qualified_at
    return Status.QUALIFIED, tier, qualified_at


def _result(
    tally: Tally,
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
    profile = trial.profile
    band, acv_potential = plan.firmographics(trial.size, profile.get("industry"), profile.get("plan"))
    return ScoreResult(
        user_id=tally.user_id or trial.signup.user_id,
        email=trial.email,
        account=Account(trial.company, domain := _account_domain(trial.domain, plan),
                        account_key(tally.group[1] if tally.group is not None else None, domain)),
        company_size=trial.size,
        band=band,
        acv_potential=acv_potential,
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
            first_name=profile.get("first_name"),
            last_name=profile.get("last_name"),
            title=profile.get("title"),
            plan=profile.get("plan"),
            signup_source=profile.get("signup_source"),
            signup_at=trial.start,
            trial_ends_on=trial.last_day,
            industry=profile.get("industry"),
            group_id=tally.group[1] if tally.group is not None else None,
        ),
    )


def _account_domain(domain: str | None, plan: _Plan) -> str | None:
    """The email's domain as the account's, unless it is a personal one: gmail.com is nobody's account, and its users
    are not each other's colleagues (the lead's history and contact map are read by account domain)."""
    return None if domain in plan.personal else domain


def _crossing(met: Sequence[_Met], threshold: int) -> datetime:
    """When the points first reached the threshold (`met` is in the order the signals were met)."""
    total = 0
    for m in met:
        total += m.rule.points
        if total >= threshold:
            return m.met_at
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
    million events those scans cost seconds while finding nothing to collect. On the way out, what the work
    left alive goes straight to the oldest generation (`gc.freeze` then `gc.unfreeze`): otherwise the first
    allocation after it scans every object the work made, as the youngest generation, for nothing. Cycles
    among them are still collected, by the oldest generation's collections.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def score_users(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Mapping[str, Sequence[PriorDisposition]] | None = None,
) -> list[ScoreResult]:
    """Score every user who has an event, in the order users first appear: calls under an anonymous id are the
    user's once a call links them (scoring/identity.py); an anonymous visitor nothing links is not scored.
    (scoring/accounts.py's `score_users_and_accounts` adds the accounts' verdicts.)"""
    return [result for result, _ in score_members(events, rules, at, tz=tz, dispositions=dispositions)[0]]


def score_members(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Mapping[str, Sequence[PriorDisposition]] | None = None,
) -> tuple[list[tuple[ScoreResult, Tally]], dict[str, GroupTraits]]:
    """`score_users`, with the tallies each verdict was judged on and the accounts' group traits by group id: what
    an account's verdict is made of (scoring/accounts.py)."""
    events = resolve(list(events))
    groups = group_traits(events, at)
    return score_grouped(by_user(events), rules, at, tz=tz, dispositions=dispositions, groups=groups), groups


def group_traits(events: Iterable[ev.Event], at: datetime) -> dict[str, GroupTraits]:
    """The accounts' group traits by group id, from the group calls up to `at`, in the order they came."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    groups: dict[str, GroupTraits] = {}
    for event in events:
        if event.name == ev.GROUP and event.at <= at:
            group_id = event.props["group_id"]
            if (merged := newer(groups.get(group_id, {}), event.props.get("traits") or {}, event.at)) is not None:
                groups[group_id] = merged
    return groups


def by_user(events: Iterable[ev.Event]) -> dict[str, list[ev.Event]]:
    """Calls already under the user they belong to (`resolve`), grouped by user in the order users first come, each
    user's in the order they came; an anonymous visitor nothing links is left out (never scored)."""
    grouped: dict[str, list[ev.Event]] = {}
    for event in events:
        held = grouped.get(user_id := event.user_id)
        if held is None:
            grouped[user_id] = [event]
        else:
            held.append(event)
    for user_id in [user_id for user_id in grouped if is_anonymous(user_id)]:
        del grouped[user_id]
    return grouped


def score_grouped(
    grouped: Mapping[str, Sequence[ev.Event]],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Mapping[str, Sequence[PriorDisposition]] | None = None,
    groups: Mapping[str, GroupTraits],
) -> list[tuple[ScoreResult, Tally]]:
    """The verdicts and tallies of `score_members`, from calls grouped by the user they belong to (`by_user`; a
    caller that reads them may group them as it goes: bot/cli/split.py), in that order of users, and the group
    traits of every account (`group_traits`, which may have been read from more calls than these: a user's account
    may be described by calls that are not theirs)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)  # once: converting it again per user is then free (a naive one fails per user)
    dispositions = dispositions or {}
    with paused_gc():
        return [
            score_user_and_tally(user_events, rules, at, tz=tz, dispositions=dispositions.get(user_id, ()),
                                 groups=groups)
            for user_id, user_events in grouped.items()
        ]
