"""The README's rules language section cannot drift: its TOML examples load through the rules model, each history it
gives fires its trigger exactly when it says, what it quotes of the alert is what the alert says, and its catalogue
table lists exactly the triggers of the default rules file."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.services.alert_text import fired_line
from scoring import DEFAULT_RULES
from scoring.rules import Rules
from scoring.triggers import Catalogue, micros
from templates import sentences

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## The rules language: triggers\n", 1)[1].split("\n## ", 1)[0]
NY = ZoneInfo("America/New_York")
_US = timedelta(microseconds=1)


def examples() -> list[tuple[str, str, list[dict], datetime, str]]:
    """Each worked example: (its TOML, the trigger's name, its history, when the README says it fires, the text
    from its TOML to the next example)."""
    found = []
    for part in re.split(r"\n\*\*\d\. ", SECTION)[1:]:
        toml = part.split("```toml\n", 1)[1].split("```", 1)[0]
        history = [json.loads(line) for line in part.split("```jsonl\n", 1)[1].split("```", 1)[0].splitlines()]
        fires = re.search(r"fires at\s+`([^`]+)`", part)
        [name] = tomllib.loads(toml)["triggers"]
        found.append((toml, name, history, datetime.fromisoformat(fires.group(1)), part))
    return found


EXAMPLES = examples()


def rules_with(toml: str) -> Rules:
    """The default rules file with the README example as its only trigger."""
    data = tomllib.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    return Rules.model_validate(data | {"triggers": tomllib.loads(toml)["triggers"]})


def fired_at(rules: Rules, name: str, history: list[dict], at: datetime):
    catalogue = Catalogue(rules.triggers, rules.events.is_billing)
    lists = [[] for _ in range(len(catalogue))]
    for event in history:
        catalogue.feed(lists, event["event"], event.get("properties", {}),
                       micros(datetime.fromisoformat(event["timestamp"])), event["userId"])
    return catalogue.fired(name, lists, micros(at), NY)


def test_the_readme_gives_three_worked_examples_a_compound_buying_trigger_a_blocker_and_an_account_trigger():
    kinds = [(rules_with(toml).triggers[name], len(rules_with(toml).triggers[name].all)) for toml, name, *_ in EXAMPLES]
    assert [(t.family, t.level, count > 1) for t, count in kinds] == [
        ("buying", "user", True), ("blocker", "user", False), ("buying", "account", False)]
    assert rules_with(EXAMPLES[1][0]).triggers[EXAMPLES[1][1]].all[0].not_followed_by is not None


@pytest.mark.parametrize(("toml", "name", "history", "fires", "text"), EXAMPLES, ids=[e[1] for e in EXAMPLES])
def test_each_readme_history_fires_its_trigger_exactly_when_the_readme_says(toml, name, history, fires, text):
    rules = rules_with(toml)
    fired = fired_at(rules, name, history, fires + timedelta(days=30))
    assert fired is not None and fired.at == fires
    assert fired_at(rules, name, history, fires - _US) is None


def test_the_readme_blocker_never_fires_when_the_setup_is_completed_at_the_last_moment():
    toml, name, history, fires, _ = EXAMPLES[1]
    done = {"type": "track", "event": "sso_config_completed", "userId": "raj", "messageId": "raj-9",
            "timestamp": fires.isoformat()}
    assert fired_at(rules_with(toml), name, [*history, done], fires + timedelta(days=30)) is None


def test_the_readme_compound_example_weighs_what_it_says():
    toml, name, history, fires, text = EXAMPLES[0]
    fired = fired_at(rules_with(toml), name, history, fires)
    assert f"it weighs 1.5 × 3 = {fired.weight:g}" in " ".join(text.split())


@pytest.mark.parametrize(("toml", "name", "history", "fires", "text"), EXAMPLES, ids=[e[1] for e in EXAMPLES])
def test_what_the_readme_says_the_rep_reads_is_what_the_alert_says(toml, name, history, fires, text):
    trigger = rules_with(toml).triggers[name]
    quoted = " ".join(line.removeprefix(">").strip() for line in text.splitlines() if line.startswith(">"))
    family = sentences("scoring/triggers.j2")("family", family=trigger.family).replace("*", "**")
    assert quoted.startswith(family)
    if "{" not in trigger.evidence:
        assert f"• {fired_line(trigger.label, trigger.response, trigger.evidence)}" in quoted


def catalogue_rows() -> dict[str, list[str]]:
    table = SECTION.split("**The catalogue.**", 1)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): [c.strip() for c in cells[1:]] for cells in rows}


def test_the_readme_catalogue_lists_exactly_the_triggers_of_the_default_rules_file():
    default = tomllib.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    if not default.get("triggers"):
        pytest.skip("the default rules file has no trigger catalogue yet")
    triggers = Rules.model_validate(default).triggers
    rows = catalogue_rows()
    assert sorted(rows) == sorted(triggers)
    for name, (level, family, tier, window, seed) in rows.items():
        trigger = triggers[name]
        assert [level, family, tier, window] == [trigger.level, trigger.family, str(trigger.response),
                                                 trigger.within], name
        assert seed.split()[0] == trigger.seed.split()[0], name  # the seed it cites


def test_the_readme_catalogue_names_the_triggers_the_default_catalogue_is_to_hold():
    assert {"active_buyer", "limit_then_upgrade", "plan_comparison_and_billing", "enterprise_feature",
            "advanced_onboarding", "sso_stalled", "integration_failing", "security_review",
            "stuck_enterprise"} <= set(catalogue_rows())
    assert {row[0] for row in catalogue_rows().values()} == {"user", "account"}
