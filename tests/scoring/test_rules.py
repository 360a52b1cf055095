"""The rules file: the seed model by default, recalibrated by editing a copy, refused clearly when wrong."""

from datetime import datetime

import pytest

from scoring import DEFAULT_RULES, RulesError, Status, Tier, load_rules
from tests.scoring.builders import NY, rules_with, sarah

DAY_8 = datetime(2026, 11, 9, 18, 0, tzinfo=NY)


def test_the_default_rules_are_the_seed_002_model():
    rules = load_rules()
    assert (rules.gates.company_size_min, rules.gates.company_size_max) == (200, 2000)
    assert {k: s.points for k, s in rules.signals.items()} == {
        "integration": 3, "invites": 3, "billing": 2, "multi_day": 2}
    assert (rules.tiers.qualify, rules.tiers.high, rules.max_score, rules.window.days) == (4, 7, 10, 10)
    assert {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me"} <= (
        rules.exclusions.personal_email_domains)


def test_a_recalibrated_copy_of_the_rules_file_changes_the_outcome(tmp_path):
    stricter = tmp_path / "rules.toml"
    stricter.write_text(DEFAULT_RULES.read_text().replace("qualify = 4", "qualify = 7"))
    assert sarah().score(DAY_8).status is Status.QUALIFIED
    assert sarah().score(DAY_8, load_rules(stricter)).status is Status.BELOW_THRESHOLD


def test_reweighting_a_signal_changes_the_tier():
    richer = rules_with(**{"signals.integration.points": 5})
    assert sarah().score(DAY_8, richer).tier is Tier.HIGH


def test_a_missing_rules_file_is_reported_by_name(tmp_path):
    with pytest.raises(RulesError, match="no such rules file"):
        load_rules(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("qualify = 4", "qualify = = 4", "not valid TOML"),
        ("high = 7", "high = 2", "tiers.high must be at least tiers.qualify"),
        ('event = "invite_sent"', 'event = "$identify"', "'\\$identify' is not an event name"),
        ("points = 3", "points = -3", "points: Input should be greater than or equal to 0"),
        ("[hold]", "[hold]\nminutes = 5", "hold.minutes: Extra inputs are not permitted"),
    ],
    ids=["toml", "tiers", "reserved-event", "negative-points", "typo"],
)
def test_a_broken_rules_file_is_refused_with_the_reason(tmp_path, old, new, reason):
    broken = tmp_path / "rules.toml"
    broken.write_text(DEFAULT_RULES.read_text().replace(old, new, 1))
    with pytest.raises(RulesError, match=reason) as error:
        load_rules(broken)
    assert str(broken) in str(error.value)
