"""The scoring rules: a TOML file validated into a `Rules` model.

The default file is the seed 002 model. Teams recalibrate by copying it, not by editing code.
"""

from __future__ import annotations

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
    field_validator,
    model_validator,
)

from scoring.events import BILLING_VIEW, CANONICAL_EVENTS, describe

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
    events: Events = Events()
    signals: dict[str, Signal]
    exclusions: Exclusions = Exclusions()
    do_not_touch: DoNotTouch = DoNotTouch()

    @model_validator(mode="after")
    def _consistent(self) -> Rules:
        if self.tiers.high < self.tiers.qualify:
            raise ValueError("tiers.high must be at least tiers.qualify")
        if self.gates.company_size_max < self.gates.company_size_min:
            raise ValueError("gates.company_size_max must be at least gates.company_size_min")
        known = CANONICAL_EVENTS | {BILLING_VIEW, "*"}
        for key, signal in self.signals.items():
            if signal.event not in known:
                raise ValueError(f"signals.{key}.event: unknown event {signal.event!r}")
        for alias, target in self.events.aliases.items():
            if target not in CANONICAL_EVENTS:
                raise ValueError(f"events.aliases: {alias!r} maps to unknown event {target!r}")
        return self

    @property
    def max_score(self) -> int:
        return sum(s.points for s in self.signals.values())


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
