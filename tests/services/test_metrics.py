"""The pilot's numbers (bot/services/metrics.py) on a week built row by row, every answer worked out by hand below.

The week is 2026-W45 (Monday 2 to Sunday 8 November), New York, 9:00-18:00 on weekdays, two reps (Ana and
Ben), judged on Monday 9 November at noon. `Rows` writes store rows directly with known times; the review
tests and the Slack review tests build their weeks with it too.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import store
from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import PqlState
from bot.domain.periods import Period
from bot.review import build, text
from bot.services.metrics import Metrics, compute
from bot.store.events import to_us
from bot.store.models import DispositionRecord, EventRecord, Pql, Rep, Touch, TrialUser

NY = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(NY)
ANA, BEN = "U0ANA", "U0BEN"
W45 = Period.week(2026, 45)
NOW = datetime(2026, 11, 9, 12, 0, tzinfo=NY)


def ny(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def signal(name: str, points: int = 2) -> dict:
    return {"name": name, "label": name, "points": points, "day": 1, "evidence": name, "values": []}


class Rows:
    """Store rows with known times, written straight to the tables (no scoring, no routing)."""

    def __init__(self, session) -> None:
        self.session = session
        self._ids = itertools.count(1)

    def reps(self, *rep_ids: str) -> Rows:
        for rep_id in rep_ids:
            if self.session.get(Rep, rep_id) is None:  # a Slack workspace has synced its roster already
                self.session.add(Rep(id=rep_id, name=rep_id, created_at=ny(10, 1, 9)))
        self.session.flush()
        return self

    def user(self, user_id: str, signup: datetime) -> TrialUser:
        user = TrialUser(user_id=user_id, email=f"{user_id}@acme.com", signup_at=signup, status="qualified")
        self.session.add(user)
        self.session.flush()
        return user

    def lead(self, user_id: str, created: datetime, *, tier: str = "high", signals: tuple = ("invite_sent",),
             rep: str | None = ANA, due: datetime | None = None, signup: datetime | None = None) -> Pql:
        if self.session.get(TrialUser, user_id) is None:
            self.user(user_id, signup or created.replace(hour=8))
        trial = self.session.get(TrialUser, user_id).signup_at
        pql = Pql(user_id=user_id, trial_started_at=trial, state=PqlState.ASSIGNED if rep else PqlState.QUEUED,
                  tier=tier, score=6, signals=[s if isinstance(s, dict) else signal(s) for s in signals],
                  strongest_signal=None, qualified_at=created, created_at=created, updated_at=created,
                  rep_id=rep, assigned_at=created if rep else None, sla_due_at=due)
        self.session.add(pql)
        self.session.flush()
        return pql

    def touch(self, pql: Pql, at: datetime, *, channel: str = "email", email_key: str | None = "email1",
              variant: str | None = None, replied: bool = False) -> Touch:
        number = len(self.session.exec(select(Touch).where(Touch.pql_id == pql.id)).all()) + 1
        touch = Touch(pql_id=pql.id, rep_id=pql.rep_id or ANA, number=number, channel=channel,
                      email_key=email_key if channel == "email" else None, variant=variant, replied=replied, at=at)
        self.session.add(touch)
        self.session.flush()
        if pql.state not in (PqlState.DISPOSITIONED, PqlState.STOPPED_CONVERTED):
            pql.state = PqlState.WORKING
        return touch

    def dispose(self, pql: Pql, disposition: str, at: datetime, reason: str | None = None) -> None:
        pql.state, pql.disposition, pql.dispositioned_at, pql.updated_at = PqlState.DISPOSITIONED, disposition, at, at
        self.session.add(DispositionRecord(pql_id=pql.id, user_id=pql.user_id, rep_id=pql.rep_id,
                                           disposition=disposition, reason=reason, at=at))
        self.session.flush()

    def event(self, user_id: str, name: str, at: datetime, **props) -> None:
        self.session.add(EventRecord(message_id=f"m{next(self._ids)}-{user_id}", user_id=user_id, name=name,
                                     at_us=to_us(at), props=props, received_at=at))
        self.session.flush()

    def converts(self, user_id: str, at: datetime, mrr: float, pql: Pql | None = None) -> None:
        """A trial_converted event; a lead still open is stopped by it, as the pipeline does."""
        self.event(user_id, "trial_converted", at, plan="team", mrr=mrr, conversion_source="self_serve")
        if pql is not None and pql.dispositioned_at is None:
            pql.state, pql.updated_at = PqlState.STOPPED_CONVERTED, at
            self.session.flush()


def the_week(session) -> None:
    """2026-W45 with seven leads (L1-L7) and four trials that never became PQLs."""
    rows = Rows(session).reps(ANA, BEN)
    # Trials that started before the week (not in W45's cohorts) and in it.
    rows.user("u1", ny(10, 30, 9))
    rows.user("u2", ny(10, 31, 9))
    for name, day in (("u3", 2), ("u4", 3), ("u5", 3), ("u6", 4), ("u7", 6)):
        rows.user(name, ny(11, day, 8))
    for name in ("n1", "n2", "n3", "n4"):
        rows.user(name, ny(11, 4, 9))
    rows.user("n5", ny(11, 9, 0, 30))  # Monday of the next week: not W45's cohort

    # L1 Mon 10:00 high, due 12:00; Email 1 (A) at 11:00, replied; Meeting Set Wed; converts Fri ($100).
    l1 = rows.lead("u1", ny(11, 2, 10), signals=("integration_connected", "activation_complete"), rep=ANA,
                   due=ny(11, 2, 12))
    rows.touch(l1, ny(11, 2, 11), variant="A", replied=True)
    rows.dispose(l1, "meeting_set", ny(11, 4, 10))
    rows.converts("u1", ny(11, 6, 14), 100, l1)
    # L2 Mon 14:00 medium, due 18:00; Email 1 (B) Tue 10:00 (late), Email 2 Thu; No Response Fri; opts out Fri.
    l2 = rows.lead("u2", ny(11, 2, 14), tier="medium", rep=BEN, due=ny(11, 2, 18))
    rows.touch(l2, ny(11, 3, 10), variant="B")
    rows.touch(l2, ny(11, 5, 10), email_key="email2")
    rows.dispose(l2, "no_response", ny(11, 6, 15))
    rows.event("u2", "sales_opt_out", ny(11, 6, 9))
    # L3 Tue 9:30 high, due 11:30; never touched; Disqualified Thu; opted out (never contacted: no complaint).
    l3 = rows.lead("u3", ny(11, 3, 9, 30), signals=("invite_sent", "pricing_page"), rep=ANA, due=ny(11, 3, 11, 30))
    rows.dispose(l3, "disqualified", ny(11, 5, 10), reason="student project")
    rows.event("u3", "sales_opt_out", ny(11, 5, 12))
    # L4 Wed 16:00 fast lane (an explicit ask, no points), due 17:00; called 16:30; Meeting Set Thu 9:00.
    # Opted out at 16:00, before the call: not a complaint about outreach.
    l4 = rows.lead("u4", ny(11, 4, 16), tier="fast_lane", signals=(signal("explicit_ask", 0),), rep=BEN,
                   due=ny(11, 4, 17))
    rows.event("u4", "sales_opt_out", ny(11, 4, 16))
    rows.touch(l4, ny(11, 4, 16, 30), channel="call")
    rows.dispose(l4, "meeting_set", ny(11, 5, 9))
    # L5 Thu 11:00 medium, due 15:00; converts on its own at 12:00 ($50): stopped before it was due.
    l5 = rows.lead("u5", ny(11, 5, 11), tier="medium", rep=ANA, due=ny(11, 5, 15))
    rows.converts("u5", ny(11, 5, 12), 50, l5)
    # L6 Fri 16:30 high, due Mon 9:30 (1.5 h Friday + 0.5 h Monday); still untouched at Monday noon.
    rows.lead("u6", ny(11, 6, 16, 30), signals=("integration_connected",), rep=BEN, due=ny(11, 9, 9, 30))
    # L7 Sunday 23:30 medium: queued, no rep, no SLA clock.
    rows.lead("u7", ny(11, 8, 23, 30), tier="medium", rep=None)
    # A non-PQL trial converts ($30): only the non-PQL cohort sees it.
    rows.converts("n1", ny(11, 7, 10), 30)


@pytest.fixture
def week(engine) -> Metrics:
    with store.session(engine) as session, session.begin():
        the_week(session)
    with store.session(engine) as session:
        return compute(session, W45, calendar=CALENDAR, reps=2, now=NOW)


def test_volume_counts_the_leads_recorded_in_the_week_by_tier_and_per_rep_per_business_day(week):
    assert week.pqls == 7  # L1-L7
    assert week.by_tier == {"high": 3, "medium": 3, "fast_lane": 1}  # L1 L3 L6 · L2 L5 L7 · L4
    assert week.per_rep_per_day == pytest.approx(7 / (2 * 5))  # 7 leads / (2 reps x 5 business days) = 0.7
    assert week.daily == {
        date(2026, 11, 2): {"high": 1, "medium": 1}, date(2026, 11, 3): {"high": 1},
        date(2026, 11, 4): {"fast_lane": 1}, date(2026, 11, 5): {"medium": 1}, date(2026, 11, 6): {"high": 1},
        date(2026, 11, 7): {}, date(2026, 11, 8): {"medium": 1},
    }


def test_acceptance_counts_meetings_and_conversions_over_everything_decided_in_the_week(week):
    # Decided in W45: L1 Meeting Set, L2 No Response, L3 Disqualified, L4 Meeting Set, L5 stopped by its conversion.
    assert week.dispositions == {"meeting_set": 2, "no_response": 1, "disqualified": 1, "converted_self_serve": 1}
    # Acceptance judges the leads a rep worked (issue 19): L5 converted on its own, never claimed or touched.
    assert (week.accepted, week.decided) == (2, 4)  # L1 + L4 of L1-L4
    assert week.acceptance == pytest.approx(2 / 4)
    assert week.false_positive == pytest.approx(1 / 4)  # L3


def test_sla_compliance_counts_first_touches_by_the_due_time_and_skips_what_was_never_owed(week):
    # L1 met (11:00 <= 12:00) · L2 missed (Tue 10:00 > Mon 18:00) · L3 missed (never touched, closed after due)
    # L4 met (16:30 <= 17:00) · L5 skipped (converted at 12:00, before its 15:00 due time)
    # L6 missed (due Mon 9:30, untouched at noon) · L7 skipped (no SLA clock): 2 met of 5 due.
    assert week.sla_compliance == pytest.approx(2 / 5)
    assert week.sla_by_day == {
        date(2026, 11, 2): 0.5,  # L1 met, L2 missed
        date(2026, 11, 3): 0.0,  # L3
        date(2026, 11, 4): 1.0,  # L4
        date(2026, 11, 5): None,  # L5 skipped: nothing due that day
        date(2026, 11, 6): 0.0,  # L6
        date(2026, 11, 7): None, date(2026, 11, 8): None,
    }


def test_a_lead_not_yet_due_and_untouched_is_still_open_not_a_miss(engine):
    with store.session(engine) as session, session.begin():
        the_week(session)
    with store.session(engine) as session:
        friday = compute(session, W45, calendar=CALENDAR, reps=2, now=ny(11, 6, 17))
    # On Friday 17:00 L6 (due Monday 9:30) is not due yet: 2 met of 4 due.
    assert friday.sla_compliance == pytest.approx(2 / 4)
    assert friday.sla_by_day[date(2026, 11, 6)] is None


def test_time_to_first_touch_is_business_hours_from_when_the_lead_was_recorded(week):
    assert week.first_touch_hours == {
        "high": (1.0, 1.0),  # L1: 10:00 -> 11:00
        "medium": (5.0, 5.0),  # L2: Mon 14:00 -> 18:00 (4 h) + Tue 9:00 -> 10:00 (1 h)
        "fast_lane": (0.5, 0.5),  # L4: 16:00 -> 16:30
    }


def test_utilization_averages_the_leads_open_on_reps_at_the_end_of_each_day(week):
    # Open at midnight (rep leads; L5 closes when its conversion stops it, L7 has no rep):
    # Mon L1 L2 = 2 · Tue L1 L2 L3 = 3 · Wed L2 L3 L4 = 3 · Thu L2 = 1 · Fri L6 = 1 · Sat 1 · Sun 1
    # = 12 lead-days / 2 reps / 7 days
    assert week.utilization == pytest.approx(12 / 2 / 7)


def test_utilization_counts_earlier_weeks_leads_still_open_in_this_one_and_not_those_closed_before_it(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA, BEN)
        rows.touch(rows.lead("o1", ny(10, 1, 10)), ny(10, 2, 10))  # worked since October, never closed: 7 days
        rows.dispose(rows.lead("o2", ny(10, 5, 10), rep=BEN), "nurture", ny(10, 20, 10))  # closed before: 0
        rows.dispose(rows.lead("o3", ny(10, 10, 10)), "meeting_set", ny(11, 4, 10))  # closed Wed: Mon, Tue
        rows.converts("o4", ny(11, 5, 12), 80, rows.lead("o4", ny(10, 12, 10), rep=BEN))  # stopped Thu: Mon-Wed
        rows.converts("o5", ny(10, 30, 12), 40, rows.lead("o5", ny(10, 12, 11)))  # stopped before the week: 0
    with store.session(engine) as session:
        figures = compute(session, W45, calendar=CALENDAR, reps=2, now=NOW)
    assert figures.pqls == 0  # none of them is this week's lead
    assert figures.utilization == pytest.approx((7 + 2 + 3) / 2 / 7)


def test_each_signal_shows_its_volume_acceptance_false_positives_and_conversion(week):
    by_name = {s.signal: s for s in week.signals}
    assert [s.signal for s in week.signals][:2] == ["invite_sent", "integration_connected"]  # most PQLs first
    invites = by_name["invite_sent"]  # L2 L3 L5 L7; decided L2 (no response) L3 (disqualified) L5 (converted)
    assert (invites.pqls, invites.decided) == (4, 3)
    assert invites.acceptance == pytest.approx(1 / 3)
    assert invites.false_positive == pytest.approx(1 / 3)
    assert invites.conversion == pytest.approx(1 / 4)  # u5 of u2 u3 u5 u7
    integration = by_name["integration_connected"]  # L1 L6; decided L1 (meeting)
    assert (integration.pqls, integration.decided, integration.acceptance, integration.conversion) == (2, 1, 1.0, 0.5)
    assert by_name["explicit_ask"].pqls == 1  # no points, but an explicit ask always counts
    assert by_name["pricing_page"].false_positive == 1.0


def test_cohort_conversion_dark_funnel_and_assisted_lift(week):
    # W45's trial cohort: PQLs u3 u4 u5 u6 u7 (u1 u2 signed up the week before); u5 converted: 1 of 5.
    assert week.pql_conversion == pytest.approx(1 / 5)
    assert week.non_pql_conversion == pytest.approx(1 / 4)  # n1 of n1-n4 (n5 signed up the next Monday)
    # Routed leads that converted: L1 (touched) and L5 (never touched): 1 of 2 in the dark funnel.
    assert week.dark_funnel == pytest.approx(1 / 2)
    # Contacted L1 L2 L4 -> u1 converted: 1/3; never contacted L3 L5 L6 L7 -> u5: 1/4; lift 1/3 - 1/4 = 1/12.
    assert week.contacted_conversion == pytest.approx(1 / 3)
    assert week.uncontacted_conversion == pytest.approx(1 / 4)
    assert week.assisted_lift == pytest.approx(1 / 12)
    assert (week.assisted_conversions, week.assisted_mrr) == (1, 100.0)  # L1's $100


def test_outreach_rates_by_email_and_variant(week):
    assert week.meeting_rate == pytest.approx(2 / 3)  # contacted L1 L2 L4; meetings L1 L4
    assert week.reply_rate == pytest.approx(1 / 3)  # emails: L1#1 (replied), L2#1, L2#2
    assert week.variants == {
        "A": {"sent": 1, "reply_rate": 1.0, "meeting_rate": 1.0},  # L1
        "B": {"sent": 1, "reply_rate": 0.0, "meeting_rate": 0.0},  # L2
    }


def test_complaints_are_opt_outs_after_the_first_touch_over_contacted_leads(week):
    # Contacted L1 L2 L4. u2 opted out after Email 1: a complaint. u4 opted out before the call and u3 was
    # never contacted: neither counts. 1 of 3.
    assert (week.contacted, week.opt_outs) == (3, 1)
    assert week.complaints == pytest.approx(1 / 3)


def test_a_lead_at_2330_on_sunday_in_new_york_is_that_weeks_and_at_0030_on_monday_the_next(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        # Sunday 1 November is the day DST ends: 23:30 EST is already 04:30 UTC on Monday.
        rows.lead("a", ny(11, 1, 23, 30))
        rows.lead("b", ny(11, 2, 0, 30))
        rows.lead("c", ny(11, 8, 23, 30))
        rows.lead("d", ny(11, 9, 0, 30))
    with store.session(engine) as session:
        counts = {week: compute(session, Period.week(2026, week), calendar=CALENDAR, reps=1, now=NOW).pqls
                  for week in (44, 45, 46)}
        w45 = compute(session, W45, calendar=CALENDAR, reps=1, now=NOW)
    assert counts == {44: 1, 45: 2, 46: 1}  # a | b c | d
    assert w45.daily[date(2026, 11, 2)] == {"high": 1} and w45.daily[date(2026, 11, 8)] == {"high": 1}


@pytest.mark.parametrize("reps", [2, 0])
def test_an_empty_week_has_no_data_rather_than_a_division_by_zero(engine, reps):
    with store.session(engine) as session:
        empty = compute(session, W45, calendar=CALENDAR, reps=reps, now=NOW)
    assert empty.pqls == 0 and empty.by_tier == {} and empty.dispositions == {}
    assert empty.per_rep_per_day == (0.0 if reps else None)
    assert empty.utilization == (0.0 if reps else None)
    for name in ("acceptance", "false_positive", "sla_compliance", "pql_conversion", "non_pql_conversion",
                 "dark_funnel", "contacted_conversion", "uncontacted_conversion", "assisted_lift", "meeting_rate",
                 "reply_rate", "complaints"):
        assert getattr(empty, name) is None, name
    assert set(empty.sla_by_day.values()) == {None}
    shown = text(build(empty))
    assert "Acceptance (Meeting Set + Converted): no data" in shown
    assert "SLA compliance (first touch in time): no data" in shown
    assert "No PQLs this week" in shown
