"""`pqlbot explain`: a stored user's verdict with its reasons, and a lead's routing and SLA trail, read from the
store (each backend), in the team's time: one case per verdict kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import main
from bot.demo.sample import SAMPLE_AS_OF, SAMPLE_PATH
from scoring import DEFAULT_RULES
from tests.scoring.builders import NY, Trial

REPS = "U0ANA:Ana Ruiz,U0BEN:Ben Okafor"


@pytest.fixture
def sample_store(store_url, monkeypatch, tmp_path, capsys):
    """The bundled sample's two weeks ingested as of its last day (Fri 13 Nov 2026 17:00 New York), with two reps,
    in business hours all day so every lead is routed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PQL_REPS", REPS)
    monkeypatch.setenv("PQL_BUSINESS_HOURS", "00:00-23:59")
    monkeypatch.setenv("PQL_DAILY_CAP", "100")
    assert main(["ingest", str(SAMPLE_PATH), "--at", SAMPLE_AS_OF.isoformat()]) == 0
    capsys.readouterr()
    return store_url


def explain(capsys, *args: str) -> tuple[int, str]:
    code = main(["explain", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_qualified_lead_shows_its_signals_and_who_got_it_and_why(sample_store, capsys):
    code, text = explain(capsys, "sarah@acme.com")
    assert code == 0
    assert text.startswith("sarah@acme.com (user sarah) · Acme Corp, 800 employees · Mid-market")
    assert "Stored verdict, scored Fri 13 Nov 2026 17:00 EST:" in text
    assert "qualified · medium · 6 of 10 points (qualifies at 4) · trial day 12, 3 days left" in text
    assert "  • Teammate invites (day 5, 3 points): invited 2 teammates" in text
    assert "No PQL" not in text
    lead = next(line for line in text.splitlines() if line.startswith("PQL-"))
    assert "(user lead): assigned, " in lead and "first touch due" in lead
    assert "Fri 13 Nov 2026 17:00 EST  qualified as medium (6 points)" in text
    assert any(line.startswith("  Fri 13 Nov 2026 17:00 EST  assigned to ") and ("Ana Ruiz" in line or
                                                                                "Ben Okafor" in line)
               for line in text.splitlines())


def touch_sarahs_lead(store_url: str, at: datetime) -> None:
    """Her rep claims her lead and calls her at `at`."""
    from sqlmodel import Session, select

    from bot.services import leads
    from bot.store import make_engine
    from bot.store.models import Pql

    engine = make_engine(store_url)
    try:
        with Session(engine) as session, session.begin():
            lead = session.exec(select(Pql).where(Pql.user_id == "sarah")).one()
            who = leads.actor(session, lead.rep_id, manager=None)
            leads.claim(session, lead, who, now=at - timedelta(minutes=5), tz=NY, cap=100)
            leads.log_touch(session, lead, who, channel="call", email_key=None, note=None, now=at)
    finally:
        engine.dispose()


@pytest.mark.parametrize("touched, says", [
    (datetime(2026, 11, 13, 18, 0, tzinfo=NY), "first touch Fri 13 Nov 2026 18:00 EST (in time: due "),
    (datetime(2026, 11, 18, 9, 30, tzinfo=NY), "first touch Wed 18 Nov 2026 09:30 EST (late: due "),
])
def test_a_touched_lead_says_when_its_first_touch_came_against_the_due_time(sample_store, capsys, touched, says):
    touch_sarahs_lead(sample_store, touched)
    code, text = explain(capsys, "sarah", "--at", (touched + timedelta(hours=1)).isoformat())
    assert code == 0
    lead = next(line for line in text.splitlines() if line.startswith("PQL-"))
    assert says in lead and "first touch due" not in lead
    code, text = explain(capsys, "sarah", "--at", (touched + timedelta(hours=1)).isoformat(), "--json")
    assert json.loads(text)["lead"]["first_touch"] == touched.astimezone(UTC).isoformat()
    code, text = explain(capsys, "sarah", "--at", (touched - timedelta(minutes=1)).isoformat())
    assert "first touch due" in next(line for line in text.splitlines() if line.startswith("PQL-"))  # not yet


def test_a_lead_closed_before_anyone_touched_it_says_so_not_a_first_touch_due(sample_store, capsys, tmp_path):
    paid = tmp_path / "paid.jsonl"  # Sarah pays an hour after her lead, before her rep's first touch
    paid.write_text(json.dumps({"type": "track", "event": "trial_converted", "userId": "sarah", "messageId": "paid-1",
                                "timestamp": "2026-11-13T23:00:00Z", "properties": {"plan": "team"}}) + "\n")
    assert main(["ingest", str(paid), "--at", "2026-11-13T18:30:00-05:00"]) == 0
    capsys.readouterr()
    code, text = explain(capsys, "sarah")
    assert code == 0
    lead = next(line for line in text.splitlines() if line.startswith("PQL-"))
    assert "stopped converted" in lead and lead.endswith("closed before a first touch")
    assert "first touch due" not in lead


def test_a_fast_lane_lead_says_why_it_is_fast_lane_not_0_of_10(sample_store, capsys):
    code, text = explain(capsys, "dana")
    assert code == 0
    assert "fast lane · an explicit ask (requested a demo, day 2): qualified at once, whatever the points" in text
    assert "0 of 10" not in text and "0 points" not in text


def test_an_excluded_user_says_why_there_is_no_pql(sample_store, capsys):
    code, text = explain(capsys, "hiro")
    assert code == 0
    assert "excluded · 8 of 10 points" in text
    assert "No PQL: company size 5,000 is outside the ICP range 200-2,000" in text
    assert "PQL-" not in text


def test_below_the_threshold_says_how_many_points_it_takes(sample_store, capsys):
    code, text = explain(capsys, "chloe")
    assert code == 0
    assert "No PQL: 3 of 10 points; it takes 4, and no trigger fired" in text


def test_do_not_touch_says_what_holds_it(sample_store, capsys):
    code, text = explain(capsys, "hannah")
    assert code == 0
    assert "do not touch · high · 8 of 10 points" in text
    assert "No PQL: has an open support ticket" in text


def test_at_a_later_time_the_trial_is_over(sample_store, capsys):
    code, text = explain(capsys, "sarah", "--at", "2026-11-20T15:00:00-05:00")
    assert code == 0
    assert "Judged again from the stored events as of Fri 20 Nov 2026 15:00 EST:" in text
    assert "excluded" in text and "No PQL: " in text and "trial" in text.split("No PQL: ")[1].splitlines()[0]


def test_at_an_earlier_time_the_trail_stops_there_too(sample_store, capsys):
    code, text = explain(capsys, "sarah", "--at", "2026-11-05T12:00:00Z")
    assert code == 0
    assert "below threshold · 0 of 10 points" in text
    assert "gate: has not completed activation" in text
    assert "PQL-" not in text  # the lead was recorded on the 13th


def test_a_lead_is_found_by_its_short_id_and_json_has_the_trail(sample_store, capsys):
    code, text = explain(capsys, "dana", "--json")
    lead = json.loads(text)["lead"]["ref"]
    code, text = explain(capsys, lead, "--json")
    assert code == 0
    shown = json.loads(text)
    assert shown["status"] == "qualified" and shown["tier"] == "fast_lane"
    assert shown["lead"]["ref"] == lead and shown["lead"]["state"] == "assigned"
    assert [step["what"] for step in shown["trail"]][0] == "qualified in the fast lane (an explicit ask)"


def test_someone_not_in_the_store_is_a_clear_error(sample_store, capsys):
    code, text = explain(capsys, "nobody@nowhere.example")
    assert code == 1
    assert text.strip() == ("pqlbot explain: no user 'nobody@nowhere.example' in the store (a product user id, an "
                            "email or PQL-N)")
    assert explain(capsys, "PQL-9999")[1].strip() == "pqlbot explain: no lead PQL-9999 in the store"


@pytest.mark.parametrize(("hour", "minute", "status"), [(11, 0, "held"), (13, 1, "monitor")])
def test_held_and_monitor_are_explained(store_url, monkeypatch, tmp_path, capsys, hour, minute, status):
    """Exactly the threshold with every signal on one day: held for 24 h, then monitor (rules where an invite is
    worth 2 and billing views count on one day)."""
    rules = DEFAULT_RULES.read_text()
    invites = rules.index("[signals.invites]")
    rules = rules[:invites] + rules[invites:].replace("points = 3", "points = 2", 1)
    billing = rules.index("[signals.billing]")
    rules = rules[:billing] + rules[billing:].replace("min_days = 2", "min_days = 1", 1)
    (tmp_path / "rules.toml").write_text(rules)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PQL_RULES_FILE", str(tmp_path / "rules.toml"))
    trial = Trial().activate(1, 10).invite(1, hour=11).view(1, hour=12).view(1, hour=13)
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(e.to_json()) for e in trial.events) + "\n")
    at = trial.on(2, hour, minute).isoformat()
    assert main(["ingest", str(tmp_path / "events.jsonl"), "--at", at]) == 0
    capsys.readouterr()
    code, text = explain(capsys, "ana@acme.com")
    assert code == 0
    assert f"  {status} · " in text and "4 of 9 points (qualifies at 4)" in text
    said = {"held": "No PQL: exactly at the threshold with every signal on one day: held for 24 h, then monitor",
            "monitor": "No PQL: it was held at the threshold with every signal on one day, and nothing came on another"}
    assert said[status] in text
