"""Who is kept away from reps and why: exclusions, the single-day hold, do-not-touch states, the fast lane."""

from datetime import datetime, timedelta

import pytest

from scoring import PriorDisposition, Status, Tier
from tests.scoring.builders import NY, Trial, qualified_medium, rules_with

DAY_8 = datetime(2026, 11, 9, 18, 0, tzinfo=NY)


def codes(result):
    return [r.code for r in result.reasons]


def good(**kwargs):
    """A lead who would qualify (medium, 6 points) but for what the test adds."""
    return Trial(**kwargs).activate(1).invite(2).integrate(2)


# Exclusions ------------------------------------------------------------------------------------------

def test_personal_email_without_a_company_is_excluded():
    result = good(email="ana@gmail.com", company=None).score(DAY_8)
    assert result.status is Status.EXCLUDED and codes(result) == ["personal_email_domain"]


def test_personal_email_with_a_resolved_company_is_kept():
    assert good(email="ana@proton.me", company="Acme Corp").score(DAY_8).status is Status.QUALIFIED


@pytest.mark.parametrize("email", ["test@acme.com", "demo@acme.com", "ana+test@acme.com"])
def test_test_and_demo_signups_are_excluded(email):
    result = good(email=email).score(DAY_8)
    assert result.status is Status.EXCLUDED and codes(result) == ["test_account"]


def test_a_real_person_called_testa_is_not_a_test_account():
    assert good(email="testa@acme.com").score(DAY_8).status is Status.QUALIFIED


def test_competitor_and_internal_domains_come_from_the_rules_file():
    rules = rules_with(**{"exclusions.competitor_domains": ["rivaldata.com"],
                          "exclusions.internal_domains": ["ourco.com"]})
    rival = good(email="ana@eu.rivaldata.com").score(DAY_8, rules)
    ours = good(email="ana@ourco.com").score(DAY_8, rules)
    assert codes(rival) == ["competitor_domain"] and codes(ours) == ["internal_domain"]
    assert good(email="ana@rivaldata.com").score(DAY_8).status is Status.QUALIFIED  # default lists are empty


def test_an_already_converted_user_is_excluded():
    trial = good()
    trial.add("trial_converted", trial.on(4), plan="team", mrr=400, conversion_source="self_serve")
    result = trial.score(DAY_8)
    assert result.status is Status.EXCLUDED and "already_converted" in codes(result)


@pytest.mark.parametrize("disposition", ["disqualified", "no_response"])
def test_a_disqualified_or_no_response_disposition_this_trial_keeps_them_out(disposition):
    trial = good()
    result = trial.score(DAY_8, dispositions=(PriorDisposition(disposition, trial.on(3)),))
    assert result.status is Status.EXCLUDED and codes(result) == ["prior_disposition"]


def test_dispositions_from_an_earlier_trial_or_of_another_kind_do_not_count():
    trial = good()
    earlier = PriorDisposition("disqualified", trial.signup - timedelta(days=40))
    nurture = PriorDisposition("nurture", trial.on(3))
    assert trial.score(DAY_8, dispositions=(earlier, nurture)).status is Status.QUALIFIED


def test_fewer_than_three_days_left_without_a_billing_view_is_excluded():
    trial = good()
    assert trial.score(trial.on(12, 9)).status is Status.QUALIFIED  # 3 days left
    late = trial.score(trial.on(13, 9))  # 2 days left
    assert late.status is Status.EXCLUDED and codes(late) == ["trial_ending"]


def test_a_billing_view_keeps_a_late_lead_routable():
    trial = good().view(9)
    assert trial.score(trial.on(13, 9)).status is Status.QUALIFIED


def test_nobody_is_routed_after_the_trial_ends():
    trial = good().view(9)
    result = trial.score(trial.on(15, 9))
    assert (result.status, result.days_left) == (Status.EXCLUDED, 0) and codes(result) == ["trial_ended"]


def test_every_exclusion_reason_is_listed():
    result = good(email="test@gmail.com", company=None, size=40).score(DAY_8)
    assert set(codes(result)) == {"company_size_out_of_range", "personal_email_domain", "test_account"}


# The single-day hold ---------------------------------------------------------------------------------

