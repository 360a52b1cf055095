"""The backtest's fast replay reads what judging every day reads (issue 19's speed).

`replay` judges a user's day only when its verdict could add to what the replay noted, reads each trigger's first
firing and the exclusions that last once from the whole history, stops a user once all they can show has shown, and
shares the users among worker processes. None of it may change the report: on generated histories (the scoring
tests' event mix with sales touches and conversions, signups that start trials over, identify calls that change the
email, competitor and internal domains, waits that end on days without events, across both of New York's DST
changes, with and without a window of days) its `Backtest` equals the one judging every day the replay visits.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.calibration.backtest import Window, replay
from bot.domain.business_time import BusinessCalendar
from scoring import Event
from tests.scoring.builders import rules_with
from tests.scoring.test_tally import _KINDS, _WEIGHTS

NY = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(NY, holidays=frozenset({date(2026, 11, 26)}))
#: Two days before each of New York's DST changes (Sun 8 Mar 2026 02:00, Sun 1 Nov 2026 02:00).
BASES = [datetime(2026, 3, 6, 14, 0, tzinfo=UTC), datetime(2026, 10, 30, 13, 0, tzinfo=UTC)]
#: The seed's model with a competitor and an internal domain, and the trial's verdicts ending inside the histories.
RULES = rules_with(**{"exclusions.competitor_domains": ["globex.com"], "exclusions.internal_domains": ["x.io"],
                      "acv.plan": {"team": 1.5}})
_DRAWN = [i for i, weight in enumerate(_WEIGHTS) for _ in range(weight)]
_EMAILS = ["ana@acme.com", "bo@gmail.com", "test@acme.com", "li@globex.com", "raj@x.io", None]
_EXTRA = ["sales_touch", "trial_converted", "session_start", "sso_config_started", "page_view", "$identify",
          "demo_requested", "integration_failed", "enterprise_feature_accessed"]


@st.composite
def user_history(draw, user: str, base: datetime) -> list[Event]:
    """One user's events over four weeks around `base`: a signup (sometimes none, sometimes a second one)."""
    events = []
    for n in range(draw(st.integers(min_value=0, max_value=25))):
        minutes = draw(st.integers(min_value=-2 * 24 * 60, max_value=26 * 24 * 60))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            name, props = draw(st.sampled_from(_EXTRA)), {}
            props = dict(next(make for kind, make in _KINDS if kind == name)(draw)) if name in dict(_KINDS) else {}
        else:
            name, make = _KINDS[draw(st.sampled_from(_DRAWN))]
            props = dict(make(draw))
        if name == "page_view" and draw(st.booleans()):
            props = {"page_path": "/pricing"}
        events.append(Event(name, user, base + timedelta(minutes=minutes), f"{user}-{n}", props))
    for n in range(draw(st.sampled_from([1, 1, 1, 1, 0, 2]))):
        props = dict(_KINDS[0][1](draw))
        props["email"] = draw(st.sampled_from(_EMAILS))
        minutes = 0 if n == 0 else draw(st.integers(min_value=0, max_value=20 * 24 * 60))
        events.append(Event("signup_complete", user, base + timedelta(minutes=minutes), f"{user}-s{n}", props))
    return events


@st.composite
def populations(draw) -> tuple[list[Event], Window]:
    base = draw(st.sampled_from(BASES))
    events = []
    for number in range(draw(st.integers(min_value=1, max_value=4))):
        events += draw(user_history(f"u{number}", base))
    draw(st.randoms(use_true_random=False)).shuffle(events)
    first = base.astimezone(NY).date()
    start = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=20)))
    end = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=28)))
    window = Window(None if start is None else first + timedelta(days=start),
                    None if end is None else first + timedelta(days=end))
    return events, window


def backtest(events, window=None, **options):
    return replay(events, RULES, tz=NY, is_business_day=CALENDAR.is_business_day, window=window or Window(), reps=1,
                  cap=1, **options)


def report(bt) -> tuple:
    return bt.to_json(), {user: (lead.day, lead.why) for user, lead in bt.raised.items()}


#: Outside the ICP, an early demo request, no activation, the last event after the trial: the ask waives the ICP gate,
#: so "ICP signup not activated" shows on day 8 (the whole history's verdict, after the trial, shows nothing).
_ASKED = [Event("signup_complete", "u0", BASES[1], "s", {"email": "ana@acme.com", "company_name": "Acme",
                                                         "company_size": 50}),
          Event("demo_requested", "u0", BASES[1] + timedelta(hours=3), "a", {}),
          Event("session_start", "u0", BASES[1] + timedelta(days=19), "b", {})]


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
@example((_ASKED, Window()))
def test_the_fast_replay_reports_what_judging_every_day_reports(population):
    events, window = population
    assert report(backtest(events, window)) == report(backtest(events, window, every_day=True))


def test_users_shared_among_worker_processes_give_the_report_of_one_process():
    rng = random.Random(19)
    events = []
    for number in range(60):
        events += _seeded_user(rng, f"w{number}")
    one = backtest(events, workers=1)
    assert report(backtest(events, workers=2)) == report(one)
    assert one.raised, "the population raises leads: the comparison compares something"


def _seeded_user(rng: random.Random, user: str) -> list[Event]:
    """A plain trial from a seeded generator (hypothesis draws are for `given` tests)."""
    base = rng.choice(BASES)
    email = rng.choice(["ana@acme.com", "li@globex.com", "bo@gmail.com"])
    events = [Event("signup_complete", user, base, f"{user}-s", {"email": email, "company_size": rng.choice(
        [None, 50, 800, 5000]), "company_name": "Acme"})]
    names = ["activation_complete", "invite_sent", "integration_connected", "page_view", "session_start",
             "demo_requested", "sso_config_started", "security_doc_downloaded", "sales_touch", "trial_converted"]
    for n in range(rng.randint(0, 20)):
        name = rng.choice(names)
        props = {"page_path": rng.choice(["/pricing", "/billing", "/docs"])} if name == "page_view" else {}
        if name == "integration_connected":
            props = {"integration_type": rng.choice(["dbt", "slack"])}
        events.append(Event(name, user, base + timedelta(minutes=rng.randint(0, 20 * 24 * 60)), f"{user}-{n}",
                            props))
    return events
