"""The PQL lifecycle, defined once. Every transition is audited by the service that makes it.

qualified -> alerted -> (assigned | queued -> assigned) -> claimed -> working (touches 1..3)
          -> dispositioned;  side exits from any open state: stopped_converted, stopped_opt_out
"""

from enum import StrEnum

import sqlalchemy as sa


class PqlState(StrEnum):
    QUALIFIED = "qualified"
    ALERTED = "alerted"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    WORKING = "working"
    DISPOSITIONED = "dispositioned"
    STOPPED_CONVERTED = "stopped_converted"
    STOPPED_OPT_OUT = "stopped_opt_out"


CLOSED = frozenset({PqlState.DISPOSITIONED, PqlState.STOPPED_CONVERTED, PqlState.STOPPED_OPT_OUT})
OPEN = frozenset(PqlState) - CLOSED

#: A PQL only ever moves up this ladder: fast lane beats high beats medium.
TIER_RANK = {"medium": 1, "high": 2, "fast_lane": 3}


def still_open(state: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """The lead's state is an open one: the same leads as NOT IN (closed states), but written as IN so an index
    on the state seeks the few open leads instead of reading every lead ever closed."""
    return state.in_(sorted(OPEN))
