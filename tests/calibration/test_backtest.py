"""The backtest on constructed histories whose answers are known by hand (issue 19): seed 001's keep-or-retire
table, seed 000's dark funnel and lift, seed 002's capacity and volume guardrail."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.calibration.backtest import Window, differences, replay
from bot.calibration.stats import recommend, wilson
from bot.domain.business_time import BusinessCalendar
from scoring import DEFAULT_RULES, Rules
from tests.scoring.builders import Trial

NY = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(NY, holidays=frozenset({date(2026, 11, 26)}))  # Thanksgiving
MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=NY)


def rules_of(**triggers: str) -> Rules:
    """The default rules with no triggers but these: name -> the one event that fires it (tier 1, no ICP gate)."""
    data = tomllib.loads(DEFAULT_RULES.read_text())
    data["triggers"] = {
        name: {"label": name, "family": "buying", "strength": "high", "response": 1, "within": "24h",
               "icp_gate": False, "talk_track": "billing", "evidence": f"{name} fired", "all": [{"event": event}]}
        for name, event in triggers.items()}
    return Rules.model_validate(data)


RULES = rules_of(hot="hot_signal", cold="cold_signal", rare="rare_signal")
DEFAULT = Rules.model_validate(tomllib.loads(DEFAULT_RULES.read_text()))


def trial(user: str, event: str, *, converts: bool = False, touched: bool = False, signup: datetime = MONDAY,
          fire_day: int = 2) -> list:
    t = Trial(user, email=f"{user}@acme{user}.com", signup=signup)
    t.add(event, t.on(fire_day, 11))
    if touched:
        t.add("sales_touch", t.on(fire_day + 1, 10))
    if converts:
        t.add("trial_converted", t.on(fire_day + 8, 12))
    return t.events


def cohort(name: str, event: str, *, size: int, converted: int, contacted: int = 0,
           contacted_converted: int = 0) -> list:
    """`size` users firing `event`: `contacted` of them touched by a rep (`contacted_converted` of those
    converting), and `converted` converting in all."""
    events = []
    for i in range(size):
        touched = i < contacted
        converts = i < contacted_converted if touched else i - contacted < converted - contacted_converted
        events += trial(f"{name}{i:03d}", event, converts=converts, touched=touched)
    return events


def closed(events: list) -> list:
    """The history run on past every firing's 60 days (a bystander's visit 70 days on): every outcome known."""
    return events + Trial("zz-later", email="later@acme.com", signup=MONDAY + timedelta(days=70)).events


def run(events, rules=RULES, **options):
    return replay(events, rules, tz=NY, is_business_day=CALENDAR.is_business_day, **options)


def rows(backtest):
    return {row.name: row for row in backtest.triggers}


def test_a_trigger_converting_40_per_cent_is_tier1_one_at_5_per_cent_retire_and_a_small_one_too_few_to_judge():
    events = (cohort("h", "hot_signal", size=50, converted=20) + cohort("c", "cold_signal", size=40, converted=2)
              + cohort("r", "rare_signal", size=5, converted=3))
    got = rows(run(closed(events)))
    assert (got["hot"].fired, got["hot"].converted, got["hot"].recommendation) == (50, 20, "tier1")
    assert (got["cold"].fired, got["cold"].converted, got["cold"].recommendation) == (40, 2, "retire")
    assert (got["rare"].fired, got["rare"].converted, got["rare"].recommendation) == (5, 3, "too_few")
    assert got["hot"].conversion_rate == pytest.approx(0.40)
    low, high = got["hot"].interval
    assert low == pytest.approx(0.2760, abs=1e-4) and high == pytest.approx(0.5382, abs=1e-4)  # Wilson, by hand


def test_the_minimum_sample_is_configurable():
    events = cohort("r", "rare_signal", size=5, converted=3)
    assert rows(run(events, minimum=5))["rare"].recommendation == "tier1"
    assert rows(run(events, minimum=6))["rare"].recommendation == "too_few"


def test_dark_funnel_rate_and_assisted_lift_equal_the_constructed_values():
    # 50 fired: 20 contacted of whom 12 converted; 30 left alone of whom 8 converted anyway.
    events = cohort("h", "hot_signal", size=50, converted=20, contacted=20, contacted_converted=12)
    backtest = run(events)
    hot = rows(backtest)["hot"]
    assert (hot.fired, hot.converted, hot.contacted, hot.contacted_converted) == (50, 20, 20, 12)
    assert hot.dark_funnel_rate == pytest.approx(8 / 50)
    assert hot.assisted_lift == pytest.approx(12 / 20 - 8 / 30)
    assert backtest.has_touches


def test_touches_from_the_store_count_as_contact_and_a_touch_before_the_trigger_does_not():
    events = trial("ana", "hot_signal", converts=True) + trial("bo", "hot_signal")
    fired_at = datetime(2026, 11, 3, 11, tzinfo=NY)
    touches = {"ana": [fired_at + timedelta(hours=2)], "bo": [fired_at - timedelta(hours=2)]}
    hot = rows(run(events, touches=touches))["hot"]
    assert (hot.contacted, hot.contacted_converted, hot.dark_funnel_rate) == (1, 1, 0)
    assert hot.assisted_lift == pytest.approx(1.0)  # 1 of 1 contacted vs 0 of 1 alone


def test_a_conversion_more_than_60_days_after_the_trigger_does_not_count():
    t = Trial("late", email="late@acme.com", signup=MONDAY)
    t.add("hot_signal", t.on(2, 11)).add("trial_converted", t.on(2, 11) + timedelta(days=61))
    soon = trial("soon", "hot_signal", converts=True)
    hot = rows(run(t.events + soon))["hot"]
    assert (hot.fired, hot.converted) == (2, 1)


def test_a_trigger_on_the_day_of_the_conversion_but_before_it_counts_and_nothing_is_raised_after_it():
    t = Trial("ana", email="ana@acme.com", signup=MONDAY)
    t.add("hot_signal", t.on(3, 9)).add("trial_converted", t.on(3, 14)).add("cold_signal", t.on(3, 16))
    backtest = run(t.events)
    got = rows(backtest)
    assert (got["hot"].fired, got["hot"].converted, got["cold"].fired) == (1, 1, 0)
    assert backtest.raised["ana"].day == date(2026, 11, 4)


def test_over_capacity_days_are_counted_and_three_busy_days_running_breach_seed_002s_guardrail():
    events = []
    # One rep, 5 a day. Mon 9 Nov: 12; Tue: 12; Wed: 12 (three days over 10: the guardrail); Thu 12 Nov: 6 (over
    # capacity, not over 10); Fri: 3; Sat 14 Nov: 2 (counted on Monday 16 Nov, which has 4 more: 6, over).
    for day, count in ((date(2026, 11, 9), 12), (date(2026, 11, 10), 12), (date(2026, 11, 11), 12),
                       (date(2026, 11, 12), 6), (date(2026, 11, 13), 3), (date(2026, 11, 14), 2),
                       (date(2026, 11, 16), 4)):
        for i in range(count):
            signup = datetime.combine(day - timedelta(days=1), MONDAY.timetz())
            events += trial(f"u{day:%d}{i:02d}", "hot_signal", signup=signup)
    backtest = run(events, reps=1, cap=5, window=Window(date(2026, 11, 9), date(2026, 11, 16)))
    by_day = {day.date: (day.raised, day.capacity) for day in backtest.days}
    assert by_day == {date(2026, 11, 9): (12, 5), date(2026, 11, 10): (12, 5), date(2026, 11, 11): (12, 5),
                      date(2026, 11, 12): (6, 5), date(2026, 11, 13): (3, 5), date(2026, 11, 16): (6, 5)}
    assert backtest.days_over_capacity == [date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11),
                                           date(2026, 11, 12), date(2026, 11, 16)]
    assert backtest.busy == [[date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)]]
    assert backtest.guardrails()["volume"]["breached"] is True
    assert backtest.guardrails()["days_over_capacity"] == 5


def test_a_holiday_neither_counts_as_a_business_day_nor_breaks_a_busy_run():
    events = []
    for day in (date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)):
        for i in range(11):
            events += trial(f"t{day:%d}{i:02d}", "hot_signal",
                            signup=datetime.combine(day - timedelta(days=1), MONDAY.timetz()))
    backtest = run(events, reps=1, cap=5)
    assert date(2026, 11, 26) not in {day.date for day in backtest.days}
    assert {day.date: day.raised for day in backtest.days}[date(2026, 11, 27)] == 22  # Thanksgiving's land Friday
    assert backtest.busy == [[date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]]


@pytest.mark.parametrize(("fired_at", "day"), [
    (datetime(2026, 3, 8, 23, 30, tzinfo=NY), date(2026, 3, 8)),  # spring forward: a 23-hour day
    (datetime(2026, 11, 1, 23, 30, tzinfo=NY), date(2026, 11, 1)),  # fall back: a 25-hour day
    (datetime(2026, 11, 1, 0, 30, tzinfo=NY), date(2026, 11, 1)),
])
def test_a_lead_is_raised_on_its_local_day_across_dst_changes(fired_at, day):
    t = Trial("ana", email="ana@acme.com", signup=fired_at - timedelta(hours=20))
    t.add("hot_signal", fired_at)
    assert run(t.events).raised["ana"].day == day


def test_the_window_counts_only_the_days_asked_for():
    early = trial("early", "hot_signal")  # fires Tue 3 Nov
    late = trial("late", "hot_signal", signup=MONDAY + timedelta(days=7))  # fires Tue 10 Nov
    backtest = run(early + late, window=Window(date(2026, 11, 9), date(2026, 11, 15)))
    assert set(backtest.raised) == {"late"}
    assert rows(backtest)["hot"].fired == 1


def test_against_lists_the_leads_one_rules_file_raises_and_the_other_does_not():
    events = trial("ana", "hot_signal") + trial("bo", "cold_signal") + trial("cy", "rare_signal")
    mine = run(events, rules_of(hot="hot_signal", rare="rare_signal"))
    theirs = run(events, rules_of(hot="hot_signal", cold="cold_signal"))
    assert [(d.user_id, d.raised_by, d.why) for d in differences(mine, theirs)] == [
        ("bo", "against", ("cold",)), ("cy", "rules", ("rare",))]


def test_a_wait_that_ends_on_a_day_without_events_raises_the_lead_that_day():
    data = tomllib.loads(DEFAULT_RULES.read_text())
    data["triggers"] = {"stalled": {
        "label": "Stalled", "family": "blocker", "strength": "high", "response": 1, "within": "7d",
        "icp_gate": False, "talk_track": "unblock", "evidence": "stalled",
        "all": [{"event": "sso_config_started", "not_followed_by": "sso_config_completed", "for": "3d"}]}}
    rules = Rules.model_validate(data)
    t = Trial("ana", email="ana@acme.com", signup=MONDAY)
    t.add("sso_config_started", t.on(1, 12)).add("session_start", t.on(9, 12))
    assert run(t.events, rules).raised["ana"].day == date(2026, 11, 5)  # Thursday, 3 days on, no event that day


def test_a_lead_held_back_by_a_checkout_is_raised_the_day_its_grace_ends_though_nothing_else_comes():
    """A demo request while a checkout is under way is not to be touched; the checkout is abandoned and the user
    sends nothing more. The bot's wake sweep raises the lead when the 24 hours' grace ends (Wednesday 15:00), and
    the backtest says so: not on the day some later wait happens to end (the next Monday, before). The same for the
    48 hours after an upgrade."""
    t = Trial("ana", email="ana@acme.com", size=120, signup=MONDAY).activate(1, 11)
    t.add("checkout_started", t.on(2, 15)).add("demo_requested", t.on(2, 16))
    assert run(t.events, DEFAULT).raised["ana"].day == date(2026, 11, 4)
    t.add("checkout_completed", t.on(2, 18))  # upgraded within the grace: left to land for 48 hours, to Thursday
    assert run(t.events, DEFAULT).raised["ana"].day == date(2026, 11, 5)
    t.add("trial_converted", t.on(3, 9))  # a customer: no lead at all
    assert "ana" not in run(t.events, DEFAULT).raised


def test_a_trigger_under_10_per_cent_is_not_retired_before_its_firings_have_had_their_60_days():
    # The same cohorts in a history that stops ten days after they fired: 38 of the cold ones may still pay. The hot
    # one's 40 % can only rise: tier 1 stands.
    events = cohort("h", "hot_signal", size=50, converted=20) + cohort("c", "cold_signal", size=40, converted=2)
    got = rows(run(events))
    assert (got["hot"].recommendation, got["hot"].open) == ("tier1", 30)
    assert (got["cold"].fired, got["cold"].converted, got["cold"].open) == (40, 2, 38)
    assert got["cold"].recommendation == "too_early"
    assert got["cold"].to_json()["open"] == 38
    # Once the history runs on past their 60 days, nothing is open and the table decides.
    got = rows(run(closed(events)))
    assert (got["cold"].open, got["cold"].recommendation) == (0, "retire")


@pytest.mark.parametrize(("settled", "settled_converted", "expected"), [
    (19, 0, "too_early"), (20, 1, "retire"), (20, 2, "tier2"), (20, 7, "tier1"), (None, 0, "retire"),
])
def test_under_10_per_cent_so_far_is_judged_on_the_firings_whose_60_days_are_over(settled, settled_converted,
                                                                                    expected):
    assert recommend(100, 5, settled=settled, settled_converted=settled_converted) == expected
    assert recommend(100, 10, settled=0) == "tier2"  # 10 % already: it can only rise
    assert recommend(19, 0, settled=0) == "too_few"  # too few fired at all comes first


@pytest.mark.parametrize(("fired", "converted", "expected"), [
    (100, 31, "tier1"), (100, 30, "tier1_or_tier2"), (100, 15, "tier1_or_tier2"), (100, 14, "tier2"),
    (100, 10, "tier2"), (100, 9, "retire"), (19, 19, "too_few"), (20, 0, "retire"),
])
def test_seed_001s_table_with_its_bounds(fired, converted, expected):
    assert recommend(fired, converted) == expected


def test_the_wilson_interval_stays_inside_0_and_1_and_says_nothing_of_nothing():
    assert wilson(0, 0) is None
    low, high = wilson(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson(10, 10)
    assert high == 1 and low == pytest.approx(0.7225, abs=1e-4)


# -- account triggers ------------------------------------------------------------------------------------------

def with_team_activation(rules: Rules = RULES) -> Rules:
    """`rules` plus seed 001's "5+ users of one account activate within 14 days" (tier 1, an account trigger)."""
    from tests.scoring.accounts_rules import ACCOUNT_TRIGGERS

    data = rules.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["triggers"]["team_activation"] = ACCOUNT_TRIGGERS["team_activation"]
    return Rules.model_validate(data)


