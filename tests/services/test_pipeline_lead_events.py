"""Conversions, stops and holds at ingest look only at users who have a lead (one look-up a group,
`pipeline._with_leads`): on generated streams, the leads, their audit trail and the notices owed are exactly what
looking at every lead event's user gives."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services import pipeline as pipeline_module
from tests.services.test_running_tallies import START, pipeline, track

_TABLES = ("audit", "notices", "assignments", "dispositions", "pqls", "tallies", "trial_users", "events",
           "identities", "groups")


_USERS = ["ana", "bo", "cy", "dee"]
_LEAD_EVENTS = ["checkout_started", "checkout_completed", "support_ticket_opened", "support_ticket_closed",
                "sales_opt_out", "trial_converted", "session_start"]


@st.composite
def lead_streams(draw):
    """Four trials; some ask for a demo at once (a fast-lane lead), the others have none. Then groups of tickets,
    checkouts, opt-outs and conversions for any of the four, made after the leads were recorded."""
    asking = draw(st.sets(st.sampled_from(_USERS)))
    first = []
    for user in _USERS:
        first.append(track(user, START, "signup_complete", f"{user}-s", email=f"{user}@acme.com",
                           company_name="Acme", company_size=800))
        if user in asking:
            first.append(track(user, START + timedelta(hours=1), "demo_requested", f"{user}-ask"))
    groups, n = [first], 0
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        group = []
        for _ in range(draw(st.integers(min_value=1, max_value=6))):
            user, name = draw(st.sampled_from(_USERS)), draw(st.sampled_from(_LEAD_EVENTS))
            at = START + timedelta(hours=3, minutes=draw(st.integers(min_value=0, max_value=3 * 24 * 60)))
            props = {"ticket_id": draw(st.sampled_from(["T1", "T2"]))} if "ticket" in name else {}
            group.append(track(user, at, name, f"e{n}", **props))
            n += 1
        groups.append(group)
    return groups


def _outcome(engine, groups) -> dict:
    with engine.begin() as connection:  # ids from 1 again, so both runs' notice keys can be compared
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
        for table in _TABLES:
            connection.execute(sa.text(f"DELETE FROM {table}"))
    p, at = pipeline(engine), START
    for group in groups:
        at = max([at, *(e.at for e in group)]) + timedelta(minutes=5)
        p.ingest(group, at=at)
    with engine.connect() as connection:
        def rows(sql: str) -> list[tuple]:
            return sorted(tuple(str(value) for value in row) for row in connection.execute(sa.text(sql)))

        return {
            "pqls": rows("SELECT user_id, state, tier, held_since, hold_on, held_seconds, conversion_source, "
                         "converted_at, version FROM pqls"),
            "audit": rows("SELECT action, user_id, detail FROM audit"),
            "notices": rows("SELECT key, kind, target, text FROM notices"),
        }


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(groups=lead_streams())
def test_lead_events_of_users_without_a_lead_change_nothing_that_looking_at_them_would(engine, groups):
    looked_up = _outcome(engine, groups)
    with_leads = pipeline_module._with_leads
    try:  # the reference: every lead event's user is looked at
        pipeline_module._with_leads = lambda session, events: {event.user_id for event in events}
        everyone = _outcome(engine, groups)
    finally:
        pipeline_module._with_leads = with_leads
    assert looked_up == everyone
