"""Triggers in the verdict (seeds 000 and 001): what fires, at which edges of its window, what it qualifies, at which
tier and family, what stops it, and what a rep reads of it.

Trial stories use tests/scoring/builders.py: New York, day 1 the signup date. The catalogue's triggers are the default
rules' (scoring/default_rules.toml); the language's edges are shown with small rules files of one trigger each.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scoring import DEFAULT_RULES, PriorDisposition, Rules, Status, Tier, score_user
from scoring.engine import judge, plan_of
from scoring.tally import Tally
from scoring.triggers import Level
from tests.scoring.builders import DEFAULT, NY, Trial, rules_with

US = timedelta(microseconds=1)
UTC_ZONE = ZoneInfo("UTC")
#: For the language's edges, trials long enough that no trial clock gets in the way.
LONG = {"trial_ends_at": "2027-01-01T00:00:00Z"}


def with_trigger(name: str = "probe", **trigger) -> Rules:
    """The default rules with one trigger more (a user trigger of tier 1 unless told)."""
    data = tomllib.loads(DEFAULT_RULES.read_text())
    data["triggers"][name] = {"label": "Probe", "family": "buying", "strength": "high", "response": 1,
                              "talk_track": "billing", "evidence": "probe fired", **trigger}
    return Rules.model_validate(data)


def only_trigger(name: str = "probe", **trigger) -> Rules:
    """The default rules with no trigger but this one."""
    data = tomllib.loads(DEFAULT_RULES.read_text())
    data["triggers"] = {name: {"label": "Probe", "family": "buying", "strength": "high", "response": 1,
                               "talk_track": "billing", "evidence": "probe fired", **trigger}}
    return Rules.model_validate(data)


def fired(result) -> dict[str, object]:
    return {t.name: t for t in result.triggers}


def active_buyer(trial: Trial, day: int = 2, hour: int = 9) -> Trial:
    """Three pricing views, an upgrade click and a plan comparison, within a few hours of day `day`."""
    for n in range(3):
        trial.view(day, "/pricing", hour + n)
    trial.add("upgrade_clicked", trial.on(day, hour + 3))
    trial.add("plan_comparison_viewed", trial.on(day, hour + 4))
    return trial


# -- the default catalogue, trigger by trigger ---------------------------------------------------------------------

def _limit(t: Trial) -> Trial:
    return t.add("usage_limit_hit", t.on(3, 10)).add("upgrade_clicked", t.on(3, 16))


def _comparison(t: Trial) -> Trial:
    return t.add("plan_comparison_viewed", t.on(2, 10)).view(5, "/billing/plan", 11)


def _enterprise(t: Trial) -> Trial:
    return t.add("enterprise_feature_accessed", t.on(2, 10), feature="audit_log")


def _advanced(t: Trial) -> Trial:
    return t.add("onboarding_completed", t.on(2, 10), level="advanced")


def _sso(t: Trial) -> Trial:
    return t.add("sso_config_started", t.on(1, 12))


def _failing(t: Trial) -> Trial:
    for day in (2, 3, 4):
        t.add("integration_failed", t.on(day, 10), integration_type="salesforce")
    return t


def _security(t: Trial) -> Trial:
    return t.add("security_doc_downloaded", t.on(2, 10), document="soc2")


def _stuck(t: Trial) -> Trial:
    return t.add("sso_config_started", t.on(2, 10)).add("security_doc_downloaded", t.on(3, 10))


def _pricing(t: Trial) -> Trial:
    return t.activate(1).view(2, "/pricing", 10)


def _basic(t: Trial) -> Trial:
    return t.activate(1).add("onboarding_completed", t.on(1, 16), level="basic")


# name -> (the story, when it is judged (trial day, hour), tier, family, qualified or not)
CATALOGUE = {
    "active_buyer": (lambda t: active_buyer(t.activate(1)), (2, 18), Tier.HIGH, "buying", Status.QUALIFIED),
    "limit_then_upgrade": (_limit, (3, 18), Tier.HIGH, "buying", Status.QUALIFIED),
    "plan_comparison_and_billing": (_comparison, (5, 18), Tier.MEDIUM, "buying", Status.QUALIFIED),
    "enterprise_feature": (_enterprise, (2, 18), Tier.HIGH, "buying", Status.QUALIFIED),
    "advanced_onboarding": (_advanced, (2, 18), Tier.MEDIUM, "buying", Status.QUALIFIED),
    "sso_stalled": (_sso, (8, 13), Tier.HIGH, "blocker", Status.QUALIFIED),
    "integration_failing": (_failing, (4, 18), Tier.MEDIUM, "blocker", Status.QUALIFIED),
    "security_review": (_security, (2, 18), Tier.MEDIUM, "blocker", Status.QUALIFIED),
    "stuck_enterprise": (_stuck, (8, 11), Tier.HIGH, "blocker", Status.QUALIFIED),
    "pricing_without_upgrade": (_pricing, (3, 11), None, None, Status.BELOW_THRESHOLD),
    "icp_not_activated": (lambda t: t.session(2), (8, 11), None, None, Status.BELOW_THRESHOLD),
    "basic_onboarding_no_return": (_basic, (8, 17), None, None, Status.BELOW_THRESHOLD),
}


def test_every_user_trigger_of_the_default_catalogue_is_shown_a_history_here():
    assert set(CATALOGUE) == set(DEFAULT.triggers_of(Level.USER))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_default_trigger_fires_on_a_minimal_realistic_history(name):
    story, (day, hour), tier, family, status = CATALOGUE[name]
    trial = story(Trial())
    result = trial.score(trial.on(day, hour))
    assert name in fired(result), [t.name for t in result.triggers]
    assert (result.status, result.tier, result.family) == (status, tier, family)
    met = fired(result)[name]
    assert (met.family, met.response, met.level) == (DEFAULT.triggers[name].family, DEFAULT.triggers[name].response,
                                                     "user")


def test_an_active_buyer_reads_as_what_they_did_and_picks_the_plans_talk_track():
    trial = active_buyer(Trial(size=800))  # not activated: a trigger needs no activation
    result = trial.score(trial.on(2, 18))
    assert (result.status, result.tier, result.family, result.score) == (Status.QUALIFIED, Tier.HIGH, "buying", 0)
    met = fired(result)["active_buyer"]
    assert met.evidence == "viewed pricing 3 times, clicked upgrade and compared plans within 4 h"
    assert met.weight == 4.5  # high (3) x 1.5: all within a day
    assert result.qualified_at == trial.on(2, 13)  # the plan comparison completed it
    assert result.strongest_signal == "active_buyer" and result.talk_track == "billing"
    [signal] = [s for s in result.signals if s.name == "active_buyer"]
    assert (signal.points, signal.day, signal.label) == (0, 2, "Active buyer")
    assert not any(r.code == "not_activated" for r in result.reasons)


def test_without_any_trigger_event_the_pilots_verdicts_are_the_points_models_alone():
    trial = Trial().activate(1).invite(2).integrate(2).view(2, "/docs")
    result = trial.score(trial.on(3, 18))
    assert (result.status, result.tier, result.family, result.triggers) == (Status.QUALIFIED, Tier.MEDIUM, "buying",
                                                                            ())
    assert result.strongest_signal == "integration"


# -- windows --------------------------------------------------------------------------------------------------------

def test_a_48_hour_window_holds_events_exactly_48_hours_apart_and_not_a_microsecond_more():
    trial = Trial()
    first = trial.on(2, 9)
    for n in range(3):
        trial.add("page_view", first + timedelta(minutes=n), page_path="/pricing")
    trial.add("upgrade_clicked", first + timedelta(hours=1))
    exactly = Trial()
    exactly.events = [*trial.events]
    exactly.add("plan_comparison_viewed", first + timedelta(hours=48))
    result = exactly.score(first + timedelta(hours=49))
    assert fired(result)["active_buyer"].evidence.endswith("within 48 h")
    assert result.tier is Tier.HIGH
    late = Trial()
    late.events = [*trial.events]
    late.add("plan_comparison_viewed", first + timedelta(hours=48) + US)
    assert "active_buyer" not in fired(late.score(first + timedelta(hours=49)))


def test_the_window_multiplier_weighs_clustered_events_more_and_min_weight_needs_it():
    rules = only_trigger(within="48h", window_multiplier={"24h": 1.5}, min_weight=4,
                         all=[{"event": "usage_limit_hit"}, {"event": "upgrade_clicked"}])
    tight = Trial().add("usage_limit_hit", Trial().on(2, 9)).add("upgrade_clicked", Trial().on(3, 9))  # 24 h
    assert fired(tight.score(tight.on(3, 18), rules))["probe"].weight == 4.5
    loose = Trial().add("usage_limit_hit", Trial().on(2, 9)).add("upgrade_clicked", Trial().on(3, 9, 1))
    result = loose.score(loose.on(3, 18), rules)
    assert "probe" not in fired(result)  # 24 h 1 min: weight 3, under min_weight 4
    plain = only_trigger(within="48h", window_multiplier={"24h": 1.5},
                         all=[{"event": "usage_limit_hit"}, {"event": "upgrade_clicked"}])
    assert fired(loose.score(loose.on(3, 18), plain))["probe"].weight == 3.0


def test_a_7_day_window_is_elapsed_time_so_across_the_spring_change_7_calendar_days_fit_and_in_autumn_they_do_not():
    rules = only_trigger(within="7d", all=[{"event": "integration_failed", "at_least": 2}])
    spring = Trial(signup=datetime(2026, 3, 2, 9, 0, tzinfo=NY))  # Mon; clocks go forward Sun 8 Mar
    spring.add("integration_failed", datetime(2026, 3, 2, 12, 0, tzinfo=NY))
    spring.add("integration_failed", datetime(2026, 3, 9, 12, 0, tzinfo=NY))  # 167 h later
    assert "probe" in fired(spring.score(datetime(2026, 3, 9, 13, 0, tzinfo=NY), rules))
    autumn = Trial(signup=datetime(2026, 10, 26, 9, 0, tzinfo=NY))  # Mon; clocks go back Sun 1 Nov
    autumn.add("integration_failed", datetime(2026, 10, 26, 12, 0, tzinfo=NY))
    autumn.add("integration_failed", datetime(2026, 11, 2, 12, 0, tzinfo=NY))  # 169 h later
    assert "probe" not in fired(autumn.score(datetime(2026, 11, 2, 13, 0, tzinfo=NY), rules))


def test_days_are_counted_in_the_teams_time_zone_on_the_25_hour_day():
    rules = only_trigger(within="14d", all=[{"event": "session_start", "measure": "days", "at_least": 2}])
    trial = Trial(signup=datetime(2026, 10, 31, 9, 0, tzinfo=NY))
    trial.add("session_start", datetime(2026, 11, 1, 0, 30, tzinfo=NY))
    trial.add("session_start", datetime(2026, 11, 1, 23, 30, tzinfo=NY))  # 24 h later, the same New York day
    at = datetime(2026, 11, 2, 9, 0, tzinfo=NY)
    assert "probe" not in fired(trial.score(at, rules))
    utc = Trial(signup=datetime(2026, 10, 31, 9, 0, tzinfo=NY), tz=UTC_ZONE)
    utc.events = [*trial.events]
    assert "probe" in fired(utc.score(at, rules))  # two UTC days


def test_three_active_days_across_the_spring_change_count_in_a_14_day_window():
    rules = only_trigger(within="14d", evidence="active on {days} days {span}",
                         all=[{"event": "session_start", "measure": "days", "at_least": 3}])
    first = datetime(2026, 3, 7, 23, 0, tzinfo=NY)  # Sat; the next day has 23 hours
    # 336 h later: Sun 22 Mar at 00:00 on the clock, not 23:00 on the 21st
    fourteen_days = (first.astimezone(UTC) + timedelta(days=14)).astimezone(NY)

    def story(third: datetime) -> bool:
        t = Trial(signup=datetime(2026, 3, 6, 9, 0, tzinfo=NY), **LONG)
        for moment in (first, datetime(2026, 3, 8, 23, 0, tzinfo=NY), third):
            t.add("session_start", moment)
        result = t.score(datetime(2026, 3, 22, 9, 0, tzinfo=NY), rules)
        return "probe" in fired(result) and fired(result)["probe"].evidence == "active on 3 days over 3 days"

    assert fourteen_days == datetime(2026, 3, 22, 0, 0, tzinfo=NY)
    assert story(fourteen_days)
    assert not story(fourteen_days + US)


def test_a_wait_that_ends_after_the_trial_leads_to_nothing():
    t = Trial().activate(1).add("sso_config_started", Trial().on(9, 10))  # due day 16; the trial ends on day 14
    result = t.score(t.on(16, 11))
    assert (result.status, result.triggers) == (Status.EXCLUDED, ())
    assert "trial_ended" in {r.code for r in result.reasons}
    sooner = Trial().activate(1).add("sso_config_started", Trial().on(5, 10))  # due day 12, 3 days left
    assert "sso_stalled" in fired(sooner.score(sooner.on(12, 11)))


# -- conditions -----------------------------------------------------------------------------------------------------

def test_property_filters_under_in_not_in_and_at_least():
    rules = only_trigger(within="trial", all=[
        {"event": "page_view", "where": {"page_path": {"under": "/pricing"}}},
        {"event": "enterprise_feature_accessed", "where": {"feature": {"in": ["sso", "audit_log"]}}},
        {"event": "integration_failed", "where": {"integration_type": {"not_in": ["zapier"]}}},
        {"event": "usage_limit_hit", "where": {"percent": {"at_least": 90}}},
    ])

    def story(path="/Pricing/enterprise?x=1", feature="SSO", kind="salesforce", percent=90) -> bool:
        t = Trial().view(2, path, 9).add("enterprise_feature_accessed", Trial().on(2, 10), feature=feature)
        t.add("integration_failed", t.on(2, 11), integration_type=kind)
        t.add("usage_limit_hit", t.on(2, 12), percent=percent)
        return "probe" in fired(t.score(t.on(2, 18), rules))

    assert story()
    assert not story(path="/pricingx")  # not below /pricing
    assert not story(feature="reports")
    assert not story(kind="Zapier")
    assert not story(percent=89.9)
    assert not story(percent="lots")


def test_a_filter_reads_any_property_a_page_view_ticket_invite_or_integration_carries():
    """Those events' own check reads one property (the path, the ticket, the invitee, the integration type); a
    trigger may filter on any other they carry: a page's title, a ticket's priority, an invite's role."""
    rules = only_trigger(within="trial", all=[
        {"event": "page_view", "where": {"title": {"equals": "Enterprise plans"}}},
        {"event": "support_ticket_opened", "where": {"priority": {"in": ["urgent", "high"]}}},
        {"event": "invite_sent", "where": {"role": {"equals": "admin"}}},
        {"event": "integration_connected", "where": {"workspace": {"equals": "finance"}}},
    ])

    def story(title="Enterprise Plans", priority="urgent", role="Admin", workspace="finance") -> bool:
        t = Trial().add("page_view", Trial().on(2, 9), page_path="/plans", title=title)
        t.add("support_ticket_opened", t.on(2, 10), ticket_id="T-1", priority=priority)
        t.add("invite_sent", t.on(2, 11), invitee_email="bo@acme.com", role=role)
        t.add("integration_connected", t.on(2, 12), integration_type="netsuite", workspace=workspace)
        return "probe" in fired(t.score(t.on(2, 18), rules))

    assert story()
    assert not story(title="Pricing")
    assert not story(priority="low")
    assert not story(role="member")
    assert not story(workspace="ops")


