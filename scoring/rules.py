"""The scoring rules: a TOML file validated into a `Rules` model.

The default file is the seed 002 model. Teams recalibrate by copying it, not by editing code.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scoring.events import BILLING_VIEW, CANONICAL_EVENTS, RESERVED_PREFIX, SCREEN_VIEW, describe
from scoring.result import Band
from scoring.triggers import Level, Trigger

DEFAULT_RULES = files("scoring").joinpath("default_rules.toml")

Count = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gates(_Section):
    activation_event: str = "activation_complete"
    company_size_min: Count = 200
    company_size_max: Count = 2000


class Window(_Section):
    days: PositiveInt = 10
    trial_length_days: PositiveInt = 14


class Tiers(_Section):
    qualify: PositiveInt = 4
    high: PositiveInt = 7


class Hold(_Section):
    hours: Count = 24


class FastLane(_Section):
    events: tuple[str, ...] = ("demo_requested", "contact_sales_requested")


class Bands(_Section):
    """Seed 000's bands by company size (employees): SMB below `mid_market_min`, mid-market from it to
    `mid_market_max` inclusive, enterprise above; no size known, band "unknown"."""

    mid_market_min: Count = 200
    mid_market_max: Count = 2000

    def of(self, size: int | None) -> Band:
        if size is None:
            return Band.UNKNOWN
        if size < self.mid_market_min:
            return Band.SMB
        return Band.MID_MARKET if size <= self.mid_market_max else Band.ENTERPRISE


#: The bands an ACV base is given for: every band a known size falls in.
SIZED_BANDS = (Band.SMB, Band.MID_MARKET, Band.ENTERPRISE)
#: Seed 004: "Some industries have higher willingness-to-pay (fintech, healthcare, legal)".
_WILLING_INDUSTRIES = ("fintech", "healthcare", "legal")


def _lowered(multipliers: dict[str, float], table: str) -> dict[str, float]:
    """Names as the profile's values are matched: regardless of case and surrounding spaces."""
    lowered: dict[str, float] = {}
    for name, factor in multipliers.items():
        key = name.strip().lower()
        if key in lowered:
            raise ValueError(f"{table} names {key!r} twice (names are matched regardless of case)")
        if factor <= 0:
            raise ValueError(f"{table}.{name}: a multiplier must be more than 0, not {factor:g}")
        lowered[key] = factor
    return lowered


