"""Who gets the next lead among the reps who can take one now: the load-balanced round-robin (seed 002,
section 5), as a pure choice. Which reps can take one (pauses, hours, caps) is the routing service's question."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