def test_distinct_email_domains_count_once_each():
    rules = only_trigger(within="7d", evidence="invited people at {values}", all=[
        {"event": "invite_sent", "measure": "values", "field": "invitee_email", "part": "domain", "at_least": 3}])
    t = Trial().invite(2, "li@acme.com").invite(2, "Raj@ACME.com").invite(3, "jo@globex.com")
    assert "probe" not in fired(t.score(t.on(3, 18), rules))
    t.invite(4, "ann@initech.io")
    evidence = fired(t.score(t.on(4, 18), rules))["probe"].evidence
    assert evidence == "invited people at acme.com, globex.com and initech.io"


def test_a_total_adds_up_a_numeric_property_inside_the_window():
    rules = only_trigger(within="7d", evidence="provisioned {total} seats {span}", all=[
        {"event": "seats_provisioned", "measure": "total", "field": "count", "at_least": 10}])
    t = Trial().add("seats_provisioned", Trial().on(1, 12), count=4)
    t.add("seats_provisioned", t.on(9, 11), count=5)
    assert "probe" not in fired(t.score(t.on(9, 18), rules))  # 9 in the week to day 9; day 1's 4 is outside
    t.add("seats_provisioned", t.on(9, 12), count=1)
    assert "probe" not in fired(t.score(t.on(9, 18), rules))
    t.add("seats_provisioned", t.on(10, 9), count=6)
    assert fired(t.score(t.on(10, 18), rules))["probe"].evidence == "provisioned 12 seats within 22 h"


