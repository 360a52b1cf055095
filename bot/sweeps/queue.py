"""The queue drain: leads waiting for a rep are handed out once someone can take them.

First, leads a rescore recorded and never routed (on SQLite a rescore routes its new leads right after its scoring
commits, and its process may die in between: bot/services/pipeline.py, `route_owed`) are routed as new leads, in id
order, once a minute old; then the queue is shared out.

The heuristic (bot/services/routing.py, `Router.drain`):
- fast-lane leads whenever someone can take them, cap or not: a rep in business hours (their own), or out of hours
  the on-call rep (PQL_ON_CALL); one nobody can take tells the manager, once (`unroutable:<id>`);
- the rest only while business is open;
- fast lane first, then high, then medium, and the oldest first within a tier;
- a named account owner (on the roster, not paused) gets their account's lead; the others go to the rep routing
  picks among those with room under the daily cap (bot/domain/routing.py, `pick`);
- when nobody has room the rest wait, in order, for the next sweep;
- a lead on a do-not-touch hold (bot/services/holds.py) waits in its place and goes out once the hold ends (the
  holds sweep, just before this one, lets an abandoned checkout's go; a closed ticket lets go as it arrives).
No key guards a hand-out, so two drains at once would hand a lead out twice: the runner's lock keeps this step
to one process at a time (bot/sweeps/runner.py).
"""

from __future__ import annotations

from datetime import datetime

from bot.sweeps.common import SweepContext


def drain_queue(sweeps: SweepContext, now: datetime) -> int:
    """Route what a rescore owes, then hand out what the queue can give now; returns how many leads were given."""
    owed = sweeps.pipeline.route_owed(now=now)
    with sweeps.pipeline.session() as session, session.begin():
        return sum(rep is not None for rep in owed.values()) + len(sweeps.router.drain(session, now=now))
