"""Running tallies give the verdict reading the whole history gives, however the history arrives.

Generated histories (signups, activation, invites, integrations, billing and other page views, asks, checkouts,
tickets, opt-outs, conversions, identify and group calls, the trigger catalogue's events (upgrade clicks, plan
comparisons, SSO set-ups started and completed, failing integrations, security documents, enterprise features,
onboarding, seats), with the company size, industry and plan the band and ACV
potential read; out of order, ties at one instant, across the end of daylight saving time) arrive in random groups.
Each group is added to tallies that went through the store's JSON in between, and built again from everything so far
whenever a group restarts the trial, as ingestion does. The verdict on those tallies must equal `score_user` on the
whole history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import Event, score_user
from scoring.accounts import account_part, stored_part
from scoring.engine import judge, plan_of
from scoring.tally import Tally
from tests.scoring.builders import NY, rules_with

RULES = rules_with(**{"acv.plan": {"team": 1.5}})  # the seed's model, with a plan that moves the ACV potential
PLAN = plan_of(RULES)
#: Two days before New York leaves daylight saving time (Sun 1 Nov 2026, 02:00).
BASE = datetime(2026, 10, 30, 13, 0, tzinfo=UTC)

_KINDS = [  # the signup first; the rest drawn by weight
    ("signup_complete", lambda draw: {"email": draw(st.sampled_from(["ana@acme.com", "bo@gmail.com", "test@x.io"])),
                                   "company_name": draw(st.sampled_from([None, "Acme"])),
                                   "company_size": draw(st.sampled_from([None, 50, 800, 1999, 5000])),
                                   "plan": draw(st.sampled_from([None, "trial", "Team"]))}),
    ("activation_complete", lambda draw: {}),
    ("invite_sent", lambda draw: {"invitee_email": draw(st.sampled_from(["li@acme.com", "LI@acme.com ", "raj@acme.com",
                                                                        None]))}),
    ("integration_connected", lambda draw: {"integration_type": draw(st.sampled_from(["dbt", "DBT", "Snowflake",
                                                                                     "slack"]))}),
    ("page_view", lambda draw: {"page_path": draw(st.sampled_from(["/pricing", "/billing/plans", "/docs", "/"]))}),
    ("session_start", lambda draw: {}),
    ("demo_requested", lambda draw: {}),
    ("contact_sales_requested", lambda draw: {}),
    ("checkout_started", lambda draw: {}),
    ("checkout_completed", lambda draw: {}),
    ("trial_converted", lambda draw: {"plan": "team"}),
    ("support_ticket_opened", lambda draw: {"ticket_id": draw(st.sampled_from(["T1", "T2", None]))}),
    ("support_ticket_closed", lambda draw: {"ticket_id": draw(st.sampled_from(["T1", "T2", None]))}),
    ("sales_opt_out", lambda draw: {}),
    ("$identify", lambda draw: {"email": draw(st.sampled_from(["ana@acme.com", "ana@globex.com", "nope"])),
                             "name": "Ana Ruiz", "company": {"employee_count": draw(st.sampled_from([300, 9000]))},
                             "industry": draw(st.sampled_from([None, "Fintech", "retail"])),
                             "plan": draw(st.sampled_from([None, "team"]))}),
    ("$group", lambda draw: {"group_id": draw(st.sampled_from(["g1", "g2"])), "traits": {"employees": 700}}),
    # The default rules' trigger events (seeds 000 and 001).
    ("upgrade_clicked", lambda draw: {}),
    ("usage_limit_hit", lambda draw: {}),
    ("plan_comparison_viewed", lambda draw: {}),
    ("sso_config_started", lambda draw: {}),
    ("sso_config_completed", lambda draw: {}),
    ("security_doc_downloaded", lambda draw: {}),
    ("integration_failed", lambda draw: {"integration_type": "salesforce"}),
    ("enterprise_feature_accessed", lambda draw: {"feature": draw(st.sampled_from(["sso", "Audit_Log", "reports"]))}),
    ("onboarding_completed", lambda draw: {"level": draw(st.sampled_from(["basic", "advanced"]))}),
    ("seats_provisioned", lambda draw: {"count": draw(st.integers(min_value=0, max_value=12))}),
]
_WEIGHTS = [0, 3, 6, 6, 6, 5, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 2, 1, 1, 1, 2, 1, 1, 1]


@st.composite
def histories(draw, *, signups: int = 1) -> tuple[list[Event], list[list[Event]], datetime]:
    """A user's events in the order they arrive, that order cut into groups, and a moment after all of them.

    One signup (at minute 0) by default, with the rest of the trial around it; `signups` more start trials over."""
    count = draw(st.integers(min_value=1, max_value=40))
    events = []
    instants = draw(st.lists(st.integers(min_value=-24 * 60, max_value=12 * 24 * 60), min_size=count,
                             max_size=count))
    for n, minutes in enumerate(instants):
        index = draw(st.sampled_from([i for i, w in enumerate(_WEIGHTS) for _ in range(w)]))
        name, props = _KINDS[index]
        if draw(st.booleans()) and n:  # another event at the very same instant
            minutes = instants[draw(st.integers(min_value=0, max_value=n - 1))]
        events.append(Event(name, "ana", BASE + timedelta(minutes=minutes), f"m{n}", props(draw)))
    for n in range(signups):
        minutes = 0 if n == 0 else draw(st.integers(min_value=-24 * 60, max_value=12 * 24 * 60))
        signup = Event("signup_complete", "ana", BASE + timedelta(minutes=minutes), f"s{n}", _KINDS[0][1](draw))
        events.insert(draw(st.integers(min_value=0, max_value=len(events))), signup)
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(events) - 1)), max_size=8)))
    groups = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=False) if events[a:b]]
    at = max(e.at for e in events) + timedelta(minutes=draw(st.integers(min_value=0, max_value=30 * 24 * 60)))
    return events, groups, at


def as_stored(tally: Tally) -> Tally:
    """The tallies after a trip through the store: JSON text and back."""
    restored = Tally.restore(json.loads(json.dumps(tally.state())), PLAN, NY, tally.user_id)
    assert restored is not None
    return restored


def incrementally(groups: list[list[Event]]) -> Tally:
    tally, so_far = Tally(PLAN, NY, "ana"), []
    for group in groups:
        so_far += group
        if not tally.add(group):
            tally = Tally.build(so_far, PLAN, NY, "ana")
        tally = as_stored(tally)
    return tally


def verdict(result) -> dict:
    return {**result.to_json(), "qualified_at": result.qualified_at, "profile": result.profile}


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_tallies_added_group_by_group_give_the_verdict_of_the_whole_history(history):
    events, groups, at = history
    whole = score_user(events, RULES, at, tz=NY)
    assert verdict(judge(incrementally(groups), RULES, at)) == verdict(whole)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=3).flatmap(lambda n: histories(signups=n)))
def test_the_same_holds_with_no_signup_yet_or_trials_that_start_over(history):
    events, groups, at = history
    whole = score_user(events, RULES, at, tz=NY)
    assert verdict(judge(incrementally(groups), RULES, at)) == verdict(whole)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(histories())
def test_tallies_built_from_any_order_of_the_history_give_the_same_verdict(history):
    events, _, at = history
    ordered = sorted(events, key=lambda e: e.at)  # ties keep the order they arrived in
    assert verdict(judge(Tally.build(events, PLAN, NY, "ana"), RULES, at)) == \
        verdict(judge(Tally.build(ordered, PLAN, NY, "ana", in_order=True), RULES, at))


def test_a_newer_signup_after_other_events_asks_for_the_tallies_to_be_built_again():
    first = Event("signup_complete", "ana", BASE, "m0", {"email": "ana@acme.com", "company_size": 800})
    tally = Tally.build([first, Event("session_start", "ana", BASE + timedelta(hours=1), "m1", {})], PLAN, NY)
    again = Event("signup_complete", "ana", BASE + timedelta(days=20), "m2", {"email": "ana@acme.com"})
    assert tally.add([again]) is False
    older = Event("signup_complete", "ana", BASE - timedelta(days=1), "m3", {"email": "ana@acme.com"})
    assert tally.add([older]) is True  # an earlier trial's signup changes nothing


def test_a_verdict_before_the_latest_event_is_refused_not_guessed():
    tally = Tally.build([Event("session_start", "ana", BASE, "m0", {})], PLAN, NY, "ana")
    try:
        judge(tally, RULES, BASE - timedelta(minutes=1))
    except ValueError as error:
        assert "latest event" in str(error)
    else:
        raise AssertionError("judged as of a moment before an event it holds")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(histories())
def test_what_an_account_reads_of_stored_tallies_is_what_it_reads_of_them_restored_whole(history):
    # A live group's roll-up reads its members' stored tallies for their account slots alone (`stored_part`).
    events, _, _ = history
    state = json.loads(json.dumps(Tally.build(events, PLAN, NY, "ana").state()))
    whole, part = account_part(Tally.restore(state, PLAN, NY, "ana"), RULES), stored_part(state, RULES)
    assert (part.slots, part.latest) == (whole.slots, whole.latest)


def test_an_activation_stored_is_read_back_by_its_account():
    events = [Event("signup_complete", "ana", BASE, "s0", {"email": "ana@acme.io"}),
              Event("activation_complete", "ana", BASE + timedelta(hours=2), "m1", {})]
    state = json.loads(json.dumps(Tally.build(events, PLAN, NY, "ana").state()))
    part = stored_part(state, RULES)
    assert [len(items) for items in part.slots if items] == [1]  # team activation's slot: Ana's activation
    assert part.latest == BASE + timedelta(hours=2)
    assert stored_part({**state, "v": 0}, RULES) is None


def test_tallies_made_under_other_rules_are_not_restored():
    state = Tally.build([Event("session_start", "ana", BASE, "m0", {})], PLAN, NY, "ana").state()
    assert Tally.restore({**state, "v": 0}, PLAN, NY, "ana") is None
    assert Tally.restore({**state, "counters": state["counters"][:-1]}, PLAN, NY, "ana") is None