def test_growth_is_counted_in_calendar_weeks_from_monday_including_the_week_the_clocks_go_back():
    rules = only_trigger(within="7d", all=[{"event": "session_start", "measure": "growth", "at_least": 1.0,
                                            "weeks": 2}])
    t = Trial(signup=datetime(2026, 10, 19, 9, 0, tzinfo=NY), **LONG)  # Mon 19 Oct
    t.add("session_start", datetime(2026, 10, 20, 10, 0, tzinfo=NY))  # week of 19 Oct: 1
    for day in (26, 27):  # week of 26 Oct, with Sun 1 Nov (25 h): 2
        t.add("session_start", datetime(2026, 10, day, 10, 0, tzinfo=NY))
    for hour in (10, 11, 12):  # week of 2 Nov so far: 3
        t.add("session_start", datetime(2026, 11, 2, hour, 0, tzinfo=NY))
    assert "probe" not in fired(t.score(datetime(2026, 11, 2, 18, 0, tzinfo=NY), rules))
    t.add("session_start", datetime(2026, 11, 2, 23, 30, tzinfo=NY))  # the 4th: double the week before
    assert fired(t.score(datetime(2026, 11, 3, 9, 0, tzinfo=NY), rules))["probe"].at == \
        datetime(2026, 11, 2, 23, 30, tzinfo=NY)
    shifted = Trial(signup=datetime(2026, 10, 19, 9, 0, tzinfo=NY), **LONG)
    shifted.events = [*shifted.events, *t.events[1:-1]]
    shifted.add("session_start", datetime(2026, 11, 1, 23, 30, tzinfo=NY))  # Sunday night: the week before
    assert "probe" not in fired(shifted.score(datetime(2026, 11, 3, 9, 0, tzinfo=NY), rules))
    in_utc = Trial(signup=datetime(2026, 10, 19, 9, 0, tzinfo=NY), tz=UTC_ZONE, **LONG)
    in_utc.events = shifted.events  # 04:30 on Monday 2 Nov in UTC: this week, doubled
    assert "probe" in fired(in_utc.score(datetime(2026, 11, 3, 9, 0, tzinfo=NY), rules))


