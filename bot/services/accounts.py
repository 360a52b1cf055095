"""Accounts as the product's `group` calls name them: each group's traits (name, employees, industry, plan,
domain), newest first, kept for every user of the account (scoring/profile.py says which traits are read)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from bot.store import tallies
from scoring.events import GROUP, Event
from scoring.profile import newer


def record_groups(connection: sa.Connection, events: Iterable[Event], *, now: datetime) -> set[str]:
    """Merge the traits of these (newly stored) group calls into their groups; the groups whose traits changed."""
    calls: dict[str, list[Event]] = {}
    for event in events:
        if event.name == GROUP and event.props.get("traits"):
            calls.setdefault(event.props["group_id"], []).append(event)
    if not calls:
        return set()
    held = tallies.read_groups(connection, calls)
    changed = {}
    for group_id, group_calls in calls.items():
        traits = held.get(group_id, {})
        for event in sorted(group_calls, key=lambda e: e.at):
            if (merged := newer(traits, event.props["traits"], event.at)) is not None:
                traits = changed[group_id] = merged
    tallies.write_groups(connection, changed, now=now)
    return set(changed)