# With the seed's weights a 4 needs billing views (2 days) and multi-day usage (3 days), so it can never
# be single-day; teams that recalibrate can make it so. Here invites are worth 2 and one billing day is enough.
ONE_DAY_RULES = rules_with(**{"signals.invites.points": 2, "signals.billing.min_days": 1})


def one_day_explorer():
    return Trial().activate(1, 10).invite(1, hour=11).view(1, hour=12).view(1, hour=13)


def test_a_threshold_score_on_a_single_day_is_held_for_24_hours():
    trial = one_day_explorer()
    result = trial.score(trial.on(2, 11), ONE_DAY_RULES)
    assert (result.status, result.score, result.tier) == (Status.HELD, 4, Tier.MEDIUM)


def test_a_held_lead_becomes_monitor_when_nothing_new_arrives():
    trial = one_day_explorer()
    result = trial.score(trial.on(2, 13, 1), ONE_DAY_RULES)
    assert (result.status, result.tier) == (Status.MONITOR, None)


def test_a_signal_on_another_day_releases_the_hold():
    trial = one_day_explorer().invite(2, "c@acme.com", hour=9)
    assert trial.score(trial.on(2, 10), ONE_DAY_RULES).status is Status.QUALIFIED


def test_a_score_above_the_threshold_is_never_held():
    trial = one_day_explorer().integrate(1, hour=13)
    assert trial.score(trial.on(1, 14), ONE_DAY_RULES).status is Status.QUALIFIED


# Do not touch (seed 001) -----------------------------------------------------------------------------

def test_an_open_checkout_is_left_alone_for_24_hours():
    trial = good()
    trial.add("checkout_started", trial.on(5, 10))
    during = trial.score(trial.on(6, 9))
    assert during.status is Status.DO_NOT_TOUCH and codes(during) == ["checkout_in_progress"]
    assert "23 h" in during.reasons[0].detail
    assert trial.score(trial.on(6, 10, 1)).status is Status.QUALIFIED  # abandoned for 24 h


def test_a_completed_upgrade_is_left_alone_for_48_hours():
    trial = good()
    trial.add("checkout_started", trial.on(5, 10)).add("checkout_completed", trial.on(5, 10, 5))
    assert codes(trial.score(trial.on(7, 10))) == ["recently_upgraded"]
    assert trial.score(trial.on(7, 10, 6)).status is Status.QUALIFIED


def test_an_open_support_ticket_blocks_outreach_until_it_is_closed():
    trial = good()
    trial.add("support_ticket_opened", trial.on(3), ticket_id="T-1")
    trial.add("support_ticket_opened", trial.on(3, 16), ticket_id="T-2")
    trial.add("support_ticket_closed", trial.on(4), ticket_id="T-1")
    assert codes(trial.score(trial.on(4, 18))) == ["support_ticket_open"]
    trial.add("support_ticket_closed", trial.on(5), ticket_id="T-2")
    assert trial.score(trial.on(5, 18)).status is Status.QUALIFIED


def test_an_opt_out_is_respected_for_the_rest_of_the_trial():
    trial = good()
    trial.add("sales_opt_out", trial.on(2, 18))
    result = trial.score(trial.on(9))
    assert result.status is Status.DO_NOT_TOUCH and codes(result) == ["opted_out"]
    assert result.tier is Tier.MEDIUM  # what it would have been, for the record


def test_do_not_touch_reasons_are_listed_for_leads_below_threshold_too():
    trial = Trial().activate(1)
    trial.add("sales_opt_out", trial.on(2))
    result = trial.score(DAY_8)
    assert result.status is Status.BELOW_THRESHOLD and codes(result) == ["opted_out"]


# Fast lane (seed 000) -------------------------------------------------------------------------------

@pytest.mark.parametrize("ask", ["demo_requested", "contact_sales_requested"])
def test_an_explicit_ask_from_an_icp_fit_user_is_fast_lane_whatever_the_points(ask):
    trial = Trial()
    trial.add(ask, trial.on(2, 11))
    result = trial.score(trial.on(2, 12))
    assert (result.status, result.tier, result.strongest_signal) == (Status.QUALIFIED, Tier.FAST_LANE, "explicit_ask")
    assert result.qualified_at == trial.on(2, 11) and result.score == 0
    assert result.reasons == ()  # not activated, and that is fine for an explicit ask
    assert result.signals[0].evidence in {"requested a demo", "asked to talk to sales"}


