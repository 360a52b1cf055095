"""The spam-complaint guardrail (seed 002: "Spam complaints > 5 %: pause outreach"), issue 19."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select

from bot import store
from bot.services import switches
from bot.services.pipeline import Pipeline
from bot.settings import Settings
from bot.store.models import Notice
from bot.sweeps.complaints import complaints_guardrail
from bot.sweeps.follow_ups import follow_ups
from tests.services.test_metrics import ANA, NY, Rows, ny

BOSS = "U0BOSS"
TUESDAY_10 = ny(11, 3, 10)


def sweeps_for(engine):
    settings = Settings(_env_file=None, pql_timezone="America/New_York", pql_manager=BOSS, pql_reps=ANA,
                        pql_alerts_channel="#pql-alerts")
    return SimpleNamespace(pipeline=Pipeline(engine, tz=NY), router=None, settings=settings)


def contacted(engine, count: int, complaints: dict[int, tuple[str, dict]], touched_at=TUESDAY_10) -> None:
    """`count` leads touched at `touched_at`; `complaints`: lead number -> (event, props) an hour after."""
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        for n in range(count):
            lead = rows.lead(f"c{n:02d}", touched_at - timedelta(hours=2))
            rows.touch(lead, touched_at)
            if n in complaints:
                name, props = complaints[n]
                rows.event(f"c{n:02d}", name, touched_at + timedelta(hours=1), **props)


def dms(engine) -> list[Notice]:
    with store.session(engine) as session:
        return [n for n in session.exec(select(Notice)) if n.key.startswith("guardrail-complaints:")]


def outreach_paused(engine) -> bool:
    with store.session(engine) as session:
        return switches.is_on(session, switches.OUTREACH)


def test_two_complaints_in_twenty_contacted_pause_outreach_and_tell_the_manager_once(engine):
    # 2 of 20 = 10% > 5%: an opt-out and an unsubscribe reply; a positive reply is no complaint.
    contacted(engine, 20, {0: ("sales_opt_out", {}), 1: ("sales_reply", {"sentiment": "unsubscribe"}),
                           2: ("sales_reply", {"sentiment": "positive"})})
    sweeps = sweeps_for(engine)
    assert complaints_guardrail(sweeps, ny(11, 4, 9)) == 1
    assert complaints_guardrail(sweeps, ny(11, 4, 10)) == 0  # once a week
    [dm] = dms(engine)
    assert (dm.target, dm.key) == (BOSS, "guardrail-complaints:2026-W45")
    assert "10% of the leads contacted in the last 7 days complained (2 of 20" in dm.text
    assert outreach_paused(engine)
    assert follow_ups(sweeps, ny(11, 9, 12)) == 0  # no reminders while paused


@pytest.mark.parametrize(("count", "complaints"), [
    (20, {0: ("sales_opt_out", {})}),  # 1 of 20 = 5%: not more than 5%
    (20, {0: ("sales_reply", {"sentiment": "positive"}), 1: ("sales_reply", {"sentiment": "negative"})}),
])
def test_five_per_cent_or_less_leaves_outreach_alone(engine, count, complaints):
    contacted(engine, count, complaints)
    assert complaints_guardrail(sweeps_for(engine), ny(11, 4, 9)) == 0
    assert not outreach_paused(engine) and dms(engine) == []


def test_an_opt_out_before_the_first_touch_is_no_complaint_and_old_touches_fall_out_of_the_week(engine):
    with store.session(engine) as session, session.begin():
        rows = Rows(session).reps(ANA)
        lead = rows.lead("early", ny(11, 3, 8))
        rows.event("early", "sales_opt_out", ny(11, 3, 9))
        rows.touch(lead, ny(11, 3, 10))
    assert complaints_guardrail(sweeps_for(engine), ny(11, 4, 9)) == 0
    contacted(engine, 3, {0: ("sales_opt_out", {})}, touched_at=ny(10, 20, 10))  # three weeks before
    assert complaints_guardrail(sweeps_for(engine), ny(11, 4, 9)) == 0
