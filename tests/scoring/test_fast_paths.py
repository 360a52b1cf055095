"""The judging's fast paths give exactly what the plain paths give, on generated histories.

- a history read at once, in time order (`Tally.build`), appends plain trigger occurrences without a call and leaves
  empty trigger slots as one shared empty tuple: its tallies (slots included) and verdicts equal those of the same
  events taken in one at a time (`Tally.add`, through `Catalogue.feed`), for users and for the accounts they make;
- the scorer judges only the user triggers whose slots all hold something (`_Plan.candidates`), and of those with a
  "not completed within" wait only the ones whose first wait is over: the verdict equals the one with every user
  trigger evaluated in full;
- an account's triggers are judged only when its members' occurrences could hold every condition (enough of them,
  or enough users with one: `Condition.least`): what fires equals every account trigger evaluated in full over the
  members' merged occurrences; and `pqlbot score --json`'s account lines are made only for accounts where one
  fired, as before;
- `paused_gc` leaves nothing the bulk work made in the youngest generation, and cycles made inside it are still
  collected.

The histories are tests/scoring/test_tally.py's (every default trigger's events, out of order, ties at one instant,
across the end of daylight saving time), and small accounts of users sharing a domain or a group.
"""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import Event, paused_gc
from scoring.accounts import (
    accounts_of,
    fired_triggers,
    group_of,
    merged_slots,
    score_account,
    score_users_and_accounts,
)
from scoring.engine import judge, plan_of, score_members, score_user_and_tally
from scoring.tally import Tally
from scoring.triggers import micros
from tests.scoring.builders import DEFAULT, NY
from tests.scoring.test_tally import BASE, PLAN, RULES, histories, verdict


def one_by_one(events: list[Event], plan, user: str = "ana") -> Tally:  # noqa: ANN001
    """The tallies of a history taken in one event at a time, in time order (built again when the trial starts
    over, as ingestion does)."""
    ordered = sorted(events, key=lambda e: e.at)
    tally = Tally(plan, NY, user)
    for index, event in enumerate(ordered):
        if not tally.add([event]):
            tally = Tally.build(ordered[:index + 1], plan, NY, user, in_order=True)
    return tally


def state(tally: Tally) -> dict:
    return tally.state()


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_a_history_read_at_once_makes_the_tallies_its_events_make_one_at_a_time(history):
    events, _, at = history
    ordered = sorted(events, key=lambda e: e.at)
    at_once = Tally.build(ordered, PLAN, NY, "ana", in_order=True)
    taken_in = one_by_one(events, PLAN)
    assert [list(items) for items in at_once.slots] == [list(items) for items in taken_in.slots]
    assert state(at_once) == state(taken_in)
    assert verdict(judge(at_once, RULES, at)) == verdict(judge(taken_in, RULES, at))


def every_trigger_judged(plan):  # noqa: ANN001
    """`plan.candidates` as if there were no index and no "not completed within" wait to look at first: every user
    trigger is evaluated in full (`Catalogue.fired`)."""
    return lambda slots: tuple((name, trigger, mask, ()) for name, trigger, mask, _ in plan.user_triggers)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(min_value=0, max_value=20 * 24 * 60))
def test_judging_only_the_triggers_whose_slots_hold_something_changes_no_verdict(history, later):
    events, _, at = history
    for rules in (RULES, DEFAULT):
        plan = plan_of(rules)
        tally = Tally.build(events, plan, NY, "ana")
        for moment in (at, at + timedelta(minutes=later)):
            fast = verdict(judge(tally, rules, moment))
            plan.candidates, indexed = every_trigger_judged(plan), plan.candidates
            try:
                slow = verdict(judge(tally, rules, moment))
            finally:
                plan.candidates = indexed
            assert fast == slow