@pytest.mark.parametrize(("size", "band"), [(12, "smb"), (800, "mid_market"), (5000, "enterprise"),
                                             (None, "unknown")])
def test_an_explicit_ask_is_fast_lane_below_inside_and_above_the_icp_and_with_no_size_known(size, band):
    trial = Trial(size=size)
    trial.add("demo_requested", trial.on(2, 11))
    result = trial.score(trial.on(2, 12))
    assert (result.status, result.tier, result.qualified_at) == (Status.QUALIFIED, Tier.FAST_LANE, trial.on(2, 11))
    assert result.reasons == ()  # outside the ICP, or no size at all, is no reason against an explicit ask
    assert (result.band, result.company_size) == (band, size)


def test_points_outside_the_icp_are_still_excluded_without_an_ask():
    for size in (12, 5000, None):
        assert good(size=size).score(DAY_8).status is Status.EXCLUDED


def test_an_ask_from_a_personal_email_with_no_company_is_fast_lane():
    personal = Trial(email="ana@gmail.com", company=None, size=None)
    personal.add("contact_sales_requested", personal.on(2))
    result = personal.score(DAY_8)
    assert (result.status, result.tier, result.reasons) == (Status.QUALIFIED, Tier.FAST_LANE, ())


def test_a_personal_email_domain_is_nobodys_account_domain():
    personal = Trial(email="ana@gmail.com", company="Acme Corp")
    personal.add("demo_requested", personal.on(2))
    assert personal.score(DAY_8).account.domain is None  # its users are not each other's colleagues
    assert good().score(DAY_8).account.domain == "acme.com"


def test_an_ask_two_days_before_the_trial_ends_is_fast_lane_though_points_would_be_too_late():
    trial = good(size=5000)
    trial.add("demo_requested", trial.on(13, 9))
    assert trial.score(trial.on(13, 10)).tier is Tier.FAST_LANE
    assert good().score(trial.on(13, 10)).status is Status.EXCLUDED  # trial_ending, for points


@pytest.mark.parametrize("size", [12, 800, 5000, None])
def test_an_opt_out_still_stops_an_explicit_ask_at_any_size(size):
    trial = Trial(size=size)
    trial.add("demo_requested", trial.on(2)).add("sales_opt_out", trial.on(3))
    result = trial.score(DAY_8)
    assert result.status is Status.DO_NOT_TOUCH and codes(result) == ["opted_out"]


PROTECTIVE = {
    "test_account": dict(email="test@acme.com"),
    "competitor_domain": dict(email="ana@rivaldata.com"),
    "internal_domain": dict(email="ana@ourco.com"),
    "email_unknown": dict(email=None),
}


@pytest.mark.parametrize("size", [12, 5000, None])
@pytest.mark.parametrize("code", [*PROTECTIVE, "already_converted", "prior_disposition", "trial_ended"])
def test_exclusions_that_protect_people_still_stop_an_explicit_ask_with_every_reason_listed(code, size):
    rules = rules_with(**{"exclusions.competitor_domains": ["rivaldata.com"],
                          "exclusions.internal_domains": ["ourco.com"]})
    trial = Trial(size=size, **PROTECTIVE.get(code, {}))
    trial.add("demo_requested", trial.on(2))
    dispositions, at = (), DAY_8
    if code == "already_converted":
        trial.add("trial_converted", trial.on(3), plan="team")
    elif code == "prior_disposition":
        dispositions = (PriorDisposition("no_response", trial.on(1, 16)),)
    elif code == "trial_ended":
        at = trial.on(15, 9)
    result = trial.score(at, rules, dispositions)
    assert result.status is Status.EXCLUDED and code in codes(result)
    assert {"company_size_out_of_range", "company_size_unknown"} & set(codes(result))  # every reason, as ever


def test_the_fast_lane_still_respects_do_not_touch():
    checkout = Trial(size=5000)
    checkout.add("demo_requested", checkout.on(2)).add("checkout_started", checkout.on(2, 16))
    assert checkout.score(checkout.on(2, 17)).status is Status.DO_NOT_TOUCH


def test_the_fast_lane_beats_the_points_tier():
    trial = qualified_medium()
    trial.add("contact_sales_requested", trial.on(4))
    assert trial.score(DAY_8).tier is Tier.FAST_LANE