def test_not_completed_within_seven_days_fires_exactly_at_seven_days_unless_completed_by_then():
    t = Trial().activate(1)
    started = t.on(2, 10)
    t.add("sso_config_started", started)
    due = started + timedelta(days=7)
    assert "sso_stalled" not in fired(t.score(due - US))
    result = t.score(due)
    assert fired(result)["sso_stalled"].at == due and (result.status, result.tier) == (Status.QUALIFIED, Tier.HIGH)
    on_time = Trial().activate(1).add("sso_config_started", started).add("sso_config_completed", due)
    assert "sso_stalled" not in fired(on_time.score(due + timedelta(hours=1)))
    late = Trial().activate(1).add("sso_config_started", started).add("sso_config_completed", due + US)
    assert fired(late.score(due + timedelta(hours=1)))["sso_stalled"].at == due


# -- qualification ----------------------------------------------------------------------------------------------------

def test_tier_3_triggers_are_recorded_and_never_qualify_anyone():
    t = Trial().activate(1).view(2, "/pricing", 10)
    result = t.score(t.on(3, 11))
    assert fired(result)["pricing_without_upgrade"].response == 3
    assert (result.status, result.tier, result.family) == (Status.BELOW_THRESHOLD, None, None)
    assert "pricing_without_upgrade" not in {s.name for s in result.signals}  # not a rep's to read
    t.add("upgrade_clicked", t.on(2, 11))  # clicked within the day: not the nurture case
    assert "pricing_without_upgrade" not in fired(t.score(t.on(3, 11)))


