"""The review contradictions issue 19 found, as a sales manager would: each pinned by a test."""

from __future__ import annotations

from dataclasses import replace

from bot import store
from bot.review import build, text
from bot.services.metrics import compute
from tests.review.test_review import empty_week
from tests.services.test_metrics import ANA, CALENDAR, NOW, NY, W45, Rows, ny, the_week

ALL_GOOD = "Everything measured is on target"


def on_target(**changes):
    """A week where every figure with a target meets it, on enough leads to judge by."""
    return replace(empty_week(), pqls=40, per_rep_per_day=4.0, by_tier={"high": 40}, acceptance=0.6, decided=40,
                   accepted=24, sla_compliance=0.9, sla_met=36, sla_due=40, **changes)


def test_a_flagged_trial_to_paid_is_never_followed_by_everything_on_target():
    # The demo week: trial-to-paid 6.2% (1 of 16 trials) flagged below its 15% target, too few trials to act on.
    review = build(on_target(pql_conversion=1 / 16, pql_converted=1, pql_cohort=16))
    assert review.figure("pql_conversion").status == "warn"
    assert not any(ALL_GOOD in item for item in review.actions)
    [item] = review.actions
    assert "Trial-to-paid, PQL cohort is flagged above, with too few leads behind it" in item
    assert ALL_GOOD in build(on_target()).actions[0]  # nothing flagged: all is well, and said


def test_trial_to_paid_below_target_on_enough_trials_is_an_action_item():
    review = build(on_target(pql_conversion=3 / 40, pql_converted=3, pql_cohort=40))
    assert any("Trial-to-paid in the PQL cohort is 7.5% (3 of 40" in item for item in review.actions)


def test_no_lift_action_from_a_single_contacted_lead():
    lonely = on_target(assisted_lift=-0.25, contacted=1, uncontacted=30, contacted_conversion=0.0,
                       uncontacted_conversion=0.25)
    assert not any("convert no better" in item for item in build(lonely).actions)
    enough = replace(lonely, contacted=20)
    assert any("convert no better" in item for item in build(enough).actions)


def test_acceptance_counts_only_leads_a_rep_worked_not_a_self_serve_conversion_nobody_touched(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        lead = rows.lead("solo", ny(11, 3, 10), rep=ANA)
        rows.converts("solo", ny(11, 4, 12), 49, lead)  # converted on their own: nobody claimed or touched it
    with store.session(engine) as session:
        week = compute(session, W45, calendar=CALENDAR, reps=1, now=NOW)
    assert week.dispositions == {"converted_self_serve": 1}
    assert (week.acceptance, week.decided) == (None, 0)  # not "100% (1 of 1)"
    shown = text(build(week, cap=5, as_of=NOW), NY)
    assert "➖ Acceptance (Meeting Set + Converted): no data" in shown
    assert "Dark funnel (converted with no touch): 100% (1 of 1 routed and converted)" in shown


def test_every_percentage_the_review_shows_carries_its_count(engine):
    with store.session(engine) as session, session.begin():
        the_week(session)
    with store.session(engine) as session:
        review = build(compute(session, W45, calendar=CALENDAR, reps=2, now=NOW), cap=5, as_of=NOW)
    bare = [f.name for f in review.figures if f.shown and f.unit in ("rate", "pp") and f.value is not None
            and not f.detail]
    assert bare == []
    assert review.figure("sla").detail == "2 of 5 due"
    assert review.figure("reply_rate").detail == "1 of 3 emails"


def test_average_touches_to_conversion_is_reported(engine):
    with store.session(engine) as session, session.begin():
        the_week(session)
        rows = Rows(session)
        extra = rows.lead("u9", ny(11, 3, 11), rep=ANA)
        for hour in (12, 13, 14):
            rows.touch(extra, ny(11, 3, hour))
        rows.converts("u9", ny(11, 5, 9), 20, extra)
    with store.session(engine) as session:
        week = compute(session, W45, calendar=CALENDAR, reps=2, now=NOW)
    assert week.touches_to_conversion == 2.0  # L1 after 1 touch, u9 after 3
    assert "• Average touches to conversion: 2.0 (2 converted after a touch)" in text(build(week, cap=5), NY)
