"""pqlbot's scoring library: product events and rules in, a PQL verdict out.

Pure by design: no Slack, no database, no clock. Time is the `at` you pass.
"""

from scoring.engine import paused_gc, score_user, score_users
from scoring.events import Event, EventError, parse_event
from scoring.result import PriorDisposition, Reason, ScoreResult, SignalMet, Status, Tier
from scoring.rules import DEFAULT_RULES, Rules, RulesError, load_rules

__all__ = [
    "DEFAULT_RULES",
    "Event",
    "EventError",
    "PriorDisposition",
    "Reason",
    "Rules",
    "RulesError",
    "ScoreResult",
    "SignalMet",
    "Status",
    "Tier",
    "load_rules",
    "parse_event",
    "paused_gc",
    "score_user",
    "score_users",
]
