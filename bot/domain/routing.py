"""Who gets the next lead among the reps who can take one now: the load-balanced round-robin (seed 002,
section 5), as a pure choice, and the fast lane's policy (seed 000). Which reps can take one (pauses, hours, caps)
is the routing service's question."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.caps import UNCAPPED_TIERS

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class Candidate:
    rep_id: str
    order: int  # position on the roster: the last tie-break
    new_today: int
    active: int
    tier_this_week: int  # leads of the lead's tier this rep was given this week
    last_given_at: datetime | None


def pick(candidates: list[Candidate]) -> Candidate | None:
    """The rep for the next lead, among those who can take one now:
    - fewest active leads first (load balance: 5 active vs 2 active, the lighter one gets it);
    - then fewest leads of this tier this week (high and fast-lane leads are spread, not just counts);
    - then whoever was given a lead longest ago (round-robin, so ties rotate fairly over a week);
    - then roster order.
    """
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.active, c.tier_this_week, c.last_given_at or _NEVER, c.order))


@dataclass(frozen=True, slots=True)
class FastLane:
    """The fast lane (seed 000: explicit asks, "the only acceptable response is speed"): its leads are never capped
    and never wait behind the capped queue.

    - `tiers`: the tiers it covers (a demo or contact-sales request is the fast_lane tier);
    - `on_call`: the rep (a Slack id on the roster) who takes its leads when nobody is in business hours; None: the
      manager hears at once instead.
    One object, so that a team of its own (issue 17) can bring its own policy to the router."""

    tiers: frozenset[str] = UNCAPPED_TIERS
    on_call: str | None = None

    def covers(self, tier: str) -> bool:
        return tier in self.tiers
