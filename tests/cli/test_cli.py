"""`pqlbot score` and `pqlbot rules` as an operator uses them."""

import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from scoring import DEFAULT_RULES
from tests.scoring.builders import sarah

AT = "2026-11-09T18:00:00-05:00"
RESULT_KEYS = {"user_id", "email", "account", "company_size", "band", "acv_potential", "score", "max_score", "tier",
               "status", "signals", "reasons", "strongest_signal", "trial_day", "days_left",
               "level", "family", "triggers"}


@pytest.fixture
def events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e.to_json()) for e in sarah().events]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_score_json_prints_one_object_per_user_with_exactly_the_result_keys(events_file, capsys):
    assert main(["score", str(events_file), "--at", AT, "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert set(result) == RESULT_KEYS
    assert (result["user_id"], result["status"], result["tier"], result["score"]) == ("sarah", "qualified", "medium", 6)
    assert (result["company_size"], result["band"], result["acv_potential"]) == (800, "mid_market", 20000)


def test_score_json_lines_say_which_triggers_made_a_lead_with_their_family_tier_and_evidence(tmp_path, capsys):
    from tests.scoring.builders import Trial

    stuck = Trial("omar", email="omar@globex.com", size=5000)  # enterprise: seed 002's gate does not apply
    stuck.add("sso_config_started", stuck.on(1, 12)).add("security_doc_downloaded", stuck.on(2, 10))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e.to_json()) for e in stuck.events) + "\n")
    assert main(["score", str(path), "--at", stuck.on(8, 13).isoformat(), "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert (result["status"], result["tier"], result["family"], result["level"]) == ("qualified", "high", "blocker",
                                                                                     "user")
    triggers = {t["name"]: t for t in result["triggers"]}
    assert set(triggers) == {"sso_stalled", "security_review", "stuck_enterprise"}
    assert {k: triggers["sso_stalled"][k] for k in ("family", "response", "evidence")} == {
        "family": "blocker", "response": 1, "evidence": "started setting up SSO and has not finished it in 7 days"}
    assert triggers["security_review"]["response"] == 2
    assert result["strongest_signal"] == "sso_stalled"


def test_invalid_lines_are_reported_by_number_and_the_rest_still_scored(events_file, capsys):
    lines = events_file.read_text().splitlines()
    lines.insert(1, '{"type": "track", "event": "invite_sent"}')
    lines.insert(3, "garbage")
    events_file.write_text("\n".join(lines) + "\n\n")
    assert main(["score", str(events_file), "--at", AT, "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "qualified"
    assert "line 2: userId: is required" in err and "line 4: not valid JSON" in err


@pytest.mark.parametrize("lines, code, says", [
    ("", 0, "No users to score in {path}.\n"),
    ("garbage\n\n{}\n", 1, "No users to score in {path} (2 invalid line(s), listed above).\n"),
])
def test_a_file_with_no_users_says_so_instead_of_an_empty_table(tmp_path, capsys, lines, code, says):
    path = tmp_path / "events.jsonl"
    path.write_text(lines)
    assert main(["score", str(path)]) == code
    assert capsys.readouterr().out == says.format(path=path)


def test_events_can_come_from_standard_input(events_file, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(events_file.read_text()))
    assert main(["score", "-", "--at", AT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["user_id"] == "sarah"


def test_the_table_names_each_user_with_status_and_talk_track(events_file, capsys):
    assert main(["score", str(events_file), "--at", AT]) == 0
    out = capsys.readouterr().out
    assert "sarah@acme.com" in out and "qualified" in out and "medium" in out
    assert "Suggested talk tracks" in out and "dbt" in out


def test_a_rules_file_passed_on_the_command_line_is_used(events_file, tmp_path, capsys):
    strict = tmp_path / "strict.toml"
    strict.write_text(DEFAULT_RULES.read_text().replace("qualify = 4", "qualify = 7"))
    main(["score", str(events_file), "--at", AT, "--json", "--rules", str(strict)])
    assert json.loads(capsys.readouterr().out)["status"] == "below_threshold"


def test_a_missing_events_file_is_a_clear_error(tmp_path, capsys):
    assert main(["score", str(tmp_path / "none.jsonl")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_rules_command_summarises_the_model_and_refuses_a_broken_file(tmp_path, capsys):
    assert main(["rules"]) == 0
    assert "Teammate invites" in capsys.readouterr().out
    broken = tmp_path / "broken.toml"
    broken.write_text("[tiers\n")
    assert main(["rules", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_rules_command_shows_the_bands_the_acv_model_and_the_minimum_acv_worked_out(tmp_path, capsys):
    assert main(["rules"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as one line, however the terminal wrapped it
    assert "Bands by company size: SMB under 200 · Mid-market 200-2,000 · Enterprise over 2,000" in out
    assert "no size known: band unknown, no ACV estimate" in out
    assert ("ACV potential = base by band × industry × plan: SMB $5,000 (under the minimum) · Mid-market $20,000 · "
            "Enterprise $50,000") in out
    assert "industry: fintech ×1.25, healthcare ×1.25, legal ×1.25" in out
    assert "Minimum ACV for a sales touch: $13,878 = $3,400 / (win rate 0.35 × retention 0.7)" in out
    assert "Fast lane: demo_requested, contact_sales_requested, at any company size or none known" in out
    changed = tmp_path / "rules.toml"
    changed.write_text(DEFAULT_RULES.read_text().replace("win_rate = 0.35", "win_rate = 0.25"))
    assert main(["rules", str(changed)]) == 0
    assert "$19,429 = $3,400 / (win rate 0.25 × retention 0.7)" in " ".join(capsys.readouterr().out.split())


def test_the_table_shows_each_users_band_and_acv_potential(events_file, capsys):
    assert main(["score", str(events_file), "--at", AT]) == 0
    assert "≈$20,000" in capsys.readouterr().out


def test_the_sample_shows_sarah_as_a_pql_and_tom_as_not(capsys):
    assert main(["score", "--sample", "--json"]) == 0
    results = {r["user_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert results["sarah"]["status"] == "qualified" and results["sarah"]["score"] == 6
    assert results["tom"]["status"] == "excluded"


def test_the_table_gives_a_fast_lane_lead_its_ask_the_tier_under_the_status_and_why_not_first(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["score", "--sample"]) == 0
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("│ ") and "@" in line.split("│")[1]}
    assert rows["dana.whitfield@northwindlogistics.com"][1:3] == ["qualified", "ask"]  # not 0/10: her ask qualified her
    assert rows["sarah@acme.com"][1:3] == ["qualified", "6/10"]
    assert rows["tom.becker@quillbyte.io"][3].startswith("why not: company size 50 is outside the ICP range")


def test_the_readme_worked_example_scores_as_the_readme_says(tmp_path, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = readme.split("```json\n", 1)[1].split("```", 1)[0]
    (tmp_path / "sarah.jsonl").write_text(example)
    assert main(["score", str(tmp_path / "sarah.jsonl"), "--at", AT, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["score"], result["tier"]) == ("qualified", 6, "medium")
    assert result["strongest_signal"] == "integration"
    assert [s["day"] for s in result["signals"]] == [5, 5, 5]


def test_score_json_follows_the_users_with_a_line_per_account_where_an_account_trigger_fired(tmp_path, capsys):
    from datetime import datetime, timedelta

    from tests.scoring.builders import NY, Trial

    start = datetime(2026, 11, 2, 10, 0, tzinfo=NY)
    events = []
    for i in range(5):
        trial = Trial(f"u{i}", email=f"u{i}@acme.com", company="Acme Corp", signup=start, first_name=f"U{i}")
        events += trial.add("activation_complete", start + timedelta(days=i, hours=1)).events
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e.to_json()) for e in events) + "\n")
    assert main(["score", str(path), "--at", AT, "--json"]) == 0  # the default rules' team_activation
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["level"] for line in lines] == ["user"] * 5 + ["account"]
    account = lines[-1]
    assert set(account) == RESULT_KEYS | {"users"}
    assert account["account"]["key"] == "domain:acme.com" and account["status"] == "qualified"
    assert [u["user_id"] for u in account["users"]] == ["u0", "u1", "u2", "u3", "u4"]
    fired = {t["name"]: t for t in account["triggers"]}
    assert fired["team_activation"]["users"] == ["u0", "u1", "u2", "u3", "u4"]


@pytest.fixture
def crowd_file(tmp_path):
    """Four trials as of AT: Bo asked for a demo (fast lane), Sarah qualified (medium), Cy only activated (below the
    threshold) and Di's company is too small (excluded)."""
    from tests.scoring.builders import Trial

    bo = Trial("bo", email="bo@globex.com", company="Globex", size=900)
    bo.add("demo_requested", bo.on(3))
    cy = Trial("cy", email="cy@initech.com", company="Initech", size=500).activate(2)
    di = Trial("di", email="di@tinyco.com", company="TinyCo", size=50).activate(2)
    path = tmp_path / "crowd.jsonl"
    events = sarah().events + bo.events + cy.events + di.events
    path.write_text("\n".join(json.dumps(e.to_json()) for e in events) + "\n")
    return path


def test_the_table_shows_the_top_leads_and_counts_everyone_it_leaves_out(crowd_file, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["score", str(crowd_file), "--at", AT, "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "bo@globex.com" in out and "sarah@acme.com" in out
    assert "cy@initech.com" not in out and "di@tinyco.com" not in out
    assert out.index("bo@globex.com") < out.index("sarah@acme.com")  # the fast lane first
    assert "4 users (2 qualified, 1 below_threshold, 1 excluded)" in out
    assert "Qualified by tier: 1 ⚡ fast lane · 1 medium" in out
    assert "Why not, most often: company size out of range (1)" in out  # Di's, though the table leaves her out
    assert "The table shows the first 2 of 4 users, leads first: --top N for more, --all for every user" in out


def test_a_file_that_fits_the_table_shows_everyone_with_why_not(crowd_file, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["score", str(crowd_file), "--at", AT]) == 0
    out = capsys.readouterr().out
    assert all(email in out for email in ("bo@globex.com", "sarah@acme.com", "cy@initech.com", "di@tinyco.com"))
    assert "outside the ICP range" in out and "The table shows" not in out


def test_top_0_prints_only_the_counts(crowd_file, capsys):
    assert main(["score", str(crowd_file), "--at", AT, "--top", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "PQL verdicts" not in out and "Suggested talk tracks" not in out
    assert out.startswith("4 users (2 qualified, 1 below_threshold, 1 excluded)")


def test_all_lists_every_user_as_a_tab_separated_line_in_the_tables_order(crowd_file, capsys):
    import csv

    assert main(["score", str(crowd_file), "--at", AT, "--all"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out), delimiter="\t"))
    assert [(r["user_id"], r["status"], r["tier"], r["score"]) for r in rows] == [
        ("bo", "qualified", "fast_lane", "0"), ("sarah", "qualified", "medium", "6"),
        ("cy", "below_threshold", "", "0"), ("di", "excluded", "", "0")]
    sarah_row = rows[1]
    assert (sarah_row["email"], sarah_row["company"], sarah_row["company_size"], sarah_row["band"],
            sarah_row["acv_potential"]) == ("sarah@acme.com", "Acme Corp", "800", "mid_market", "20000")
    assert "invited 2 teammates (day 5)" in sarah_row["signals"]
    assert "company size 50 is outside the ICP range" in rows[3]["why_not"]


def test_all_json_and_top_are_one_choice(crowd_file, capsys):
    with pytest.raises(SystemExit) as done:
        main(["score", str(crowd_file), "--all", "--json"])
    assert done.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("processes", ["0", "-2", "two"])
def test_a_number_of_processes_below_one_is_refused_not_taken_as_one(crowd_file, capsys, processes):
    with pytest.raises(SystemExit) as done:
        main(["score", str(crowd_file), "--processes", processes])
    assert done.value.code == 2
    assert "argument --processes" in capsys.readouterr().err


@pytest.mark.parametrize(("write", "says", "path"), [
    (lambda calls: json.dumps(calls, indent=2), "a JSON array, not JSON lines", ".[]"),
    (lambda calls: json.dumps(calls), "a JSON array, not JSON lines", ".[]"),
    (lambda calls: json.dumps({"batch": calls}), "a Segment batch document, not JSON lines", ".batch[]"),
    (lambda calls: json.dumps({"batch": calls}, indent=2), "one JSON document over many lines, not JSON lines",
     ".batch[]? // ."),
])
@pytest.mark.parametrize("command", ["score", "backtest", "ingest"])
def test_an_export_that_is_not_json_lines_is_named_with_the_jq_line_that_makes_it_so(tmp_path, capsys, monkeypatch,
                                                                                     write, says, path, command):
    # A JSON array or a batch document was read line by line: one "not valid JSON" per line, and nothing scored.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    export = tmp_path / "export.json"
    export.write_text(write([event.to_json() | {"timestamp": event.at.isoformat()} for event in sarah().events]))
    assert main([command, str(export)]) == 2
    out, err = capsys.readouterr()
    jq = f"jq -c '{path}' {export} > events.jsonl"
    assert err == f"pqlbot {command}: {export} is {says}; write one event per line: {jq}\n"
    assert "not valid JSON" not in out + err


def test_a_pipe_given_as_a_file_is_read_whole_not_looked_into_first(events_file, capsys):
    # `pqlbot score <(zcat events.jsonl.gz)`: the check for .gz and byte-order marks must not eat a pipe's first bytes.
    import os
    import threading

    read, write = os.pipe()
    feeder = threading.Thread(target=lambda: (os.write(write, events_file.read_bytes()), os.close(write)))
    feeder.start()
    try:
        assert main(["score", f"/dev/fd/{read}", "--json", "--at", AT]) == 0
    finally:
        feeder.join()
        os.close(read)
    assert [json.loads(line)["user_id"] for line in capsys.readouterr().out.splitlines()] == ["sarah"]
