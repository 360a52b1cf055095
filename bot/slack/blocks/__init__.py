"""Every Block Kit payload pqlbot sends is built in this package, and nowhere else: the alert (alert.py), the
lead's modals (modals.py), App Home (home.py), the manager's messages and reminders (manager.py), the weekly
review (review.py) and the typed notices the sweeps queue (notices.py), from the parts in parts.py.

Pure: each builder renders what it is given (a `LeadView`, home rows, a review) at the `now` and in the team
timezone it is given, and returns plain dicts made by slack_sdk's models. Text from the store is escaped for
mrkdwn and clipped to fit; longer sentences live in templates/slack/.
"""

from bot.slack.blocks.alert import alert, alert_text
from bot.slack.blocks.home import HomeLead, HomeRep, HomeTeam, by_urgency, home
from bot.slack.blocks.modals import (
    details_modal,
    disposition_modal,
    handoff_modal,
    parse_disposition,
    parse_handoff,
    parse_touch,
    touch_modal,
)
from bot.slack.blocks.parts import TIER_LABELS, clock, ephemeral, sla_text
from templates import clip

__all__ = [
    "TIER_LABELS",
    "HomeLead",
    "HomeRep",
    "HomeTeam",
    "alert",
    "alert_text",
    "by_urgency",
    "clip",
    "clock",
    "details_modal",
    "disposition_modal",
    "ephemeral",
    "handoff_modal",
    "home",
    "parse_disposition",
    "parse_handoff",
    "parse_touch",
    "sla_text",
    "touch_modal",
]
