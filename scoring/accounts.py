"""Account-level leads (seed 003's product-qualified account, PQA): the users of one account judged together.

An account is the `group` id a user's latest group call named, else their company email domain; a personal email
domain (the rules' `exclusions.personal_email_domains`) never forms one: gmail.com users are not colleagues. Its key
is "group:<id>" or "domain:<domain>" (`scoring.result.account_key`, set on every user verdict's `account.key`).

`score_account` merges the members' running tallies (scoring/tally.py keeps every trigger condition's occurrences,
any time, per user) for the slots the account triggers read, and judges each account trigger over them
(scoring/triggers.py). The heuristic:
- qualified when a routed trigger (tier of response 1 or 2) fired and the account is not excluded; tier 1 is a high
  lead, tier 2 a medium one; a tier-3 trigger alone is recorded (monitor: automated nurture), never routed;
- excluded when a member's domain is a competitor's or internal, a member already converted (a customer: not a new
  conversation), or every member opted out of sales contact or is a test account;
- the family is the strongest fired routed trigger's (its strength and window multiplier, then its tier);
- the anchor (the lead's user, whose trial the lead hangs on) is the first to act of the users whose events fired
  that trigger (bot/services/account_leads.py makes a member's open lead the account's lead instead, when there is
  one);
- firmographics from the group's traits, else the members' largest known company size; band and ACV through the
  rules, as for a user;
- the contact map (seed 004): every member, anchor first, with what their own verdict says they did.

Pure, as the rest of scoring/: members and a moment in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import chain
from operator import itemgetter
from typing import Any

from scoring import events as ev
from scoring.engine import paused_gc, plan_of, score_members, trigger_evidence, trigger_met
from scoring.profile import GroupTraits
from scoring.result import (
    Account,
    Contact,
    PriorDisposition,
    Profile,
    Reason,
    ReasonKind,
    ScoreResult,
    SignalMet,
    Status,
    Tier,
)
from scoring.rules import Rules
from scoring.tally import Tally
from scoring.triggers import Fired, Level, micros

#: A member of an account: their own verdict (or `Facts`, the part of it an account reads) and their running tallies
#: (or `Slots`, the part of them an account reads). The roll-up in the store also holds members by their tallies
#: alone, or by a `facts_row`, until it knows which accounts need their verdicts.
Member = tuple["ScoreResult | Facts", "Tally | Slots"]
#: Seed 001's tier of response as a lead's tier.
RESPONSE_TIER = {1: Tier.HIGH, 2: Tier.MEDIUM}
_TIME = itemgetter(0)
#: Member verdict reasons that exclude the whole account: its domain is a competitor's or ours, or it is a customer.
_ACCOUNT_EXCLUSIONS = ("competitor_domain", "internal_domain", "already_converted")
#: Member reasons that take that member out of reach; when every member has one, nobody is left to talk to.
_UNREACHABLE = ("opted_out", "test_account")


def has_account_triggers(rules: Rules) -> bool:
    return bool(rules.triggers_of(Level.ACCOUNT))


class Slots:
    """What an account reads of a member's tallies: the slots of the account triggers (the others empty) and when
    their latest event was. A rescore keeps these for a population's members instead of their whole tallies, and
    they cross between processes cheaply."""

    __slots__ = ("slots", "latest")

    def __init__(self, slots: list[Sequence], latest: datetime | None) -> None:
        self.slots, self.latest = slots, latest

    def __reduce__(self) -> tuple:
        # Pickled as its arguments: half the time of the default way for a class with __slots__ (processes pass
        # a population's).
        return Slots, (self.slots, self.latest)


class Facts:
    """What an account reads of a member's own verdict: who they are, their firmographics and profile, the reasons
    that stop an account, what they did (for the contact map), and, should they be its anchor, their trial's score
    and days, made from a verdict's `facts_row`: a rescore keeps only those rows (and the `Slots`) for a population's
    members, so the roll-up never judges a member again, and makes `Facts` of the few it needs."""

    __slots__ = ("user_id", "email", "account", "company_size", "status", "reasons", "did", "score", "max_score",
                 "trial_day", "days_left", "profile")

    def __init__(self, row: tuple) -> None:
        (self.user_id, self.email, company_name, domain, key, self.company_size, status, reasons, self.did,
         self.score, self.max_score, self.trial_day, self.days_left, profile) = row
        self.account, self.status, self.profile = Account(company_name, domain, key), Status(status), Profile(*profile)
        self.reasons = tuple(Reason(code, ReasonKind(kind), params) for code, kind, params in reasons)


def facts_row(result: ScoreResult) -> tuple:
    """`Facts` of a verdict as one flat tuple of plain values: cheap to keep for a population and to pass between
    processes (a fifth of the cost of pickling the objects), made into `Facts` only for the members an account
    needs."""
    account, p = result.account, result.profile
    return (result.user_id, result.email, account.company_name, account.domain, account.key, result.company_size,
            result.status.value,
            tuple((r.code, r.kind.value, r.params) for r in result.reasons
                  if r.code in _ACCOUNT_EXCLUSIONS or r.code in _UNREACHABLE),
            _did(result), result.score, result.max_score, result.trial_day, result.days_left,
            (p.first_name, p.last_name, p.title, p.plan, p.signup_source, p.signup_at, p.trial_ends_on, p.industry,
             p.group_id))


def _did(result: ScoreResult) -> tuple[str, ...]:
    """What a member's own verdict says they did, in words: its signals' and triggers' evidence, once each."""
    return tuple(dict.fromkeys([*(s.evidence for s in result.signals), *(t.evidence for t in result.triggers)]))