class Acv(_Section):
    """Seed 004's ACV potential and its minimum for a sales touch (whole dollars a year).

    The potential is `base[band] x industry[industry] x plan[plan]` (an industry or plan not listed counts as 1);
    with no company size known there is none. The minimum is seed 004's threshold formula: annual sales cost per
    account / (win rate x retention)."""

    base: dict[Band, PositiveInt] = Field(default_factory=lambda: {
        Band.SMB: 5000, Band.MID_MARKET: 20000, Band.ENTERPRISE: 50000})
    industry: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(_WILLING_INDUSTRIES, 1.25))
    plan: dict[str, float] = Field(default_factory=dict)
    annual_sales_cost_per_account: Annotated[float, Field(gt=0)] = 3400
    win_rate: float = 0.35
    retention: float = 0.70

    @field_validator("base", mode="before")
    @classmethod
    def _every_sized_band(cls, base: object) -> object:
        if isinstance(base, dict):
            names = [str(b) for b in SIZED_BANDS]
            unknown = [key for key in base if key not in names]
            if unknown:
                raise ValueError(f"unknown band {unknown[0]!r} (the bands: {', '.join(names)})")
            missing = [name for name in names if name not in base]
            if missing:
                raise ValueError(f"needs a base for every band: {', '.join(missing)} missing")
        return base

    @field_validator("win_rate", "retention")
    @classmethod
    def _share(cls, share: float) -> float:
        if not 0 < share <= 1:
            raise ValueError(f"a share more than 0 and at most 1 (0.35 for 35%), not {share:g}")
        return share

    @field_validator("industry", "plan")
    @classmethod
    def _multipliers(cls, multipliers: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        return _lowered(multipliers, f"acv.{info.field_name}")

    @property
    def minimum(self) -> float:
        """Seed 004: the ACV below which a sales touch does not pay for itself."""
        return self.annual_sales_cost_per_account / (self.win_rate * self.retention)

    def potential(self, band: Band, industry: str | None, plan: str | None) -> int | None:
        """The estimate for an account of `band`, `industry` and `plan`; None when its band is unknown."""
        base = self.base.get(band)
        if base is None:
            return None
        factor = self.industry.get(industry.strip().lower(), 1.0) if industry and self.industry else 1.0
        if plan and self.plan:
            factor *= self.plan.get(plan.strip().lower(), 1.0)
        return round(base * factor)


class Events(_Section):
    billing_paths: tuple[str, ...] = ("/billing", "/pricing")
    aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("billing_paths")
    @classmethod
    def _normalised(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p.rstrip("/").lower() for p in paths)

    def is_billing(self, path: str) -> bool:
        """`/pricing`, `/pricing/`, `/Pricing?plan=team` and `/billing/invoices` all count."""
        path = path.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
        return any(path == p or path.startswith(p + "/") for p in self.billing_paths)


class Signal(_Section):
    label: str
    event: str
    distinct: str | None = None
    min_count: Count = 1
    min_days: PositiveInt = 1
    points: Count
    rank: int = 100
    talk_track: str
    evidence: str


class Exclusions(_Section):
    personal_email_domains: frozenset[str] = frozenset()
    test_email_patterns: tuple[str, ...] = ()
    competitor_domains: frozenset[str] = frozenset()
    internal_domains: frozenset[str] = frozenset()
    min_days_left_without_billing_view: Count = 3
    dispositions: frozenset[str] = frozenset({"disqualified", "no_response"})


class DoNotTouch(_Section):
    checkout_grace_hours: Count = 24
    after_upgrade_hours: Count = 48


class Rules(_Section):
    """Everything the scorer needs to know, and nothing about time zones or Slack."""

    name: str = "custom rules"
    gates: Gates = Gates()
    window: Window = Window()
    tiers: Tiers = Tiers()
    hold: Hold = Hold()
    fast_lane: FastLane = FastLane()
    bands: Bands = Bands()
    acv: Acv = Acv()
    events: Events = Events()
    signals: dict[str, Signal]
    # Seeds 000 and 001's triggers (scoring/triggers.py): compound, windowed, account-level, by family and tier.
    triggers: dict[str, Trigger] = Field(default_factory=dict)
    exclusions: Exclusions = Exclusions()
    do_not_touch: DoNotTouch = DoNotTouch()

    @model_validator(mode="after")
    def _consistent(self) -> Rules:
        if self.tiers.high < self.tiers.qualify:
            raise ValueError("tiers.high must be at least tiers.qualify")
        if self.gates.company_size_max < self.gates.company_size_min:
            raise ValueError("gates.company_size_max must be at least gates.company_size_min")
        if self.bands.mid_market_max < self.bands.mid_market_min:
            raise ValueError("bands.mid_market_max must be at least bands.mid_market_min")
        # Any event name the product sends may be counted (after the aliases); `$` names are pqlbot's own.
        for key, signal in self.signals.items():
            if not signal.event or signal.event.startswith(RESERVED_PREFIX):
                raise ValueError(f"signals.{key}.event: {signal.event!r} is not an event name")
        for key, trigger in self.triggers.items():
            for condition in trigger.all:
                for named in (condition.event, condition.not_followed_by):
                    if named is not None and (not named or named.startswith(RESERVED_PREFIX)):
                        raise ValueError(f"triggers.{key}: {named!r} is not an event name")
            if key in self.signals:
                raise ValueError(f"triggers.{key}: a signal has that name already")
        for alias, target in self.events.aliases.items():
            if not target or target.startswith(RESERVED_PREFIX) or target in ("*", "billing_view"):
                raise ValueError(f"events.aliases: {alias!r} maps to {target!r}, which is not an event name")
        return self

    def triggers_of(self, level: Level) -> dict[str, Trigger]:
        return {key: trigger for key, trigger in self.triggers.items() if trigger.level is level}

    @property
    def max_score(self) -> int:
        return sum(s.points for s in self.signals.values())


def suspect_event_names(rules: Rules) -> list[tuple[str, str, str]]:
    """(where, name, the name to read instead) for each event name the rules read that no call arrives under: a name
    an alias renames (calls come in under its target), or one a letter or two from a name pqlbot knows (a typo: what
    reads it never counts anything, and nothing says so). A product's own event names are fine and not listed."""
    known = set(CANONICAL_EVENTS) | {SCREEN_VIEW, BILLING_VIEW} | set(rules.events.aliases.values())
    read = [("gates.activation_event", rules.gates.activation_event)]
    read += [(f"signals.{key}", signal.event) for key, signal in rules.signals.items()]
    read += [(f"triggers.{key}", name) for key, trigger in rules.triggers.items() for condition in trigger.all
             for name in (condition.event, condition.not_followed_by) if name is not None]
    read += [("fast_lane.events", name) for name in rules.fast_lane.events]
    found = []
    for where, name in read:
        if name in known or name == "*":
            continue
        if name in rules.events.aliases:
            found.append((where, name, rules.events.aliases[name]))
        elif close := difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85):
            found.append((where, name, close[0]))
    return found


class RulesError(ValueError):
    """A rules file that cannot be used, with the file and the reason."""


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and validate a rules file; with no path, the shipped seed 002 model."""
    source = DEFAULT_RULES if path is None else Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{path}: no such rules file") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML ({exc})") from None
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"{source}: {describe(exc)}") from None