_MEMBER_KINDS = [
    ("activation_complete", lambda draw: {}),
    ("invite_sent", lambda draw: {"invitee_email": draw(st.sampled_from(["li@acme.com", "raj@globex.io",
                                                                        "mo@initech.net", "kim@umbrella.org"]))}),
    ("seats_provisioned", lambda draw: {"count": draw(st.integers(min_value=0, max_value=12))}),
    ("object_created", lambda draw: {}),
    ("session_start", lambda draw: {}),
    ("page_view", lambda draw: {"page_path": draw(st.sampled_from(["/pricing", "/docs"]))}),
    ("$group", lambda draw: {"group_id": "g1", "traits": {"employees": 700}}),
]


def _member(draw, user: str, *, signed_within: int, events: int, days: int, kinds) -> list[Event]:
    """An acme.com user signed up within `signed_within` days of BASE, with up to `events` of `kinds` over the `days`
    after."""
    signup_at = BASE + timedelta(minutes=draw(st.integers(min_value=0, max_value=signed_within * 24 * 60)))
    history = [Event("signup_complete", user, signup_at, f"{user}-s",
                     {"email": f"{user}@acme.com", "company_name": "Acme", "company_size": 800})]
    for k in range(draw(st.integers(min_value=0, max_value=events))):
        name, props = draw(st.sampled_from(kinds))
        moment = signup_at + timedelta(minutes=draw(st.integers(min_value=0, max_value=days * 24 * 60)))
        history.append(Event(name, user, moment, f"{user}-{k}", props(draw)))
    return history


@st.composite
def accounts(draw) -> tuple[dict[str, list[Event]], object]:
    """Two to six users of acme.com (some also in group g1), each with a signup and up to 25 account-trigger events
    over five weeks from two days before the autumn clock change, and a moment after all of them."""
    users: dict[str, list[Event]] = {}
    latest = BASE
    for n in range(draw(st.integers(min_value=2, max_value=6))):
        history = users[f"u{n}"] = _member(draw, f"u{n}", signed_within=14, events=25, days=21, kinds=_MEMBER_KINDS)
        latest = max(latest, *(e.at for e in history))
    return users, latest + timedelta(minutes=draw(st.integers(min_value=0, max_value=7 * 24 * 60)))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(accounts())
def test_an_account_judged_on_tallies_read_at_once_is_the_one_judged_on_tallies_taken_in_one_at_a_time(account):
    users, at = account
    plan = plan_of(DEFAULT)
    at_once, taken_in = [], []
    for user, events in users.items():
        result, tally = score_user_and_tally(events, DEFAULT, at, tz=NY)
        at_once.append((result, tally))
        taken_in.append((judge(built := one_by_one(events, plan, user), DEFAULT, at), built))
    key = at_once[0][0].account.key
    fast, slow = (score_account(key, members, DEFAULT, at, NY) for members in (at_once, taken_in))
    assert fast.to_json() == slow.to_json()
    assert (fast.qualified_at, fast.profile) == (slow.qualified_at, slow.profile)


