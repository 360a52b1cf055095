"""Feedback that exists in the product (issue 19): nps_response answers feed NPS for the PQL cohort vs the rest,
sales_reply events feed the reply rate and the complaints."""

from __future__ import annotations

import pytest

from bot import store
from bot.review import build, text
from bot.services.metrics import compute, nps
from tests.services.test_metrics import ANA, CALENDAR, NOW, NY, W45, Rows, ny


def week_of(engine):
    with store.session(engine) as session:
        return compute(session, W45, calendar=CALENDAR, reps=1, now=NOW)


def test_nps_is_promoters_minus_detractors():
    assert nps([10, 9, 8, 7, 0]) == pytest.approx(20)  # 2 promoters and 1 detractor of 5 answers
    assert nps([6, 6]) == -100 and nps([]) is None


def test_nps_answers_feed_the_pql_cohort_against_the_rest_and_the_pilots_change(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        for n, score in enumerate((10, 9, 3)):  # PQL cohort: 2 promoters, 1 detractor of 3 = +33.3
            rows.lead(f"p{n}", ny(11, 2, 10))
            rows.event(f"p{n}", "nps_response", ny(11, 4, 10), score=score)
        for n, score in enumerate((10, 8, 8, 2)):  # the rest: 1 promoter, 1 detractor of 4 = 0
            rows.user(f"r{n}", ny(11, 2, 9))
            rows.event(f"r{n}", "nps_response", ny(11, 4, 11), score=score)
        rows.event("r3", "nps_response", ny(11, 5, 11), score=9)  # the latest answer counts: r3 is a promoter now
    week = week_of(engine)
    assert (week.nps_pql_answers, week.nps_rest_answers) == (3, 4)
    assert week.nps_pql == pytest.approx(100 / 3)
    assert week.nps_rest == pytest.approx(50)  # r0 and r3 promote, nobody detracts: 2 of 4
    assert week.nps_change == pytest.approx(100 / 3 - 50)
    shown = text(build(week, cap=5), NY)
    assert "NPS, PQL cohort (nps_response): 33.3 (3 answers)" in shown


def test_a_sales_reply_answers_the_email_before_it_and_an_unsubscribe_reply_is_a_complaint(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        happy = rows.lead("happy", ny(11, 2, 10))
        rows.touch(happy, ny(11, 2, 11))
        rows.touch(happy, ny(11, 4, 11), email_key="email2")
        rows.event("happy", "sales_reply", ny(11, 3, 9), sentiment="positive")  # answers Email 1, not Email 2
        cross = rows.lead("cross", ny(11, 2, 10))
        rows.touch(cross, ny(11, 2, 12))
        rows.event("cross", "sales_reply", ny(11, 2, 15), sentiment="unsubscribe")
    week = week_of(engine)
    assert (week.replied, week.emails) == (2, 3)  # happy's Email 1 and cross's
    assert (week.opt_outs, week.contacted) == (1, 2)
    assert week.complaints == pytest.approx(1 / 2)
