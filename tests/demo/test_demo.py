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


def test_the_list_of_leads_reads_whole_in_an_80_column_terminal(run_demo, monkeypatch):
    """Each lead's tier, who, when, its verdict now and its state, wrapped under the lead rather than cut to "PQ…"."""
    run = run_demo
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _, _ = run()
    assert code == 0
    listed = out[out.index("PQLs raised:"):out.index("Not routed, and why")]
    assert "…" not in listed and max(len(line.rstrip()) for line in listed.splitlines()) <= 80
    words = " ".join(listed.split())
    assert re.search(r"PQL-\d+ medium 6/10 Sarah Chen, Acme Corp qualified \w{3} \d+ Nov · now qualified · "
                     r"(Ana Ruiz|Ben Okafor): ", words)


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
    assert re.search(r"PQL-\d+ +medium 6/10 +Sarah Chen, Acme Corp *\n", out)
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


# The whole loop: the simulated team at work on the sample's leads ---------------------------------------------------

@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """One run of `pqlbot demo --fast` for the tests of the team's story: (stdout, working folder)."""
    import io

    from rich.console import Console

    from bot.demo import replay
    from bot.settings import Settings

    folder = tmp_path_factory.mktemp("demo") / "d"
    out = io.StringIO()
    assert replay.run(folder, Settings(_env_file=None), fast=True,
                      console=Console(file=out, width=200, color_system=None)) == 0
    return out.getvalue(), folder


def lines_with(out: str, *parts: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if all(part in line for part in parts)]


def test_the_demo_routes_each_lead_to_a_named_rep_and_says_why(demo_output):
    out, _ = demo_output
    assert "the team (Ana Ruiz, Ben Okafor, Maria Chen (manager); business hours 09:00-18:00 New York, 2 new leads a " \
        "rep a day) works them" in " ".join(out.split())
    [first] = lines_with(out, "→ PQL-1 to ")
    assert first == ("Tue 11:00  → PQL-1 to Ana Ruiz — round-robin: fewest active leads (0), 0 medium this week, "
                     "0 of 2 new today")
    [fast] = lines_with(out, "→ PQL-4 to ")
    assert "fast lane (never capped)" in fast


def test_the_cap_holds_and_the_queue_is_drained_at_the_next_opening(demo_output):
    out, _ = demo_output
    assert lines_with(out, "Thu 13:00", "Ben Okafor is away (/pql pause)")
    [queued] = lines_with(out, "PQL-9 queued")
    assert queued.startswith("Thu 16:24") and "every available rep is at today's cap of 2" in queued
    [night] = lines_with(out, "PQL-10 queued")
    assert night.startswith("Thu 20:15") and "outside business hours" in night
    assert lines_with(out, "Fri 09:00  → PQL-9 to Ben Okafor — from the queue")
    assert lines_with(out, "Fri 09:00  → PQL-10 to Ana Ruiz — from the queue")


def test_one_here_and_one_manager_escalation_each_at_its_business_minute(demo_output):
    out, _ = demo_output
    # Queued at 16:24 Thursday: 1 business hour later is 17:24; 2 business hours run through the night to 09:24.
    assert lines_with(out, "@here") == ["Thu 17:24  💬 in PQL-9's thread: @here PQL-9 has waited 1 h with nobody "
                                        "claiming it. Claim it from the alert above, or `/claim PQL-9`."]
    assert lines_with(out, "DM to Maria Chen (manager)") == [
        "Fri 09:24  ✉ DM to Maria Chen (manager): ⏰ PQL-9 is still unclaimed · Tara Ivanova · Unclaimed for 2 h"]
    claimed = lines_with(out, "PQL-9 claimed by @Ben Okafor")
    assert claimed and claimed[0].startswith("Fri 09:44")


def test_claims_touches_and_dispositions_show_in_the_leads_threads(demo_output):
    out, _ = demo_output
    assert lines_with(out, "Tue 11:20  💬 in PQL-1's thread: PQL-1 claimed by @Ana Ruiz.")
    assert lines_with(out, "Tue 12:00  💬 in PQL-1's thread: Touch 1 of 3 by @Ana Ruiz: Email (Email 1)")
    assert lines_with(out, "Thu 12:00  💬 in PQL-1's thread: Disposition: Meeting Set by @Ana Ruiz")
    assert lines_with(out, "Disposition: Nurture by @Ben Okafor")
    assert lines_with(out, "Email 2 is due for PQL-4")  # the follow-up sweep's reminder


def test_a_conversion_stops_the_sequence(demo_output):
    out, _ = demo_output
    assert lines_with(out, "Thu 14:16  ⏹ PQL-7 stopped: checkout_completed — its outreach sequence ends")
    assert lines_with(out, "PQL-7's thread: Sam Whitaker (PQL-7) just converted to paid on their own. The sequence is "
                           "stopped")


def test_the_friday_review_is_printed_and_its_chart_written_to_a_png_whose_path_is_printed(demo_output):
    out, folder = demo_output
    assert lines_with(out, "Fri 10:00  📊 #pql-alerts: the Friday review of 2026-W45")
    assert lines_with(out, "Fri 10:00  📊 #pql-alerts: the Friday review of 2026-W46")
    assert "PQL weekly review · 2026-W46 (09 Nov - 15 Nov)" in out
    chart = folder / "review-2026-W46.png"
    assert f"Chart: {chart}" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fast_lane_leads_say_why_they_are_fast_lane_not_score_0(demo_output):
    out, _ = demo_output
    assert "0/10" not in out
    assert lines_with(out, "Why", "⚡ fast lane · requested a demo on day 2: an explicit ask qualifies at once")
    assert re.search(r"PQL-4 +⚡ fast lane +Dana Whitfield, Northwind Logistics *\n", out)
