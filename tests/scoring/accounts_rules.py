"""Rules with account triggers for the account tests (helper A writes the default catalogue's): seed 001's "5+ users
from the same domain activate within 14 days" (tier 1), "invites to 3+ different email domains" (tier 2), and seed
000's "seat provisioning surge" (tier 1)."""

from __future__ import annotations

import tomllib

from scoring import DEFAULT_RULES, Rules

ACCOUNT_TRIGGERS = {
    "team_activation": {
        "label": "5+ users of one account activated within 14 days", "family": "buying", "strength": "very_high",
        "response": 1, "level": "account", "within": "14d", "talk_track": "invites",
        "evidence": "{users} users activated {span}", "seed": "001 tier 1, row 1",
        "all": [{"event": "activation_complete", "measure": "users", "at_least": 5}],
    },
    "multi_domain_invites": {
        "label": "invites to 3+ email domains", "family": "buying", "strength": "medium", "response": 2,
        "level": "account", "within": "30d", "talk_track": "invites",
        "evidence": "invited people at {values}", "seed": "001 tier 2, row 1",
        "all": [{"event": "invite_sent", "measure": "values", "field": "invitee_email", "part": "domain",
                 "at_least": 3}],
    },
    "seat_surge": {
        "label": "seat provisioning surge", "family": "buying", "strength": "high", "response": 1,
        "level": "account", "within": "7d", "talk_track": "invites",
        "evidence": "provisioned {total} seats {span}", "seed": "000 buying, seat provisioning surge",
        "all": [{"event": "seats_provisioned", "measure": "total", "field": "count", "at_least": 10}],
    },
}


def account_rules(*names: str) -> Rules:
    """The default rules plus these account triggers (all three when none are named)."""
    data = tomllib.loads(DEFAULT_RULES.read_text())
    chosen = names or tuple(ACCOUNT_TRIGGERS)
    data.setdefault("triggers", {}).update({name: ACCOUNT_TRIGGERS[name] for name in chosen})
    return Rules.model_validate(data)