def test_the_icp_gate_stops_a_gated_trigger_and_not_an_ungated_one():
    big = active_buyer(Trial(size=5000))
    result = big.score(big.on(2, 18))
    assert (result.status, result.triggers) == (Status.EXCLUDED, ())  # active_buyer keeps seed 002's gate
    assert [r.code for r in result.reasons] == ["company_size_out_of_range", "not_activated"]
    for size in (5000, None):
        t = Trial(size=size).add("enterprise_feature_accessed", Trial().on(2, 10), feature="sso")
        result = t.score(t.on(2, 18))
        assert (result.status, result.tier, result.family) == (Status.QUALIFIED, Tier.HIGH, "buying"), size
        assert result.reasons == ()  # the fit exclusion is no reason against this trigger
        assert fired(result)["enterprise_feature"].evidence == "opened sso, an enterprise feature"


@pytest.mark.parametrize("story", ["competitor", "test_account", "disqualified"])
def test_exclusions_that_protect_people_stop_every_trigger(story):
    data = tomllib.loads(DEFAULT_RULES.read_text())
    data["exclusions"]["competitor_domains"] = ["rival.com"]
    rules = Rules.model_validate(data)
    email = {"competitor": "ana@rival.com", "test_account": "test@acme.com"}.get(story, "ana@acme.com")
    t = Trial(email=email, size=5000).add("enterprise_feature_accessed", Trial().on(2, 10), feature="sso")
    dispositions = (PriorDisposition("disqualified", t.on(2, 12)),) if story == "disqualified" else ()
    result = t.score(t.on(2, 18), rules, dispositions)
    assert (result.status, result.triggers, result.family) == (Status.EXCLUDED, (), None)


