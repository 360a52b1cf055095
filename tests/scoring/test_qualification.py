"""Who qualifies, with what score and tier: the seed 002 model, its gates, signals and boundaries."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scoring import Status, Tier, score_users
from tests.scoring.builders import NY, Trial, qualified_medium, rules_with, sarah

DAY_8 = datetime(2026, 11, 9, 18, 0, tzinfo=NY)


def test_seed_sarah_is_a_medium_pql_with_six_points():
    result = sarah().score(DAY_8)
    assert result.status is Status.QUALIFIED
    assert (result.score, result.max_score, result.tier) == (6, 10, Tier.MEDIUM)
    assert {s.name for s in result.signals if s.points} == {"invites", "integration"}
    invites = next(s for s in result.signals if s.name == "invites")
    assert (invites.day, invites.evidence) == (5, "invited 2 teammates")
    assert result.strongest_signal == "integration"  # ties at 3 points go to the higher-ranked signal
    assert result.account.company_name == "Acme Corp" and result.account.domain == "acme.com"


def test_seed_tom_at_a_fifty_person_startup_is_excluded_for_company_size():
    tom = Trial("tom", email="tom@tinyco.io", company="TinyCo", size=50).activate(1)
    result = tom.score(DAY_8)
    assert result.status is Status.EXCLUDED
    assert [r.code for r in result.reasons] == ["company_size_out_of_range"]
    assert "50" in result.reasons[0].detail and result.tier is None


def test_points_do_not_count_before_activation():
    result = Trial().invite(2).integrate(3).score(DAY_8)
    assert result.status is Status.BELOW_THRESHOLD
    assert result.score == 0
    assert "not_activated" in [r.code for r in result.reasons]
    assert {"invites", "integration"} <= {s.name for s in result.signals}  # still shown, for context


def test_activation_after_the_window_does_not_open_the_gate():
    result = Trial().invite(2).integrate(3).activate(11).score(DAY_8 + timedelta(days=4))
    assert result.status is Status.BELOW_THRESHOLD and result.score == 0


@pytest.mark.parametrize(
    ("size", "status"),
    [(199, Status.EXCLUDED), (200, Status.QUALIFIED), (2000, Status.QUALIFIED), (2001, Status.EXCLUDED)],
)
def test_icp_company_size_is_200_to_2000_inclusive(size, status):
    trial = Trial(size=size).activate(1).invite(2).integrate(2)
    assert trial.score(DAY_8).status is status


def test_unknown_company_size_is_an_exclusion_with_its_own_reason():
    result = Trial(size=None).activate(1).invite(2).integrate(2).score(DAY_8)
    assert result.status is Status.EXCLUDED
    assert [r.code for r in result.reasons] == ["company_size_unknown"]


def test_one_signal_alone_stays_below_threshold():
    result = Trial().activate(1).integrate(1).score(DAY_8)
    assert (result.status, result.score, result.tier) == (Status.BELOW_THRESHOLD, 3, None)


def test_all_four_signals_make_a_high_priority_ten():
    trial = Trial().activate(1).invite(2).integrate(3).view(2).view(4).session(3)
    result = trial.score(DAY_8)
    assert (result.status, result.score, result.tier) == (Status.QUALIFIED, 10, Tier.HIGH)


def test_seven_points_is_high_and_six_is_medium():
    seven = Trial().activate(1).invite(1).view(2).view(3)  # 3 + 2 + 2 (three active days)
    assert (seven.score(DAY_8).score, seven.score(DAY_8).tier) == (7, Tier.HIGH)
    assert qualified_medium().score(DAY_8).tier is Tier.MEDIUM


def test_invites_count_distinct_invitees():
    trial = Trial().activate(1).invite(2, "a@acme.com").invite(2, "A@acme.com").invite(3, "b@acme.com")
    invites = next(s for s in trial.score(DAY_8).signals if s.name == "invites")
    assert invites.evidence == "invited 2 teammates"


def test_integrations_are_named_in_the_evidence():
    trial = Trial().activate(1).integrate(2, "Snowflake").integrate(2, "dbt").integrate(3, "snowflake")
    integration = next(s for s in trial.score(DAY_8).signals if s.name == "integration")
    assert integration.evidence == "connected Snowflake and dbt"


def test_two_billing_views_on_one_day_do_not_count_but_on_two_days_do():
    one_day = Trial().activate(1).view(3, hour=10).view(3, "/billing", hour=16)
    two_days = Trial().activate(1).view(3, hour=10).view(4, "/billing", hour=16)
    assert "billing" not in {s.name for s in one_day.score(DAY_8).signals}
    billing = next(s for s in two_days.score(DAY_8).signals if s.name == "billing")
    assert (billing.points, billing.day) == (2, 4)


@pytest.mark.parametrize(
    ("path", "counts"),
    [("/pricing", True), ("/billing/", True), ("/Pricing?plan=team", True), ("/billing/invoices", True),
     ("/pricing-faq", False), ("/dashboard", False)],
)
def test_billing_paths_match_the_path_and_below_it(path, counts):
    result = Trial().activate(1).view(2, path).view(3, path).score(DAY_8)
    assert ("billing" in {s.name for s in result.signals}) is counts


def test_any_event_counts_toward_multi_day_usage():
    trial = Trial().activate(1).add("report_exported", Trial().on(2)).session(3)
    multi = next(s for s in trial.score(DAY_8).signals if s.name == "multi_day")
    assert (multi.points, multi.day) == (2, 3)


def test_an_event_at_nine_days_twenty_three_hours_counts_and_at_ten_days_does_not():
    base = Trial()
    start = base.signup
    inside = Trial().activate(1).invite(2).add("integration_connected", start + timedelta(days=9, hours=23),
                                                integration_type="dbt")
    edge = Trial().activate(1).invite(2).add("integration_connected", start + timedelta(days=10),
                                              integration_type="dbt")
    at = start + timedelta(days=10, hours=1)
    assert inside.score(at).status is Status.QUALIFIED
    assert edge.score(at).status is Status.BELOW_THRESHOLD


def test_events_before_signup_or_after_at_are_ignored():
    trial = Trial().activate(1).invite(2)
    trial.add("integration_connected", trial.signup - timedelta(hours=1), integration_type="dbt")
    trial.add("integration_connected", trial.on(6), integration_type="dbt")
    assert trial.score(trial.on(5)).status is Status.BELOW_THRESHOLD
    assert trial.score(trial.on(6, 16)).status is Status.QUALIFIED


def test_distinct_days_are_calendar_dates_in_the_team_timezone():
    # 22:30 New York on Nov 3 is already Nov 4 in UTC, where it shares a date with 09:00 Nov 4.
    trial = Trial().activate(1)
    trial.add("session_start", datetime(2026, 11, 3, 22, 30, tzinfo=NY))
    trial.add("session_start", datetime(2026, 11, 4, 9, 0, tzinfo=NY))
    in_new_york = trial.score(DAY_8)
    assert "multi_day" in {s.name for s in in_new_york.signals}  # Nov 2, 3, 4
    trial.tz = ZoneInfo("UTC")
    assert "multi_day" not in {s.name for s in trial.score(DAY_8).signals}  # Nov 2 and Nov 4 only


def test_trial_days_follow_local_dates_across_the_dst_change():
    # US clocks fall back on Sunday 1 Nov 2026; a Friday signup is still on day 3 late on Sunday.
    friday = datetime(2026, 10, 30, 17, 0, tzinfo=NY)
    trial = Trial(signup=friday).activate(1)
    late_sunday = datetime(2026, 11, 1, 23, 30, tzinfo=NY)
    result = trial.score(late_sunday)
    assert (result.trial_day, result.days_left) == (3, 12)


def test_trial_day_and_days_left_count_today():
    trial = qualified_medium()
    first = trial.score(trial.on(1, 18))
    last = trial.score(trial.on(14, 9))
    assert (first.trial_day, first.days_left) == (1, 14)
    assert (last.trial_day, last.days_left) == (14, 1)


def test_trial_ends_at_overrides_the_default_length():
    ends = datetime(2026, 11, 9, 5, 0, tzinfo=UTC)  # midnight in New York: the last day is Sun 8 Nov
    trial = Trial(trial_ends_at=ends.isoformat()).activate(1).invite(2).integrate(2)
    result = trial.score(trial.on(4))
    assert result.days_left == 4 and result.profile.trial_ends_on.isoformat() == "2026-11-08"


def test_a_user_crossing_from_medium_to_high_is_upgraded_when_the_next_signal_lands():
    trial = Trial().activate(1).invite(1).integrate(1).view(6).view(7)
    assert trial.score(trial.on(6, 18)).tier is Tier.MEDIUM
    assert trial.score(trial.on(7, 18)).tier is Tier.HIGH


def test_qualified_at_is_when_the_threshold_was_crossed():
    trial = Trial().activate(1).invite(2, hour=11).integrate(4, hour=9).invite(5, "c@acme.com")
    assert trial.score(DAY_8).qualified_at == trial.on(4, 9)


def test_scoring_a_crowd_scores_each_user_from_their_own_events():
    ana, tom = qualified_medium(), Trial("tom", email="tom@tinyco.io", size=50).activate(1)
    results = {r.user_id: r for r in score_users(ana.events + tom.events, rules_with(), DAY_8, tz=NY)}
    assert results["ana"].status is Status.QUALIFIED and results["tom"].status is Status.EXCLUDED


def test_events_for_a_user_without_signup_wait_for_it():
    early = Trial().activate(1).invite(2).integrate(2)
    without_signup = early.events[1:]
    result = score_users(without_signup, rules_with(), DAY_8, tz=NY)[0]
    assert result.status is Status.EXCLUDED and result.reasons[0].code == "no_signup"


def test_scoring_needs_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        qualified_medium().score(datetime(2026, 11, 9))


def test_signals_are_listed_in_the_order_they_happened():
    trial = Trial().integrate(2).activate(3).invite(4)
    trial.add("demo_requested", trial.on(1, 16))
    days = [(s.day, s.name) for s in trial.score(DAY_8).signals if s.name != "multi_day"]
    assert days == [(1, "explicit_ask"), (2, "integration"), (3, "activation"), (4, "invites")]
