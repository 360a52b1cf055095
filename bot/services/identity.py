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

from bot.store.bulk import driver_value
from bot.store.models import EventRecord, Identity
from bot.store.queries import rows_for
from scoring.events import Event
from scoring.identity import final, is_anonymous, key_of, links_in

_IDENTITIES = Identity.__table__
_EVENTS = EventRecord.__table__


@dataclass(slots=True)
class Resolved:
    """A group of calls with each event under the user it belongs to, and what linking moved."""

    events: list[Event]
    merged: set[str] = field(default_factory=set)  # users whose stored history grew by a link
    moved_away: set[str] = field(default_factory=set)  # ids whose stored events now belong to another user


def _known(connection: sa.Connection, keys: Iterable[str]) -> dict[str, str]:
    select = f"SELECT alias_key, user_id FROM {_IDENTITIES.name}"
    return dict(rows_for(connection, select, set(keys), column="alias_key"))


def resolve(connection: sa.Connection, events: Sequence[Event], *, now: datetime) -> Resolved:
    """Each event under the user it belongs to, after making the links the calls ask for (in the caller's
    transaction). A few statements a group, however many calls: one look-up of its ids, one insert of the new
    links, one look-up of which linked ids have stored events; only those are moved."""
    asked = links_in(events)
    sent_as = [key_of(event) for event in events]
    under = set(sent_as)
    keys = under | set(asked) | set(asked.values())
    known = _known(connection, keys) if keys else {}
    new: dict[str, str] = {}
    for alias, user in asked.items():
        if alias in known:
            continue  # linked before: the first link stands
        target = final(user, known)
        if target == alias or final(alias, known) == target:
            continue  # no link back to where it came from
        new[alias] = known[alias] = target
    resolved = Resolved([])
    if new:
        made = _link(connection, new, now)
        if lost := set(new) - made:  # another writer linked these a moment ago: their links stand
            for alias in lost:
                del known[alias]
            known.update(_known(connection, lost))
        for alias in made:
            if not is_anonymous(alias):  # a userId aliased on: the ids linked to it follow it
                connection.execute(sa.update(_IDENTITIES).where(_IDENTITIES.c.user_id == alias)
                                   .values(user_id=new[alias]))
        for alias in _with_events(connection, made):
            connection.execute(sa.update(_EVENTS).where(_EVENTS.c.user_id == alias).values(user_id=new[alias]))
            resolved.merged.add(new[alias])
            resolved.moved_away.add(alias)
    # Where each id the calls were sent under ends up, once an id rather than once a call (a group holds many calls of
    # each user); an id linked nowhere (most are) stays itself. Ids only asked to be linked (a signed-in user's
    # anonymous id) need no answer: no call here is theirs.
    ends = {key: final(key, known) for key in under if key in known}
    if not ends and all(event.user_id is not None for event in events):
        resolved.events = list(events)  # the common group: every call a user's own, none of them linked elsewhere
        return resolved
    resolved.events = [event if (key := ends.get(sent, sent)) == event.user_id else event._replace(user_id=key)
                       for event, sent in zip(events, sent_as, strict=True)]
    return resolved


def _link(connection: sa.Connection, links: dict[str, str], now: datetime) -> set[str]:
    """Record the links; the ids really linked (another writer may have linked one a moment ago: its link
    stands)."""
    at = driver_value(_IDENTITIES.c.at, connection.dialect)(now)
    quote = connection.dialect.identifier_preparer.quote
    if connection.dialect.name == "postgresql":
        sql = (f"INSERT INTO {_IDENTITIES.name} (alias_key, user_id, {quote('at')}) "
               "SELECT a, u, %s::timestamptz FROM unnest(%b::text[], %b::text[]) AS l (a, u) "
               "ON CONFLICT (alias_key) DO NOTHING RETURNING alias_key")
        return {alias for (alias,) in connection.exec_driver_sql(sql, (at, list(links), list(links.values())))}
    driver = connection.connection.driver_connection
    inserted = driver.executemany(f"INSERT INTO {_IDENTITIES.name} (alias_key, user_id, {quote('at')}) "
                                  "VALUES (?, ?, ?) ON CONFLICT (alias_key) DO NOTHING",
                                  [(alias, user, at) for alias, user in links.items()]).rowcount
    if inserted == len(links):
        return set(links)
    return {alias for alias, user in _known(connection, links).items() if links[alias] == user}


def _with_events(connection: sa.Connection, keys: Iterable[str]) -> set[str]:
    """Which of these ids have events in the store."""
    return {key for (key,) in rows_for(connection, f"SELECT DISTINCT user_id FROM {_EVENTS.name}", set(keys))}
