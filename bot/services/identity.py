"""Who an event belongs to, in the store: the identity rules of scoring/identity.py, with links kept.

A link, once made, is a row of `identities`; the linked id's stored events move to the user then, and every later
call under it is the user's. A user later aliased to another user takes their linked ids along.

Each group of calls costs one look-up of its ids; a link is made once per id, in the transaction that stores the
call that made it, so a replay, a retry or a second process never makes it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import EventRecord, Identity
from scoring.events import Event
from scoring.identity import final, key_of, links_in

_IDENTITIES = Identity.__table__
_EVENTS = EventRecord.__table__
_CHUNK = 2000  # ids per IN (...): under SQLite's bound-parameter limit


@dataclass(slots=True)
class Resolved:
    """A group of calls with each event under the user it belongs to, and what linking moved."""

    events: list[Event]
    merged: set[str] = field(default_factory=set)  # users whose stored history grew by a link
    moved_away: set[str] = field(default_factory=set)  # ids whose stored events now belong to another user


def _known(connection: sa.Connection, keys: Iterable[str]) -> dict[str, str]:
    keys = sorted(set(keys))
    found: dict[str, str] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = connection.execute(sa.select(_IDENTITIES.c.alias_key, _IDENTITIES.c.user_id)
                                  .where(_IDENTITIES.c.alias_key.in_(chunk)))
        found.update((alias, user) for alias, user in rows)
    return found


def resolve(connection: sa.Connection, events: Sequence[Event], *, now: datetime) -> Resolved:
    """Each event under the user it belongs to, after making the links the calls ask for (in the caller's
    transaction)."""
    asked = links_in(events)
    keys = {key_of(event) for event in events} | set(asked) | set(asked.values())
    known = _known(connection, keys) if keys else {}

    resolved = Resolved([])
    for alias, user in asked.items():
        if alias in known:
            continue  # linked before: the first link stands
        target = final(user, known)
        if target == alias or final(alias, known) == target:
            continue
        if _link(connection, alias, target, now):
            known[alias] = target
            if _move(connection, alias, target):
                resolved.merged.add(target)
                resolved.moved_away.add(alias)
    resolved.events = [event if (key := final(key_of(event), known)) == event.user_id else
                       event._replace(user_id=key) for event in events]
    return resolved


def _link(connection: sa.Connection, alias: str, user: str, now: datetime) -> bool:
    """Record the link; False when another writer recorded one for this id a moment ago (its link stands)."""
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    inserted = connection.execute(module.insert(_IDENTITIES).values(alias_key=alias, user_id=user, at=now)
                                  .on_conflict_do_nothing(index_elements=["alias_key"])).rowcount
    if inserted:
        # Ids linked to the one now linked on follow it to the user.
        connection.execute(sa.update(_IDENTITIES).where(_IDENTITIES.c.user_id == alias).values(user_id=user))
    return bool(inserted)


def _move(connection: sa.Connection, alias: str, user: str) -> bool:
    """Move the linked id's stored events to the user; whether there were any."""
    return bool(connection.execute(sa.update(_EVENTS).where(_EVENTS.c.user_id == alias)
                                   .values(user_id=user)).rowcount)
