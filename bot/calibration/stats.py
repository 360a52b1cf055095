"""The numbers a keep-or-retire decision reads: a conversion rate with its 95 % interval, seed 001's decision rule,
and seed 000's dark-funnel rate and assisted-conversion lift.

- `wilson(successes, trials)`: the Wilson score interval (95 %, z = 1.96). Unlike the plain "rate ± 1.96 standard
  errors" it stays inside 0-1 and is honest at small counts and at 0 % or 100 %, which is where triggers are judged.
- `recommend(fired, converted, minimum)`: seed 001's table ("conversion counted within 60 days of the trigger,
  responders or not"): above 30 % `tier1`; 15-30 % `tier1_or_tier2`; 10-15 % `tier2`; under 10 % `retire` (remove, or
  automated nurture only). Fewer than `minimum` fired: `too_few`, never a decision. The bounds belong to the band
  that names them: exactly 30 % is 15-30 %, exactly 15 % too, exactly 10 % is 10-15 %.
  A history (or a pilot) shorter than 60 days past a firing has not seen all its conversions: the rate over every
  firing can only rise, so a tier it reaches already stands, but `retire` is read only off the firings whose 60 days
  are over (`settled`, `settled_converted`), and is `too_early` while fewer than `minimum` of them are.
"""

from __future__ import annotations

import math
from enum import StrEnum

from bot.domain.targets import MIN_SAMPLE  # fewer fired than this: no recommendation (the review's minimum too)

#: 95 % two-sided: the normal quantile 0.975.
Z95 = 1.959963984540054
#: Seed 001: conversion is counted within this many days of the trigger.
CONVERSION_DAYS = 60


class Recommendation(StrEnum):
    TIER1 = "tier1"
    TIER1_OR_TIER2 = "tier1_or_tier2"
    TIER2 = "tier2"
    RETIRE = "retire"
    TOO_FEW = "too_few"
    TOO_EARLY = "too_early"  # under 10 % so far, but too few firings have had their 60 days to convert


def rate(part: int, whole: int) -> float | None:
    """`part / whole`, or None when there is nothing to divide (never a made-up 0 %)."""
    return part / whole if whole else None


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for `successes` of `trials`; None with no trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes of {trials} trials")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0 % or 100 % the bound on that side is exactly 0 or 1: rounding must not leave 0.9999999999999999.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def recommend(fired: int, converted: int, minimum: int = MIN_SAMPLE, *, settled: int | None = None,
              settled_converted: int = 0) -> Recommendation:
    """Seed 001's decision for a trigger that fired `fired` times, `converted` of them converting within 60 days;
    `settled` of the firings (all, when None) with their 60 days over, `settled_converted` of those converting."""
    if fired < max(minimum, 1):
        return Recommendation.TOO_FEW
    share = converted / fired  # a floor while some firings' 60 days are not over
    if share >= 0.10 or settled is None or settled == fired:
        return _by_share(share)
    if settled < max(minimum, 1):
        return Recommendation.TOO_EARLY
    return _by_share(settled_converted / settled)


def _by_share(share: float) -> Recommendation:
    if share > 0.30:
        return Recommendation.TIER1
    if share >= 0.15:
        return Recommendation.TIER1_OR_TIER2
    if share >= 0.10:
        return Recommendation.TIER2
    return Recommendation.RETIRE


def lift(contacted: int, contacted_converted: int, alone: int, alone_converted: int) -> float | None:
    """Seed 000's assisted-conversion lift: the conversion of the triggered-and-contacted minus that of the
    triggered-and-not-contacted (the comparable self-serve control), as a difference of shares (0.15: 15 points).
    None unless both groups have someone in them."""
    if not contacted or not alone:
        return None
    return contacted_converted / contacted - alone_converted / alone
