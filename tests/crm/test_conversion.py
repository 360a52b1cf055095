"""trial_converted sets the lead's conversion source (sales-assisted when a touch came before it, else self-serve),
sends `pql_converted` with it, and the review's assisted conversions count by it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.domain.business_time import BusinessCalendar
from bot.domain.periods import Period
from bot.services.metrics import compute
from bot.store.models import Notice, Pql
from tests.crm.conftest import NOW, claim, lead, make_lead, notices, touch
from tests.scoring.builders import NY, Trial


def convert(store, user: str, at, ingested_at=None, mrr: int = 99):
    trial = Trial(user)
    trial.events.clear()
    trial.add("trial_converted", at, plan="team", mrr=mrr)
    store.ingest(trial.events, at=ingested_at or at)


def test_a_conversion_after_a_touch_is_sales_assisted(store, sinks):
    sinks("webhook")
    pql_id = make_lead(store)
    claim(store, pql_id)
    touch(store, pql_id, at=NOW + timedelta(hours=1))
    convert(store, "sarah", NOW + timedelta(days=1))
    converted = lead(store, pql_id)
    assert (converted.conversion_source, converted.state) == ("sales_assisted", "stopped_converted")
    assert converted.converted_at == NOW + timedelta(days=1)
    [event] = [n for n in notices(store, "webhook") if "pql_converted" in n.key]
    assert '"conversion_source":"sales_assisted"' in event.text and '"mrr":99' in event.text


def test_a_conversion_with_no_touch_before_it_is_self_serve_even_when_the_touch_is_logged_first(store, sinks):
    sinks("webhook")
    pql_id = make_lead(store)
    claim(store, pql_id)
    touch(store, pql_id, at=NOW + timedelta(hours=3))
    # The billing system's event arrives late: the user converted an hour before the rep's email.
    convert(store, "sarah", NOW + timedelta(hours=2), ingested_at=NOW + timedelta(hours=4))
    assert lead(store, pql_id).conversion_source == "self_serve"
    [event] = [n for n in notices(store, "webhook") if "pql_converted" in n.key]
    assert '"conversion_source":"self_serve"' in event.text


def test_a_replayed_or_second_conversion_changes_nothing(store, sinks):
    sinks("webhook")
    pql_id = make_lead(store)
    convert(store, "sarah", NOW + timedelta(hours=1))
    claim_ignored = lead(store, pql_id)
    assert claim_ignored.conversion_source == "self_serve"
    convert(store, "sarah", NOW + timedelta(hours=5))
    assert lead(store, pql_id).converted_at == NOW + timedelta(hours=1)
    with store.session() as session:
        assert len(session.exec(select(Notice).where(Notice.key.like("webhook:pql_converted:%"))).all()) == 1


def test_a_closed_leads_user_converting_later_still_tags_the_lead(store):
    pql_id = make_lead(store)
    claim(store, pql_id)
    touch(store, pql_id)
    from tests.crm.conftest import dispose
    dispose(store, pql_id, disposition="nurture")
    convert(store, "sarah", NOW + timedelta(days=2))
    closed = lead(store, pql_id)
    assert (closed.state, closed.conversion_source) == ("dispositioned", "sales_assisted")


def test_the_reviews_assisted_conversions_count_by_the_conversion_source(store):
    touched_first, converted_first = make_lead(store, "ana1"), make_lead(store, "ben1")
    for pql_id in (touched_first, converted_first):
        claim(store, pql_id)
    touch(store, touched_first, at=NOW + timedelta(minutes=5))
    convert(store, "ana1", NOW + timedelta(hours=1), mrr=100)
    touch(store, converted_first, at=NOW + timedelta(hours=3))
    convert(store, "ben1", NOW + timedelta(hours=2), ingested_at=NOW + timedelta(hours=4), mrr=50)
    with store.session() as session:
        sources = dict(session.exec(select(Pql.user_id, Pql.conversion_source)).all())
        assert sources == {"ana1": "sales_assisted", "ben1": "self_serve"}
        week = compute(session, Period.week(2026, 45), calendar=BusinessCalendar(NY), reps=2,
                       now=NOW + timedelta(days=3))
    # Both leads were contacted and both converted; only one because of the touch: the other bought first.
    assert (week.assisted_conversions, week.assisted_mrr) == (1, 100.0)
    assert week.contacted_conversion == 1.0  # contacted-vs-not lift is unchanged: both were contacted
