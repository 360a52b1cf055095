"""Seed 000's bands and seed 004's ACV potential: from the company size, industry and plan the profile holds, with
the bounds, bases, multipliers and the minimum ACV's inputs in the rules file."""

from datetime import datetime

import pytest

from scoring import DEFAULT_RULES, RulesError, load_rules, parse_event
from scoring.result import Band
from tests.scoring.builders import DEFAULT, NY, Trial, qualified_medium, rules_with

DAY_8 = datetime(2026, 11, 9, 18, 0, tzinfo=NY)


def identify(trial: Trial, day: int, **traits) -> Trial:
    trial.events.append(parse_event({"type": "identify", "userId": trial.user, "messageId": f"id-{day}-{len(traits)}",
                                     "timestamp": trial.on(day, 9).isoformat(), "traits": traits}))
    return trial


@pytest.mark.parametrize(("size", "band"), [
    (0, Band.SMB), (199, Band.SMB), (200, Band.MID_MARKET), (2000, Band.MID_MARKET), (2001, Band.ENTERPRISE),
    (None, Band.UNKNOWN),
])
def test_the_band_is_smb_below_200_mid_market_to_2000_inclusive_enterprise_above_and_unknown_without_a_size(size,
                                                                                                         band):
    assert DEFAULT.bands.of(size) is band
    assert Trial(size=size).activate(1).score(DAY_8).band is band


def test_the_band_bounds_come_from_the_rules_file():
    rules = rules_with(**{"bands.mid_market_min": 100, "bands.mid_market_max": 1000})
    assert [rules.bands.of(size) for size in (99, 100, 1000, 1001)] == [
        Band.SMB, Band.MID_MARKET, Band.MID_MARKET, Band.ENTERPRISE]


@pytest.mark.parametrize(("size", "acv"), [(12, 5000), (800, 20000), (5000, 50000), (None, None)])
def test_the_acv_potential_is_the_bands_base_and_none_without_a_size(size, acv):
    result = qualified_medium().score(DAY_8) if size == 800 else Trial(size=size).activate(1).score(DAY_8)
    assert result.acv_potential == acv


def test_industry_and_plan_multiply_the_base_whatever_their_case():
    rules = rules_with(**{"acv.plan": {"Team": 1.5}})
    trial = identify(Trial(size=800, plan="team").activate(1), 2, industry=" FinTech ")
    assert trial.score(DAY_8, rules).acv_potential == 20000 * 1.25 * 1.5
    assert identify(Trial(size=800).activate(1), 2, industry="retail").score(DAY_8, rules).acv_potential == 20000


def test_an_accounts_group_traits_give_the_industry_too():
    from scoring import score_user

    trial = Trial(size=5000).activate(1)
    trial.events.append(parse_event({"type": "group", "userId": "ana", "groupId": "acme", "messageId": "g1",
                                     "timestamp": trial.on(2).isoformat(), "traits": {"industry": "Healthcare"}}))
    groups = {"acme": {"industry": (trial.on(2), "Healthcare")}}
    assert score_user(trial.events, DEFAULT, DAY_8, tz=NY, groups=groups).acv_potential == 62500


def test_band_and_acv_potential_are_in_the_printed_result():
    printed = qualified_medium().score(DAY_8).to_json()
    assert (printed["band"], printed["acv_potential"]) == ("mid_market", 20000)
    unknown = Trial(size=None).activate(1).score(DAY_8).to_json()
    assert (unknown["band"], unknown["acv_potential"]) == ("unknown", None)


def test_the_minimum_acv_is_seed_004s_formula_over_the_files_inputs():
    assert round(DEFAULT.acv.minimum) == 13878  # $3,400 / (0.35 x 0.70); the seed rounds it to $13,900
    rules = rules_with(**{"acv.annual_sales_cost_per_account": 5000, "acv.win_rate": 0.25, "acv.retention": 0.8})
    assert rules.acv.minimum == 25000


def test_a_rules_file_without_bands_or_acv_gets_the_seeds_defaults(tmp_path):
    text = DEFAULT_RULES.read_text()
    older = tmp_path / "older.toml"
    older.write_text(text[:text.index("[bands]")] + text[text.index("[events]"):])
    rules = load_rules(older)
    assert (rules.bands, rules.acv) == (DEFAULT.bands, DEFAULT.acv)


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("win_rate = 0.35", "win_rate = 35", r"acv.win_rate: a share more than 0 and at most 1 \(0.35 for 35%\), not 35"),
    ("retention = 0.70", "retention = 0", "acv.retention: a share more than 0 and at most 1"),
    ("annual_sales_cost_per_account = 3400", "annual_sales_cost_per_account = -1",
     "acv.annual_sales_cost_per_account: Input should be greater than 0"),
    ("enterprise = 50000", "", "acv.base: needs a base for every band: enterprise missing"),
    ("mid_market = 20000", "midmarket = 20000",
     r"acv.base: unknown band 'midmarket' \(the bands: smb, mid_market, enterprise\)"),
    ("fintech = 1.25", "fintech = -2", "acv.industry.fintech: a multiplier must be more than 0, not -2"),
    ("legal = 1.25", "legal = 1.25\nFinTech = 1.1", "acv.industry names 'fintech' twice"),
    ("mid_market_max = 2000", "mid_market_max = 150", "bands.mid_market_max must be at least bands.mid_market_min"),
    ("[acv.plan]", "[acv.plan]\nteam = \"big\"", "acv.plan.team: Input should be a valid number"),
], ids=["win-rate-percent", "retention-zero", "cost", "base-missing", "base-typo", "negative-multiplier",
        "twice", "bounds", "not-a-number"])
def test_a_broken_bands_or_acv_table_is_refused_with_the_reason(tmp_path, old, new, reason):
    broken = tmp_path / "rules.toml"
    text = DEFAULT_RULES.read_text()
    assert old in text
    broken.write_text(text.replace(old, new, 1))
    with pytest.raises(RulesError, match=reason):
        load_rules(broken)