def account_member(result: ScoreResult, tally: Tally, rules: Rules) -> tuple[tuple, Slots]:
    """The part of a member's verdict (`facts_row`) and tallies (`Slots`) `score_account` reads."""
    return facts_row(result), account_part(tally, rules)


def account_part(tally: Tally, rules: Rules) -> Slots:
    """The part of a member's tallies `score_account` reads."""
    # One empty tuple for the slots accounts do not read: a population's members hold these until the roll-up. Made
    # for every member of a population: the few slots accounts read are copied over, not every slot looked at.
    slots = tally.slots
    part: list[Sequence] = [()] * len(slots)
    for index in plan_of(rules).account_slots:
        part[index] = slots[index]
    return Slots(part, tally.latest)


def stored_part(state: dict[str, Any], rules: Rules) -> Slots | None:
    """`account_part` of the tallies stored as `state` (`Tally.state()`), without restoring the rest of them; None when
    `Tally.restore` would give None."""
    plan = plan_of(rules)
    found = Tally.restore_slots(state, plan, plan.account_slots)
    return None if found is None else Slots(*found)


def merged_slots(members: Sequence[Member], rules: Rules, slots: Iterable[int] | None = None) -> list[list]:
    """The account's slot lists: for each slot an account trigger reads (of `slots`, when given), the members'
    occurrences merged in time order (the rest left empty)."""
    catalogue = plan_of(rules).catalogue
    lists: list[list] = [[] for _ in range(len(catalogue))]
    for slot in catalogue.slots_of_level(Level.ACCOUNT) if slots is None else slots:
        columns = [tally.slots[slot] for _, tally in members if tally.slots[slot]]
        # Each member's list is in time order: sorting them joined end to end merges those runs (in C, where
        # heapq.merge steps through a Python generator), and keeps the members' order between equal times.
        lists[slot] = columns[0] if len(columns) == 1 else sorted(chain.from_iterable(columns), key=_TIME)
    return lists


def fired_triggers(members: Sequence[Member], rules: Rules, at: datetime, tz: tzinfo, *,
                   since: datetime | None = None) -> list[Fired]:
    """The account triggers that fired by `at` over the members' events (only those from `since`, when given: a
    closed account lead lets a new one be raised only by what happened after it closed), strongest first."""
    plan = plan_of(rules)
    catalogue = plan.catalogue
    # A trigger with a condition its members' events cannot hold (too few occurrences, or users with one, in all)
    # cannot fire: not judged, and its slots not merged (most accounts, most days).
    occurrences: dict[int, int] = {}  # slot -> its occurrences
    holders: dict[int, int] = {}  # slot -> the members with any
    account_slots = plan.account_slots
    for _, tally in members:
        lists = tally.slots
        for slot in account_slots:
            if items := lists[slot]:
                occurrences[slot] = occurrences.get(slot, 0) + len(items)
                holders[slot] = holders.get(slot, 0) + 1
    names = [name for name in plan.account_triggers
             if all(slot in holders and (holders if users else occurrences)[slot] >= least
                    for slot, users, least in plan.account_needs[name])]
    if not names:
        return []
    lists = merged_slots(members, rules, {s for name in names for pair in catalogue.layout[name] for s in pair
                                          if s is not None})
    at_us = micros(at.astimezone(UTC))
    since_us = None if since is None else micros(since.astimezone(UTC))
    found = [fired for name in names if (fired := catalogue.fired(name, lists, at_us, tz, since_us=since_us))
             is not None]
    found.sort(key=lambda f: (-f.weight, f.trigger.response, f.at, f.name))
    return found