@st.composite
def busy_accounts(draw) -> tuple[dict[str, list[Event]], object]:
    """Accounts big and busy enough for their triggers to fire: up to eight users, up to 40 events each, most of them
    the account triggers' own, and up to two whose sessions grow (or not) over three or four weeks."""
    users, at = draw(accounts())
    for n in range(draw(st.integers(min_value=0, max_value=4))):
        users[f"v{n}"] = _member(draw, f"v{n}", signed_within=10, events=40, days=9, kinds=_MEMBER_KINDS[:4])
    for n in range(draw(st.integers(min_value=0, max_value=2))):  # sessions growing, or not, week after week
        user = f"w{n}"
        history = [Event("signup_complete", user, BASE, f"{user}-s",
                         {"email": f"{user}@acme.com", "company_name": "Acme", "company_size": 800})]
        for week, count in enumerate(draw(st.lists(st.integers(min_value=0, max_value=5), min_size=3, max_size=4))):
            for k in range(count):
                moment = BASE + timedelta(days=7 * week, hours=draw(st.integers(min_value=0, max_value=6 * 24)))
                history.append(Event("session_start", user, moment, f"{user}-{week}-{k}", {}))
        users[user] = history
    return users, max(at, *(e.at for history in users.values() for e in history))


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(busy_accounts(), st.integers(min_value=-1, max_value=30 * 24 * 60))
def test_an_accounts_triggers_skipped_for_too_few_occurrences_are_those_that_could_not_fire(account, since):
    users, at = account
    members = sorted((score_user_and_tally(events, DEFAULT, at, tz=NY) for events in users.values()),
                     key=lambda m: m[0].user_id)
    since_at = None if since < 0 else BASE + timedelta(minutes=since)
    catalogue = plan_of(DEFAULT).catalogue
    lists = merged_slots(members, DEFAULT)
    every = [fired for name in plan_of(DEFAULT).account_triggers
             if (fired := catalogue.fired(name, lists, micros(at), NY,
                                          since_us=None if since_at is None else micros(since_at))) is not None]
    every.sort(key=lambda f: (-f.weight, f.trigger.response, f.at, f.name))
    assert fired_triggers(members, DEFAULT, at, NY, since=since_at) == every
    events = [e for history in users.values() for e in history]
    lines = [r for r in score_users_and_accounts(events, DEFAULT, at, tz=NY) if r.level == "account"]
    found, groups = score_members(events, DEFAULT, at, tz=NY)
    expected = [verdict for key, theirs in accounts_of(found).items()
                if (verdict := score_account(key, theirs, DEFAULT, at, NY, groups.get(group_of(key) or ""))).triggers]
    assert [line.to_json() for line in lines] == [line.to_json() for line in expected]


def _every_account_trigger(members, at):  # noqa: ANN001, ANN202
    catalogue = plan_of(DEFAULT).catalogue
    lists = merged_slots(members, DEFAULT)
    every = [fired for name in plan_of(DEFAULT).account_triggers
             if (fired := catalogue.fired(name, lists, micros(at), NY)) is not None]
    return sorted(every, key=lambda f: (-f.weight, f.trigger.response, f.at, f.name))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0, max_value=5), min_size=3, max_size=4),
       st.integers(min_value=0, max_value=4 * 24 * 60))
@example([1, 2, 4], 0).via("the fewest sessions that double twice")
@example([0, 1, 2, 4], 60).via("the same, a week later")
@example([1, 2, 3], 0).via("one session short")
@example([2, 4, 8], 4 * 24 * 60).via("late in each week")
def test_usage_growth_skipped_below_its_weeks_worth_of_sessions_is_growth_that_could_not_fire(weeks, minutes):
    monday = BASE + timedelta(days=3)  # Mon 2 Nov 2026, the day after the clocks went back
    history = [Event("signup_complete", "ana", monday, "s", {"email": "ana@acme.com", "company_size": 800})]
    for week, count in enumerate(weeks):
        history += [Event("session_start", "ana", monday + timedelta(days=7 * week, minutes=minutes + k), f"{week}-{k}",
                          {}) for k in range(count)]
    at = monday + timedelta(days=7 * len(weeks) - 1)
    members = [score_user_and_tally(history, DEFAULT, at, tz=NY)]
    assert fired_triggers(members, DEFAULT, at, NY) == _every_account_trigger(members, at)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_paused_gc_leaves_no_young_objects_behind_and_still_collects_cycles_made_inside_it():
    gc.collect()
    with paused_gc():
        kept = [{"n": n} for n in range(20_000)]  # what a bulk rescore keeps: verdicts, tallies
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle, dropped before the end
        gone = weakref.ref(a)
        del a, b
    young = gc.get_objects(generation=0)
    assert not any(obj is kept[0] for obj in young)  # no scan of the work's objects at the next allocation
    assert len(young) < 1_000
    assert gone() is not None  # the cycle waits for a collection...
    gc.collect()
    assert gone() is None  # ...and one collects it
    assert len(kept) == 20_000