TEAM = with_team_activation()


def account(domain: str, *, size: int = 5, first_day: int = 2, paying: int | None = None, pays_on: int = 20,
            touched_on: int | None = None, extra: dict[int, tuple[str, int]] | None = None) -> list:
    """`size` users of `domain`, signed up on Monday, activating on consecutive days from `first_day`; member
    `paying` converts on trial day `pays_on`; a rep touches member 0 on `touched_on`; `extra`: member -> (event,
    day) for one more event each."""
    events = []
    for i in range(size):
        t = Trial(f"{domain.split('.')[0]}{i}", email=f"m{i}@{domain}", signup=MONDAY)
        t.activate(first_day + i, hour=11)
        if i in (extra or {}):
            name, day = extra[i]
            t.add(name, t.on(day, 12))
        if touched_on is not None and i == 0:
            t.add("sales_touch", t.on(touched_on, 10))
        if i == paying:
            t.add("trial_converted", t.on(pays_on, 12))
        events += t.events
    return events


def test_an_account_trigger_is_counted_once_per_account_and_converts_when_any_member_pays():
    events = []
    for n in range(25):  # 25 accounts fire; a member other than the anchor pays in 10 of them, within 60 days,
        # five of those after a rep touched one of its people
        events += account(f"co{n:02d}.com", paying=3 if n < 10 else None, touched_on=12 if n < 5 else None)
    events += account("late.com", paying=2, pays_on=90)  # pays 80-odd days after it fired: not a conversion
    events += account("small.com", size=4)  # four people: never fires
    events += account("early.com", paying=1, pays_on=4)  # a customer before its fifth activation: not a firing
    got = rows(run(events, TEAM))["team_activation"]
    assert (got.level, got.family, got.fired, got.converted) == ("account", "buying", 26, 10)
    assert (got.contacted, got.contacted_converted) == (5, 5)
    assert got.dark_funnel_rate == pytest.approx(5 / 26)  # converted with no rep contact / fired
    assert got.recommendation == "tier1"  # 10 of 26: 38%
    assert got.to_json()["level"] == "account" and rows(run(events, TEAM))["hot"].level == "user"