def score_account(
    key: str,
    members: Sequence[Member],
    rules: Rules,
    at: datetime,
    tz: tzinfo = UTC,
    group_traits: GroupTraits | None = None,
    *,
    since: datetime | None = None,
    fired: list[Fired] | None = None,
) -> ScoreResult:
    """The verdict on account `key` as of `at`, from its members' verdicts and tallies (see the module docstring).
    `group_traits`: the group's traits when the key is a group's; `since`: see `fired_triggers`; `fired`: what
    `fired_triggers` gave for these members, `at` and `since`, when the caller has it already."""
    if not members:
        raise ValueError("an account has at least one member")
    members = sorted(members, key=_user_id)
    if fired is None:
        fired = fired_triggers(members, rules, at, tz, since=since)
    routed = [f for f in fired if f.trigger.routed]
    by_user = {result.user_id: (result, tally) for result, tally in members}
    anchor = _anchor(routed or fired, by_user, members)
    company_name, domain, size, industry, plan = _firmographics(key, members, group_traits or {})
    band, acv_potential = plan_of(rules).firmographics(size, industry, plan)
    reasons = _exclusions(members)
    triggers = tuple(trigger_met(f) for f in fired)
    status, qualified_at = _status(bool(reasons), fired)
    tier = RESPONSE_TIER[min(f.trigger.response for f in routed)] if status is Status.QUALIFIED else None
    lead = routed[0] if routed else None
    result, tally = by_user[anchor]
    signals = tuple(_signal(f, result, tz) for f in sorted(fired, key=lambda f: f.at))
    return ScoreResult(
        user_id=anchor,
        email=result.email,
        account=Account(company_name, domain, key),
        company_size=size,
        band=band,
        acv_potential=acv_potential,
        score=result.score,
        max_score=result.max_score,
        tier=tier,
        status=status,
        signals=signals,
        reasons=tuple(reasons),
        strongest_signal=lead.name if lead else (fired[0].name if fired else None),
        trial_day=result.trial_day,
        days_left=result.days_left,
        qualified_at=qualified_at,
        profile=result.profile,
        level="account",
        family=str(lead.trigger.family) if lead and status is Status.QUALIFIED else None,
        triggers=triggers,
        users=tuple(_contact(m, anchor) for m in sorted(members, key=lambda m: (m[0].user_id != anchor,
                                                                               m[0].user_id))),
    )


def _user_id(member: Member) -> str:
    return member[0].user_id


def _anchor(fired: Sequence[Fired], by_user: Mapping[str, Member], members: Sequence[Member]) -> str:
    """The lead's user: the first to act of those whose events fired the strongest trigger (with nothing fired, the
    first member by id). Not the one with the best verdict of their own: that changes with the order events arrive
    in, and the anchor must not (a lead made from pieces of a history is the one the whole history makes)."""
    return next((user for user in (fired[0].users if fired else ()) if user in by_user), members[0][0].user_id)


def _firmographics(key: str, members: Sequence[Member], group: GroupTraits) -> tuple:
    """(company name, domain, size, industry, plan): the group's traits where it sent them, else the members'."""
    def trait(name: str) -> Any:
        return group[name][1] if name in group else None

    results = [result for result, _ in members]
    sizes = [r.company_size for r in results if r.company_size is not None]
    name = trait("company_name") or next((r.account.company_name for r in results if r.account.company_name), None)
    domain = trait("domain") or (key.removeprefix("domain:") if key.startswith("domain:") else
                                 next((r.account.domain for r in results if r.account.domain), None))
    size = trait("company_size") if trait("company_size") is not None else (max(sizes) if sizes else None)
    industry = trait("industry") or next((r.profile.industry for r in results if r.profile.industry), None)
    plan = trait("plan") or next((r.profile.plan for r in results if r.profile.plan), None)
    return name, domain, size, industry, plan


def account_status(reasons: Sequence[Iterable[str]], fired: Sequence[Fired]) -> tuple[Status, datetime | None]:
    """The account's status, and when it qualified, from each member's reason codes and the account triggers that
    fired (strongest first): excluded when something stops the whole account (a member's domain or conversion, or
    nobody left to reach), else qualified from the first routed trigger's firing, else monitor (a tier-3 trigger
    alone) or below the threshold."""
    codes = [set(member) for member in reasons]
    stopped = any(code in _ACCOUNT_EXCLUSIONS for member in codes for code in member) or _nobody_reachable(codes)
    return _status(stopped, fired)


