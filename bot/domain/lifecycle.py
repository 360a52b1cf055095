"""The PQL lifecycle, defined once. Every transition is audited by the service that makes it.

qualified -> alerted -> (assigned | queued -> assigned) -> claimed -> working (touches 1..3)
          -> dispositioned;  side exits from any open state: stopped_converted, stopped_opt_out, and absorbed (a
          user lead that became part of its account's lead: bot/services/account_leads.py)
An open lead may also be on a do-not-touch hold (bot/services/holds.py), beside its state, not instead of it.
"""

from enum import StrEnum


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
    ABSORBED = "absorbed"


#: Stopped by the product itself: a conversion or an opt-out.
STOPPED = frozenset({PqlState.STOPPED_CONVERTED, PqlState.STOPPED_OPT_OUT})
#: A user lead its account's lead took in: one conversation per company, carried on by the account lead.
ABSORBED = frozenset({PqlState.ABSORBED})
CLOSED = frozenset({PqlState.DISPOSITIONED}) | STOPPED | ABSORBED
OPEN = frozenset(PqlState) - CLOSED
#: Leads nobody has claimed yet, in the states a claim may start from.
CLAIMABLE = (PqlState.QUALIFIED, PqlState.ALERTED, PqlState.QUEUED, PqlState.ASSIGNED)

#: A PQL only ever moves up this ladder: fast lane beats high beats medium.
TIER_RANK = {"medium": 1, "high": 2, "fast_lane": 3}
#: The tiers, most urgent first.
TIERS = ("fast_lane", "high", "medium")