def test_an_account_lead_is_one_lead_it_takes_the_place_of_a_members_earlier_lead_and_later_ones_join_it():
    events = account("solo.com")  # the fifth activates on trial day 6, Saturday 7 Nov: counted on Monday
    events += account("before.com", extra={0: ("hot_signal", 3)})  # a member's own lead on day 3, before it
    events += account("after.com", extra={4: ("hot_signal", 9)})  # a member qualifying on day 9, after it
    backtest = run(events, TEAM, reps=1, cap=5)
    assert {key: lead.day for key, lead in backtest.raised.items()} == {
        "domain:solo.com": date(2026, 11, 7), "before0": date(2026, 11, 4), "domain:after.com": date(2026, 11, 7)}
    assert backtest.raised["domain:solo.com"].why == ("team_activation",)
    assert {day.date: day.raised for day in backtest.days if day.raised} == {
        date(2026, 11, 4): 1, date(2026, 11, 9): 2}  # the weekend's two account leads reach the reps on Monday
    assert rows(backtest)["hot"].fired == 2  # the later member's trigger still fired: it is in the table


def test_a_member_who_did_nothing_the_triggers_read_still_converts_the_account_by_paying():
    events = account("quiet.com")
    buyer = Trial("buyer", email="buyer@quiet.com", signup=MONDAY)  # signs up and pays: nothing else
    buyer.add("trial_converted", buyer.on(12, 12))
    got = rows(run(events + buyer.events, TEAM))["team_activation"]
    assert (got.fired, got.converted) == (1, 1)
