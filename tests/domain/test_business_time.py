"""Business time: 9:00-18:00 on weekdays in the team timezone, minus holidays, across nights and DST."""

from datetime import date, datetime, timedelta

import pytest

from bot.domain.business_time import BusinessCalendar
from tests.scoring.builders import NY

CAL = BusinessCalendar(NY, holidays=frozenset({date(2026, 11, 26)}))  # Thanksgiving
H = timedelta(hours=1)


def ny(*args):
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize(("at", "open_"), [
    (ny(2026, 11, 4, 10, 0), ny(2026, 11, 4, 10, 0)),  # Wednesday morning: open now
    (ny(2026, 11, 4, 7, 30), ny(2026, 11, 4, 9, 0)),  # before opening
    (ny(2026, 11, 4, 18, 0), ny(2026, 11, 5, 9, 0)),  # at closing: tomorrow
    (ny(2026, 11, 6, 22, 0), ny(2026, 11, 9, 9, 0)),  # Friday night: Monday
    (ny(2026, 11, 8, 12, 0), ny(2026, 11, 9, 9, 0)),  # Sunday noon: Monday
    (ny(2026, 11, 25, 19, 0), ny(2026, 11, 27, 9, 0)),  # the night before a holiday: the day after it
])
def test_next_open(at, open_):
    assert CAL.next_open(at) == open_


def test_two_business_hours_from_friday_1730_end_monday_1030():
    assert CAL.add(ny(2026, 11, 6, 17, 30), 2 * H) == ny(2026, 11, 9, 10, 30)


def test_a_clock_started_at_night_starts_at_the_next_opening():
    assert CAL.add(ny(2026, 11, 4, 23, 0), 4 * H) == ny(2026, 11, 5, 13, 0)


def test_a_holiday_is_skipped():
    assert CAL.add(ny(2026, 11, 25, 17, 0), 2 * H) == ny(2026, 11, 27, 10, 0)


def test_the_business_day_is_nine_hours_on_both_sides_of_a_dst_change():
    # US clocks fell back on Sunday 1 Nov 2026: Friday 17:00 + 2 h is Monday 10:00 local, 15:00 UTC not 14:00.
    due = CAL.add(ny(2026, 10, 30, 17, 0), 2 * H)
    assert due == ny(2026, 11, 2, 10, 0) and due.utcoffset() == timedelta(0) and due.hour == 15
    assert CAL.elapsed(ny(2026, 10, 30, 9, 0), ny(2026, 11, 2, 18, 0)) == 18 * H
    spring = CAL.add(ny(2026, 3, 6, 17, 0), 2 * H)  # clocks went forward on Sunday 8 March
    assert spring == ny(2026, 3, 9, 10, 0)


def test_elapsed_counts_only_business_time():
    assert CAL.elapsed(ny(2026, 11, 6, 17, 0), ny(2026, 11, 9, 10, 0)) == 2 * H
    assert CAL.elapsed(ny(2026, 11, 7, 10, 0), ny(2026, 11, 8, 10, 0)) == timedelta(0)
    assert CAL.elapsed(ny(2026, 11, 9, 10, 0), ny(2026, 11, 9, 9, 0)) == timedelta(0)


def test_business_days_later_keep_the_time_of_day_and_skip_weekends_and_holidays():
    assert CAL.add_days(ny(2026, 11, 5, 11, 0), 2) == ny(2026, 11, 9, 11, 0)  # Thu -> Mon
    assert CAL.add_days(ny(2026, 11, 24, 15, 0), 2) == ny(2026, 11, 27, 15, 0)  # Tue -> Fri (Thu is off)
    assert CAL.add_days(ny(2026, 11, 6, 20, 0), 1) == ny(2026, 11, 9, 18, 0)  # evening counts as closing


def test_day_start_is_the_opening_of_this_or_the_next_business_day():
    assert CAL.day_start(ny(2026, 11, 4, 15, 0)) == ny(2026, 11, 4, 9, 0)
    assert CAL.day_start(ny(2026, 11, 6, 19, 0)) == ny(2026, 11, 9, 9, 0)
