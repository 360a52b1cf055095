"""Which user a call belongs to, when a product sends calls under more than one id (Segment's identity rules).

- A call with a userId is that user's. A call with only an anonymousId is an anonymous visitor's, kept under
  `anonymous:<anonymousId>` until a call links them to a user.
- A call carrying both ids links the visitor to the user; an alias call links its previousId (an anonymous id or
  an earlier userId) to its userId. The first link of an id stands; links are followed to their end.

`links_in` reads what a group of calls asks for (`offers`: what one call asks for), `chained` makes the links of
it, and `resolve` applies them to calls held in memory (`pqlbot score FILE`); the store keeps links once made
(bot/services/identity.py), and moves a linked id's stored events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from scoring.events import ALIAS, Event

#: The key an anonymous visitor's calls are kept under: never a user, never scored.
ANONYMOUS = "anonymous:"
_MAX_HOPS = 32  # a chain of links longer than this is cut (well-formed calls cannot make one)


def is_anonymous(key: str) -> bool:
    return key.startswith(ANONYMOUS)


def key_of(event: Event) -> str:
    """The id a call was sent under: its userId, else its anonymous visitor's key."""
    return event.user_id if event.user_id is not None else ANONYMOUS + (event.anonymous_id or "")


def offers(event: Event) -> tuple[tuple[str, str], ...]:
    """The links one call asks for, in the order `links_in` takes them: (linked id, userId)."""
    user = event.user_id
    if user is None:
        return ()
    if event.name == ALIAS:
        previous = event.props["previous_id"]
        return (previous, user), (ANONYMOUS + previous, user)
    if event.anonymous_id is not None:
        return ((ANONYMOUS + event.anonymous_id, user),)
    return ()


def links_in(events: Iterable[Event]) -> dict[str, str]:
    """The links these calls ask for, linked id -> userId, the first for each id (`offers`, inlined: a million calls
    go through here)."""
    links: dict[str, str] = {}
    for event in events:
        if event.name == ALIAS and event.user_id is not None:
            previous = event.props["previous_id"]
            links.setdefault(previous, event.user_id)
            links.setdefault(ANONYMOUS + previous, event.user_id)
        elif event.user_id is not None and event.anonymous_id is not None:
            links.setdefault(ANONYMOUS + event.anonymous_id, event.user_id)
    return links


def final(key: str, links: Mapping[str, str]) -> str:
    """Where `key` ends up, following its links."""
    for _ in range(_MAX_HOPS):
        nxt = links.get(key)
        if nxt is None or nxt == key:
            return key
        key = nxt
    return key


def chained(asked: Mapping[str, str]) -> dict[str, str]:
    """The links made of those asked for (in the order they were first asked): every one, except a link back to where
    it came from (no cycles)."""
    links: dict[str, str] = {}
    for alias, user in asked.items():
        if final(user, links) != alias:
            links.setdefault(alias, user)
    return links


def resolve(events: Sequence[Event], links: Mapping[str, str] | None = None) -> list[Event]:
    """The calls, each under the user it belongs to; an anonymous visitor nothing links stays anonymous. `links`: the
    links made (`chained`) when they are known already, e.g. from a larger set of calls than these."""
    if links is None:
        links = chained(links_in(events))
    found = []
    append = found.append
    for event in events:
        user = event.user_id
        if user is not None and user not in links:
            append(event)  # the common case: a user's own call, their id linked nowhere (`final` keeps it)
        else:
            append(event if (key := final(key_of(event), links)) == user else event._replace(user_id=key))
    return found