def _status(stopped: bool, fired: Sequence[Fired]) -> tuple[Status, datetime | None]:
    """`account_status` once what stops the account is known (`score_account` knows it from `_exclusions`)."""
    if stopped:
        return Status.EXCLUDED, None
    routed = [f.at for f in fired if f.trigger.routed]
    if routed:
        return Status.QUALIFIED, min(routed)
    return (Status.MONITOR if fired else Status.BELOW_THRESHOLD), None


def _nobody_reachable(codes: Sequence[Iterable[str]]) -> bool:
    """Whether every member, by their reason codes, is out of reach (opted out, a test account)."""
    return all(any(code in _UNREACHABLE for code in member) for member in codes)


def _exclusions(members: Sequence[Member]) -> list[Reason]:
    """What stops the whole account (see the module docstring, and `account_status`), once each."""
    found: dict[str, Reason] = {}
    for result, _ in members:
        for reason in result.reasons:
            if reason.code in _ACCOUNT_EXCLUSIONS and reason.code not in found:
                found[reason.code] = Reason(reason.code, ReasonKind.EXCLUSION, dict(reason.params))
    if _nobody_reachable([[r.code for r in result.reasons] for result, _ in members]):
        found["nobody_to_contact"] = Reason("nobody_to_contact", ReasonKind.EXCLUSION, {"users": len(members)})
    return list(found.values())


def stopping_codes(result: ScoreResult) -> tuple[str, ...]:
    """The codes of a member's reasons that `account_status` reads (those that may stop an account)."""
    return tuple(r.code for r in result.reasons if r.code in _ACCOUNT_EXCLUSIONS or r.code in _UNREACHABLE)


def _signal(fired: Fired, anchor: ScoreResult, tz: tzinfo) -> SignalMet:
    """A fired trigger as a signal the existing alert paths show: worth no points, dated by the anchor's trial."""
    start = anchor.profile.signup_at
    day = (fired.at.astimezone(tz).date() - start.astimezone(tz).date()).days + 1 if start else 0
    return SignalMet(fired.name, fired.trigger.label, 0, day, fired.at, trigger_evidence(fired),
                     fired.trigger.talk_track, fired.values)


def _contact(member: Member, anchor: str) -> Contact:
    """One row of the contact map: who, when last active, and what their own verdict says they did."""
    result, tally = member
    profile = result.profile
    did = result.did if isinstance(result, Facts) else _did(result)
    return Contact(user_id=result.user_id, name=profile.name, email=result.email, title=profile.title,
                   last_active=tally.latest, did=did, status=str(result.status),
                   opted_out=any(reason.code == "opted_out" for reason in result.reasons))


def accounts_of(members: Sequence[Member]) -> dict[str, list[Member]]:
    """Users grouped by account key (users with none left out), in the order their accounts first appear."""
    found: dict[str, list[Member]] = {}
    for member in members:
        if (key := member[0].account.key) is not None:
            found.setdefault(key, []).append(member)
    return found


def score_users_and_accounts(
    events: Iterable[ev.Event],
    rules: Rules,
    at: datetime,
    *,
    tz: tzinfo = UTC,
    dispositions: Mapping[str, Sequence[PriorDisposition]] | None = None,
) -> list[ScoreResult]:
    """`scoring.score_users`, followed by the verdicts of the accounts where an account trigger fired (level
    "account"), in the order their accounts first appear: what `pqlbot score --json` prints."""
    members, groups = score_members(events, rules, at, tz=tz, dispositions=dispositions)
    users = [result for result, _ in members]
    if not has_account_triggers(rules):
        return users
    lines = []
    with paused_gc():
        for key, found in accounts_of(members).items():
            # Only an account where a trigger fired has a line: the rest cost a look at their triggers, not a verdict.
            found = sorted(found, key=_user_id)  # as `score_account` judges them
            if fired := fired_triggers(found, rules, at, tz):
                lines.append(score_account(key, found, rules, at, tz, groups.get(group_of(key) or ""), fired=fired))
    return users + lines


def group_of(key: str) -> str | None:
    """The group id of a "group:<id>" key; None for a domain's."""
    return key.removeprefix("group:") if key.startswith("group:") else None


__all__ = ["Facts", "Member", "Slots", "account_member", "account_part", "account_status", "accounts_of", "facts_row",
           "fired_triggers", "group_of", "has_account_triggers", "merged_slots", "score_account",
           "score_users_and_accounts", "stopping_codes"]
