"""`pqlbot demo` replays the sample's fortnight through the pipeline; `alert_text` is the alert's plain text."""

from __future__ import annotations

import re
import sqlite3

import pytest

from bot.cli import main
from bot.demo import sample
from bot.services import outreach
from bot.services.alert_text import alert_text
from scoring import load_rules, parse_event, score_users
from tests.services.test_outreach import FORBIDDEN

# The outreach kit's words for watching users, except the PQL ref and its score: reps see those.
WATCHING = [p for p in FORBIDDEN if "PQL" not in p and "scor" not in p] + [r"https?:", r"\bwww\."]


@pytest.fixture
def run_demo(tmp_path, capsys, monkeypatch):
    """Runs `pqlbot demo --fast` into one folder; returns (exit code, stdout, stderr, database path)."""
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no line a test reads is wrapped
    folder = tmp_path / "d"

    def run():
        code = main(["demo", "--dir", str(folder), "--fast"])
        out, err = capsys.readouterr()
        return code, out, err, folder / "pqlbot.db"

    return run


def pqls_in(database) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT id, user_id, tier, score, qualified_at FROM pqls ORDER BY id").fetchall()


def statuses_in(database) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT user_id, status FROM trial_users").fetchall())


def test_the_demo_shows_sarah_as_a_medium_pql_scoring_6_and_tom_as_not_routed_for_company_size(run_demo):
    code, out, _, _ = run_demo()
    assert code == 0
    assert re.search(r"Medium PQL-\d+ · Sarah Chen, Data Engineer at Acme Corp \(800 people\) · 6/10", out)
    assert re.search(r"PQL-\d+ +Sarah Chen, Acme Corp +medium +6/10", out)
    assert re.search(r"Tom Becker +excluded: company size 50 is outside the ICP range", out)
    assert not any("Tom Becker" in line for line in out.splitlines() if "PQL-" in line)
    assert re.search(r"Kevin Doyle +excluded: .*personal gmail\.com address", out)
    assert re.search(r"Hannah Schmidt +do_not_touch: has an open support ticket", out)


def test_the_demo_shows_a_fast_lane_pql_and_an_upgrade_with_the_slack_alert(run_demo):
    _, out, _, _ = run_demo()
    assert re.search(r"⚡ Fast-lane PQL-\d+: Dana Whitfield \(Head of Data, Northwind Logistics, 1,200 people\) "
                     r"requested a demo", out)
    nina = re.search(r"Medium (PQL-\d+) · Nina Park", out).group(1)
    assert f"{nina} · upgraded medium → 🔥 high" in out
    assert re.search(rf"🔥 High {nina} · Nina Park, .* · 8/10", out)
    assert "Slack alert would say:" in out and "── Tue 3 Nov ──" in out


def test_each_pql_of_the_demo_shows_its_band_and_acv_potential(run_demo):
    _, out, _, _ = run_demo()
    dana = out[out.index("Dana Whitfield, Head of Data"):]
    assert re.match(r"[^\n]*\n[^\n]*\n│ Account +Mid-market · ACV potential ≈ \$20,000", dana)


def test_the_demo_store_holds_one_pql_per_qualified_user_and_a_second_run_starts_afresh(run_demo):
    _, _, _, database = run_demo()
    assert database.exists()
    first = pqls_in(database)
    users = [user_id for _, user_id, *_ in first]
    statuses = statuses_in(database)
    assert len(users) == len(set(users))
    assert {u for u, status in statuses.items() if status == "qualified"} <= set(users)
    named = {u for u, (status, _) in sample.expected_outcomes().items() if status == "qualified"}
    assert {u for u in named if statuses[u] == "qualified"} == named
    assert [(tier, score) for _, user_id, tier, score, _ in first if user_id == "sarah"] == [("medium", 6)]

    code, _, _, _ = run_demo()
    assert code == 0
    assert pqls_in(database) == first


def test_the_demo_will_not_wipe_a_folder_it_did_not_make(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["demo", "--dir", str(folder), "--fast"]) == 2
    assert "not a pqlbot demo folder" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"


@pytest.fixture(scope="module")
def verdicts():
    """The sample's named users, scored as of SAMPLE_AS_OF with the default rules."""
    rules = load_rules()
    with sample.SAMPLE_PATH.open(encoding="utf-8") as lines:
        events = [parse_event(line, rules) for line in lines if line.strip()]
    results = score_users(events, rules, sample.SAMPLE_AS_OF, tz=sample.SAMPLE_TZ)
    return {result.user_id: result for result in results}


def alert_for(result, ref="PQL-5"):
    context = outreach.LeadContext.from_result(result, product_name="Lakeview", at=sample.SAMPLE_AS_OF,
                                               tz=sample.SAMPLE_TZ)
    talk = outreach.talk_track(context)
    return alert_text(ref, result, talk_track=talk), talk


@pytest.mark.parametrize("user_id", ["sarah", "raj", "dana", "marcus", "elena", "grace"])
def test_an_alert_names_the_ref_company_size_and_talk_track_and_nothing_about_usage_or_links(verdicts, user_id):
    text, talk = alert_for(verdicts[user_id])
    result = verdicts[user_id]
    assert "PQL-5" in text and f"{result.company_size:,} people" in text and result.account.company_name in text
    assert f"Talk track: {talk}" in text
    assert f"Trial day {result.trial_day}, {result.days_left} days left" in text
    assert [m for p in WATCHING for m in re.findall(p, text, re.IGNORECASE)] == []


def test_a_high_alert_leads_with_tier_who_company_and_score_then_the_signals_in_trial_days(verdicts):
    text, _ = alert_for(verdicts["raj"])
    first, second, third = text.splitlines()
    assert first == "🔥 High PQL-5 · Raj Malhotra, Senior Data Engineer at Cobalt Freight (450 people) · 8/10"
    assert second.startswith("Trial day 11, 4 days left · Activated (day 1); connected BigQuery (day 1); ")
    assert third.startswith("Talk track: Lead with integration setup help")


def test_a_medium_alert_carries_no_emoji_but_the_score(verdicts):
    text, _ = alert_for(verdicts["sarah"], ref="PQL-12")
    assert text.startswith("Medium PQL-12 · Sarah Chen, Data Engineer at Acme Corp (800 people) · 6/10\n")


def test_a_fast_lane_alert_says_what_they_asked_for_and_how_soon_to_reply(verdicts):
    text, _ = alert_for(verdicts["dana"], ref="PQL-4")
    assert text.splitlines()[0] == ("⚡ Fast-lane PQL-4: Dana Whitfield (Head of Data, Northwind Logistics, "
                                    "1,200 people) requested a demo — reply within 1 hour")
