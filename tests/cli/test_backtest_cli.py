"""`pqlbot backtest` as RevOps uses it: a file or the store, one rules file or two side by side, text or JSON."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bot.cli import main
from bot.services import leads
from bot.services.pipeline import Pipeline
from bot.store.models import Pql
from tests.calibration.test_backtest import cohort, trial
from tests.scoring.builders import NY, Trial, sarah

TRIGGER_KEYS = {"name", "family", "fired", "converted", "conversion_rate", "ci_low", "ci_high", "dark_funnel_rate",
                "assisted_lift", "recommendation"}
RULES = """
[triggers.hot]
label = "Hot"
family = "buying"
strength = "high"
response = 1
within = "24h"
icp_gate = false
talk_track = "billing"
evidence = "hot"
[[triggers.hot.all]]
event = "hot_signal"
"""


@pytest.fixture(autouse=True)
def settings_of_our_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("PQL_TIMEZONE", "America/New_York")
    for name in ("PQL_RULES_FILE", "PQL_REPS", "PQL_HOLIDAYS"):
        monkeypatch.delenv(name, raising=False)


def rules_file(tmp_path, name: str, extra: str = "") -> str:
    from scoring import DEFAULT_RULES

    text = DEFAULT_RULES.read_text()
    text = text[: text.index("[triggers.")] + RULES + extra  # the seed's points model, and only these triggers
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def events_file(tmp_path, events) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e.to_json()) for e in events) + "\n")
    return str(path)


def test_json_prints_one_object_with_the_triggers_days_and_guardrails_the_issue_names(tmp_path, capsys):
    path = events_file(tmp_path, cohort("h", "hot_signal", size=25, converted=10))
    assert main(["backtest", path, "--rules", rules_file(tmp_path, "r.toml"), "--capacity", "1", "--cap", "5",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"triggers", "days", "guardrails"} <= set(out)
    hot = next(row for row in out["triggers"] if row["name"] == "hot")
    assert TRIGGER_KEYS <= set(hot)
    assert (hot["fired"], hot["converted"], hot["conversion_rate"], hot["recommendation"]) == (25, 10, 0.4, "tier1")
    assert out["days"][:2] == [{"date": "2026-11-02", "raised": 0, "capacity": 5},
                               {"date": "2026-11-03", "raised": 25, "capacity": 5}]
    assert {day["raised"] for day in out["days"][2:]} == {0}  # to the last event, a conversion on 11 Nov
    assert out["guardrails"]["days_over_capacity"] == 1


def test_the_table_says_too_few_to_judge_and_the_capacity_in_words(tmp_path, capsys):
    path = events_file(tmp_path, cohort("h", "hot_signal", size=3, converted=1))
    assert main(["backtest", path, "--rules", rules_file(tmp_path, "r.toml"), "--capacity", "2"]) == 0
    out = capsys.readouterr().out
    hot = next(line for line in out.splitlines() if line.startswith("hot "))
    assert "too few to judge" in hot and "33.3%" in hot
    assert "Capacity: 2 rep(s) x 5 a day = 10 a business day; over it on 0 of 8 business day(s)." in out


def test_against_shows_both_rule_sets_and_the_leads_only_one_raises(tmp_path, capsys):
    events = trial("ana", "hot_signal") + trial("bo", "cold_signal")
    cold = '\n[triggers.cold]\nlabel = "Cold"\nfamily = "buying"\nstrength = "high"\nresponse = 1\nwithin = "24h"\n' \
           'icp_gate = false\ntalk_track = "billing"\nevidence = "cold"\n[[triggers.cold.all]]\nevent = "cold_signal"\n'
    path = events_file(tmp_path, events)
    new, shipped = rules_file(tmp_path, "new.toml", cold), rules_file(tmp_path, "shipped.toml")
    assert main(["backtest", path, "--rules", new, "--against", shipped, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in out["against"]["triggers"]][-1] == "hot"
    assert out["differences"] == [{"user_id": "bo", "date": "2026-11-03", "why": ["cold"], "raised_by": "rules"}]
    assert main(["backtest", path, "--rules", new, "--against", shipped]) == 0
    text = capsys.readouterr().out
    assert "Leads one raises and the other does not: 1" in text and "bo" in text and "only " + new in text


def test_a_bad_line_is_named_and_the_rest_replayed(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    good = [json.dumps(e.to_json()) for e in trial("ana", "hot_signal")]
    path.write_text("\n".join([good[0], "garbage", *good[1:]]) + "\n")
    assert main(["backtest", str(path), "--rules", rules_file(tmp_path, "r.toml"), "--json"]) == 1
    captured = capsys.readouterr()
    assert "line 2: not valid JSON" in captured.err
    assert next(r for r in json.loads(captured.out)["triggers"] if r["name"] == "hot")["fired"] == 1


@pytest.mark.parametrize("lines, code, says", [
    ("", 0, "Backtest of {path}: no events to replay.\n"),
    ("garbage\n{}\n", 1, "Backtest of {path}: no events to replay (2 invalid line(s), listed above).\n"),
])
def test_a_file_with_no_events_says_so_instead_of_a_table_of_zeros(tmp_path, capsys, lines, code, says):
    path = tmp_path / "events.jsonl"
    path.write_text(lines)
    assert main(["backtest", str(path)]) == code
    captured = capsys.readouterr()
    assert captured.out == says.format(path=path)
    assert main(["backtest", str(path), "--json"]) == code  # --json: the same object as ever, with nothing in it
    assert json.loads(capsys.readouterr().out)["raised"] == 0


def test_a_window_without_business_days_says_none_rather_than_nothing(tmp_path, capsys):
    path = events_file(tmp_path, trial("ana", "hot_signal"))
    assert main(["backtest", path, "--from", "2026-11-07", "--to", "2026-11-08"]) == 0  # a weekend
    assert "Leads per business day: none (no business day in the window)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["backtest"], ["backtest", "x.jsonl", "--store"],
                                  ["backtest", "x.jsonl", "--from", "2026-11-09", "--to", "2026-11-02"]])
def test_a_wrong_invocation_says_what_to_give(argv, capsys):
    assert main(argv) == 2
    assert "pqlbot backtest:" in capsys.readouterr().err


def test_the_store_is_replayed_with_its_touches_as_contact(engine, monkeypatch, capsys):
    now = datetime(2026, 11, 6, 15, 0, tzinfo=NY)
    pipeline = Pipeline(engine, tz=NY)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, [("U0ANA", "Ana Ruiz", None)], now=now)
    touched, alone = sarah(), Trial("omar", email="omar@globex.example").activate(1).invite(2).integrate(2)
    pipeline.ingest(touched.events + alone.events, at=now)
    with pipeline.session() as session, session.begin():
        pql = session.exec(__import__("sqlmodel").select(Pql).where(Pql.user_id == "sarah")).one()
        who = leads.actor(session, "U0ANA", manager="U0BOSS")
        leads.claim(session, pql, who, now=now, tz=NY, cap=5)
        leads.log_touch(session, pql, who, channel="email", email_key="email1", note=None, now=now)
    pipeline.ingest(Trial("sarah", email="sarah@acme.com").add("trial_converted", touched.on(9, 10)).events[1:],
                    at=touched.on(9, 11))
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert main(["backtest", "--store", "--json", "--min-sample", "1"]) == 0
    points = next(r for r in json.loads(capsys.readouterr().out)["triggers"] if r["name"] == "points")
    assert (points["fired"], points["converted"], points["dark_funnel_rate"], points["assisted_lift"]) == \
        (2, 1, 0.0, 1.0)


def test_a_history_too_short_for_60_days_says_the_rates_are_floors_and_one_with_no_conversion_says_so(tmp_path,
                                                                                                       capsys):
    # 25 fired, 2 converted (8 %), the history ending ten days after: 23 may still pay. Seed 001's `retire` waits.
    path = events_file(tmp_path, cohort("h", "hot_signal", size=25, converted=2))
    assert main(["backtest", path, "--rules", rules_file(tmp_path, "r.toml")]) == 0
    out = capsys.readouterr().out
    hot = next(line for line in out.splitlines() if line.startswith("hot "))
    assert hot.endswith("too early: under 10% so far, 23 of 25 within their 60 days")
    assert ("Still open: 23 firing(s) came under 60 days before the history ends and have not converted (yet): the "
            "rates above are floors, so a tier stands, but `retire` waits until 20 of a trigger's firings have had "
            "their 60 days.") in out
    assert "No firing converted" not in out
    assert main(["backtest", path, "--rules", rules_file(tmp_path, "r.toml"), "--json"]) == 0
    [hot] = [row for row in json.loads(capsys.readouterr().out)["triggers"] if row["name"] == "hot"]
    assert (hot["recommendation"], hot["open"]) == ("too_early", 23)

    path = events_file(tmp_path, cohort("h", "hot_signal", size=25, converted=0))
    assert main(["backtest", path, "--rules", rules_file(tmp_path, "r.toml")]) == 0
    assert ("No firing converted: is the conversion in this history under another name? pqlbot reads "
            "`trial_converted`") in capsys.readouterr().out