def test_an_opt_out_holds_a_trigger_lead_as_it_holds_any():
    t = Trial().add("enterprise_feature_accessed", Trial().on(2, 10), feature="sso").add("sales_opt_out",
                                                                                           Trial().on(2, 11))
    result = t.score(t.on(2, 18))
    assert result.status is Status.DO_NOT_TOUCH and "opted_out" in {r.code for r in result.reasons}
    assert result.family == "buying" and "enterprise_feature" in fired(result)


def test_the_tier_is_the_highest_of_the_points_and_the_triggers_and_qualified_at_the_earliest():
    t = Trial().activate(1).invite(2, hour=10).integrate(2, hour=11)  # 6 points on day 2: medium
    t.add("integration_failed", t.on(1, 12)).add("integration_failed", t.on(1, 13))
    t.add("integration_failed", t.on(1, 14))  # tier 2 blocker on day 1
    result = t.score(t.on(2, 18))
    assert (result.status, result.tier, result.family) == (Status.QUALIFIED, Tier.MEDIUM, "buying")
    assert result.qualified_at == t.on(1, 14) and result.strongest_signal == "integration"
    t.add("sso_config_started", t.on(1, 9))
    result = t.score(t.on(8, 10))  # the SSO wait ended on day 8 at 09:00: tier 1
    assert (result.tier, result.family, result.qualified_at) == (Tier.HIGH, "buying", t.on(1, 14))


def test_a_blocker_alone_makes_a_blocker_lead_and_its_strongest_trigger_the_talk_track():
    t = Trial().add("security_doc_downloaded", Trial().on(2, 10))
    t.add("sso_config_started", t.on(2, 11))
    result = t.score(t.on(9, 12))
    assert (result.status, result.family) == (Status.QUALIFIED, "blocker")
    assert set(fired(result)) >= {"security_review", "sso_stalled", "stuck_enterprise"}
    # stuck_enterprise and sso_stalled weigh the same and are both tier 1; the rules' first of the strongest wins
    assert result.strongest_signal == "sso_stalled" and result.talk_track == "unblock"
    assert result.tier is Tier.HIGH


def test_a_trigger_qualifies_a_user_the_hold_keeps_waiting():
    rules = rules_with(**{"tiers.qualify": 3})  # so one invite is exactly the threshold, on one day: held
    t = Trial().activate(2, 9).invite(2, hour=10)
    held = t.score(t.on(2, 13), rules)
    assert (held.status, held.tier, held.family) == (Status.HELD, Tier.MEDIUM, None)
    t.add("onboarding_completed", t.on(2, 12), level="advanced")
    result = t.score(t.on(2, 13), rules)
    assert (result.status, result.tier, result.family) == (Status.QUALIFIED, Tier.MEDIUM, "buying")
    assert result.qualified_at == t.on(2, 12) and result.strongest_signal == "advanced_onboarding"


def test_a_verdict_judged_from_tallies_built_in_pieces_out_of_order_is_the_whole_historys():
    t = active_buyer(Trial().activate(1))
    t.add("sso_config_started", t.on(1, 12)).add("security_doc_downloaded", t.on(3, 9))
    at = t.on(9, 9)
    plan = plan_of(DEFAULT)
    whole = score_user(t.events, DEFAULT, at, tz=NY)
    shuffled = list(reversed(t.events))
    tally, so_far = Tally(plan, NY, "ana"), []
    for start in range(0, len(shuffled), 3):
        group = shuffled[start:start + 3]
        so_far += group
        if not tally.add(group):  # the signup came after other events: built again, as ingestion does
            tally = Tally.build(so_far, plan, NY, "ana")
        tally = Tally.restore(json.loads(json.dumps(tally.state())), plan, NY, "ana")
    assert judge(tally, DEFAULT, at).to_json() == whole.to_json()
    assert {t.name for t in whole.triggers} >= {"active_buyer", "sso_stalled", "security_review"}


def test_a_misspelt_evidence_placeholder_is_refused_when_the_rules_load_not_when_a_lead_is_judged():
    with pytest.raises(ValueError, match=r"evidence: \{cuont\} is not filled in"):
        only_trigger(within="7d", evidence="failed {cuont} times", all=[{"event": "integration_failed"}])
