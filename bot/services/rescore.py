"""Continuous scoring: rescore users from the store and record what changed.

- Each user's latest verdict is kept on `trial_users` (rewritten only when it changed).
- A user who becomes `qualified` gets exactly one PQL per trial, recorded with a `pql_triggered`
  audit entry; racing writers are safe because the (user, trial) pair is unique in the database.
- A later tier upgrade (medium -> high -> fast lane) updates that PQL and is audited as
  `pql_upgraded`; the PQL never moves down a tier, and a new PQL is never made for the same trial.

Writes are batched: verdicts and PQLs are written every `_FLUSH_EVERY` users (and at the end), each
kind in one statement, so a full rescore of a big store costs a few dozen round trips, not one per user.
Verdict rows go to the driver as plain tuples (SQLAlchemy's per-row parameter processing cost more than
the upsert itself), and on PostgreSQL a big batch goes in by COPY (see `_Writes`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.domain.lifecycle import TIER_RANK, PqlState
from bot.services import account_leads, outbox, tracking
from bot.store import make_engine, tallies
from bot.store.bulk import BulkWriter, as_tuples, driver_value
from bot.store.events import EPOCH, EVERYONE, Span, events_of
from bot.store.models import AuditEntry, DispositionRecord, EventRecord, Notice, Pql, TrialUser
from bot.store.queries import in_chunks, rows_for, rows_for_each, utc
from scoring import Event, PriorDisposition, Rules, ScoreResult, Status, paused_gc, score_user
from scoring.accounts import Member, account_member, has_account_triggers
from scoring.engine import judge, plan_of, read_key, score_user_and_tally, until_and_wake, wake
from scoring.events import CHECKOUT_COMPLETED, CONVERTED, GROUP, IDENTIFY, OPT_OUT
from scoring.identity import ANONYMOUS
from scoring.tally import Tally
from scoring.triggers import Level

log = logging.getLogger(__name__)

_USERS = TrialUser.__table__
_PQLS = Pql.__table__
_AUDIT = AuditEntry.__table__
_NOTICES = Notice.__table__
_FLUSH_EVERY = 5000
_IN_CHUNK = 2000  # ids per IN (...) list: well under SQLite's bound-parameter limit
# SQLite's page cache during a rescore (`_page_cache`), in KiB: in the process that reads, judges and writes, and in
# one that only reads and judges (`judge_span`).
_WRITER_CACHE_KIB = 65536
_READER_CACHE_KIB = 8192
# Events from which a full rescore is split between processes: below, starting one (about a second, to
# import) costs more than it saves.
_SPLIT_FROM = 200_000
# The same for some users (a backfill's): counted in users, at about ten events each.
_SPLIT_USERS_FROM = 20_000
# What this process judges, counted in processes. It also writes every slice's verdicts, rolls the accounts up and
# routes the new leads while the others wait, so it once took less than one: 0.85 (46 % with two processes) when
# judging cost more. Since the verdicts' wake times cost a tenth of what they did (5 Dec), at 0.85 it waited 0.9-1.2 s
# for the other's last piece; at 1.0 it waits for nothing, and a first rescore of 100,000 users on 2 vCPUs took
# 12.6-12.8 s against 13.1-13.3 s (SQLite; 1.1 and 1.2: 12.7-13.2 s). Measured with two processes only: with more,
# this one writes more verdicts for each it judges, and a smaller share may suit it better.
_OWN_WEIGHT = 1.0
# Each other process's share is judged in this many pieces, one after another: a piece's verdicts come back while it
# judges the next, rather than all at once at the end (60 MiB of rows, 4 s to hand over on 2 busy vCPUs).
_PIECES = 4
# Events sampled, evenly by id, to cut a full rescore's slices (`_split`).
_SAMPLE = 4096
#: trial_users columns in the order `_Writes.user` lays them out.
_USER_COLUMNS = ("user_id", "email", "domain", "company_name", "company_size", "first_name", "last_name", "title",
                 "plan", "industry", "group_id", "signup_at", "status", "tier", "score", "verdict", "scored_at",
                 "wake_at")
_UPGRADE = (
    sa.update(_PQLS)
    .where(_PQLS.c.id == sa.bindparam("b_id"), _PQLS.c.tier == sa.bindparam("b_old_tier"))
    .values(
        tier=sa.bindparam("b_tier"), score=sa.bindparam("b_score"),
        signals=sa.bindparam("b_signals", type_=_PQLS.c.signals.type),
        strongest_signal=sa.bindparam("b_strongest"),
        updated_at=sa.bindparam("b_at", type_=_PQLS.c.updated_at.type),
        version=_PQLS.c.version + 1,  # the alert is edited to show the new tier
    )
)

#: Events that change what a member's account reads of them though they feed no account trigger: the account they
#: belong to (a group call), and what stops the account or marks them in its map (a conversion, an opt-out). Their
#: account is rolled up again. An identify call only when their account has an open account lead (its contact map
#: shows their name and title): products send one on every login, and a roll-up reads all the account's members.
_ACCOUNT_NEWS = frozenset({GROUP, CONVERTED, CHECKOUT_COMPLETED, OPT_OUT})


@dataclass(slots=True)
class Rescored:
    users: int = 0
    changed: int = 0
    triggered: list[int] = field(default_factory=list)  # new PQL ids, in the order they qualified
    upgraded: list[int] = field(default_factory=list)
    accounts: list[int] = field(default_factory=list)  # account leads opened from a user's lead, or changed
    absorbed: list[int] = field(default_factory=list)  # user leads absorbed into their account's lead
    results: dict[int, ScoreResult] = field(default_factory=dict)  # the verdict behind each of those PQLs
    processes: int = 1  # how many processes judged the users: more than one only when the rescore was split


def _dispositions_asked(connection: sa.Connection) -> str:
    """`_dispositions`' question for some users, for `rows_for` (or `rows_for_each`); `_disposition_rows` its answer."""
    table = DispositionRecord.__table__
    return f"SELECT user_id, disposition, {connection.dialect.identifier_preparer.quote('at')} FROM {table.name}"


def _disposition_rows(rows: Iterable[tuple]) -> dict[str, list[PriorDisposition]]:
    found: dict[str, list[PriorDisposition]] = defaultdict(list)
    for user_id, disposition, at in rows:
        found[user_id].append(PriorDisposition(disposition, utc(at)))  # as UtcDateTime reads it
    return found


def _dispositions(connection: sa.Connection, user_ids: set[str] | None,
                  span: Span = EVERYONE) -> dict[str, list[PriorDisposition]]:
    if user_ids is not None:
        return _disposition_rows(rows_for(connection, _dispositions_asked(connection), user_ids))
    table = DispositionRecord.__table__
    found: dict[str, list[PriorDisposition]] = defaultdict(list)
    query = sa.select(table.c.user_id, table.c.disposition, table.c.at)
    for part in _parts(query, table.c.user_id, user_ids, span):
        for user_id, disposition, at in connection.execute(part):
            found[user_id].append(PriorDisposition(disposition, at))
    return found


def judged_at(connection: sa.Connection, user_id: str, rules: Rules, *, at: datetime, tz: tzinfo) -> ScoreResult | None:
    """One user's verdict as of `at`, judged again from their stored events up to then and the dispositions
    recorded by then (what `pqlbot explain --at` shows); None for a user with no events."""
    dispositions = [d for d in _dispositions(connection, {user_id}).get(user_id, ()) if d.at <= at]
    for _, events in events_of(connection, [user_id]):
        return score_user(events, rules, at, tz=tz, dispositions=dispositions, groups=tallies.GroupsAsMet(connection))
    return None


#: `_previous`' question for some users, for `rows_for` (or `rows_for_each`); `_previous_rows` its answer.
_PREVIOUS = f"SELECT user_id, CAST(verdict AS TEXT), industry, group_id, wake_at FROM {_USERS.name}"
Previous = tuple[str, str | None, str | None, datetime | str | None]  # verdict text, industry, group, wake (driver's)


def _previous_rows(rows: Iterable[tuple]) -> dict[str, Previous]:
    return {user_id: (text, industry, group, wake) for user_id, text, industry, group, wake in rows}


def _previous(connection: sa.Connection, user_ids: set[str] | None, span: Span = EVERYONE) -> dict[str, Previous]:
    """Each user's stored verdict as the JSON text it is (comparing text is far cheaper than parsing it), with the
    columns the verdict's JSON does not carry: industry, group and when it wakes."""
    if user_ids is not None:
        return _previous_rows(rows_for(connection, _PREVIOUS, user_ids))
    query = sa.select(_USERS.c.user_id, sa.cast(_USERS.c.verdict, sa.Text), _USERS.c.industry, _USERS.c.group_id,
                      _USERS.c.wake_at)
    found: dict[str, Previous] = {}
    for part in _parts(query, _USERS.c.user_id, user_ids, span):
        found.update(_previous_rows(connection.execute(part)))
    return found


def _changed(result: ScoreResult, before: Previous | None, wake: datetime | None) -> str | None:
    """The verdict's JSON text when it, or the columns beside it (profile, wake), differ from what is stored; else
    None."""
    verdict = result.to_json()
    text = orjson.dumps(verdict).decode()
    if before is None:
        return text
    stored, industry, group, woke = before
    profile = result.profile
    # Same text, same verdict; other text may still be the same JSON (written another way).
    same = (stored == text or orjson.loads(stored) == verdict) and (industry, group) == (profile.industry,
                                                                                        profile.group_id) \
        and (None if woke is None else utc(woke)) == wake
    return None if same else text


def _parts(query: sa.Select, column: sa.ColumnElement, ids: Iterable[str] | None,
           span: Span = EVERYONE) -> Iterable[sa.Select]:
    """`query` for everyone (None) in `span`, or for `ids` a slice at a time."""
    if ids is None:
        low, high = span
        yield query.where(*([column >= low] if low is not None else []), *([column < high] if high is not None else []))
        return
    ids = sorted(ids)
    for start in range(0, len(ids), _IN_CHUNK):
        yield query.where(column.in_(ids[start : start + _IN_CHUNK]))


def rescore(
    session: Session,
    rules: Rules,
    *,
    at: datetime,
    tz: tzinfo,
    user_ids: Iterable[str] | None = None,
    processes: int = 1,
    basis: str | None = None,
) -> Rescored:
    """Rescore `user_ids` (everyone when None) as of `at`, in the caller's transaction, then their accounts
    (bot/services/account_leads.py).

    Everyone in a big store, or a big backfill's users, are judged by up to `processes` processes (`_split`,
    `_split_scope`); writing stays here. The accounts' members judged here are rolled up from the tallies judged;
    the others' from the stored tallies made under `basis`, else from their events.
    """
    scope = None if user_ids is None else set(user_ids)
    report = Rescored()
    if scope is not None and not scope:
        return report
    connection = session.connection()
    spans = _split(connection, processes) if scope is None else _split_scope(connection, scope, processes)
    report.processes = min(len(spans), processes)  # this one and the others that judge the other slices' pieces
    parts = [_within(scope, span) for span in spans]  # each slice's share of the scope (None: everyone in it)
    writes = _Writes(connection, at, report, rules)
    qualified = Status.QUALIFIED
    # The accounts' members as judged, for the roll-up: the part of their verdicts and tallies accounts read (not
    # their whole verdicts and tallies: a population's worth), so the roll-up judges nobody again.
    members: dict[str, Member] | None = {} if has_account_triggers(rules) else None
    with _judged_elsewhere(connection, rules, at, tz, spans[1:], parts[1:], report.processes - 1) as elsewhere, \
            paused_gc(), \
            _page_cache(connection, _WRITER_CACHE_KIB):
        # A million short-lived events and verdicts, and no cycles among them: the collector waits.
        for result, text, tally, woken in _verdicts(connection, rules, at=at, tz=tz, scope=parts[0],
                                                    span=spans[0]):
            report.users += 1
            if text is not None:
                writes.user(result, text, woken)
                report.changed += 1
            if result.status is qualified:
                writes.qualified.append(result)
            if members is not None and result.account.key is not None:
                members[result.user_id] = account_member(result, tally, rules)
            writes.flush_if_full()
        for span, part, future in zip(spans[1:], parts[1:], elsewhere, strict=True):  # in user order, as one would
            report.users += _take(future, span, part, writes, connection, rules, at, tz, members)
        writes.flush()
        if members is not None:
            account_leads.roll_up(session, rules, at=at, tz=tz, report=report, judged=members, users=scope,
                                  basis=basis, dispositions=_dispositions)
    return report


def rescore_added(
    session: Session,
    rules: Rules,
    *,
    at: datetime,
    tz: tzinfo,
    added: Mapping[str, Sequence[Event]],
    rebuild: Iterable[str] = (),
    rejudge: Iterable[str] = (),
    basis: str,
) -> Rescored:
    """Rescore the users of newly stored events by adding those events to their running tallies (scoring/tally.py)
    instead of reading their histories again, in the caller's transaction. `added` is each user's new events;
    `rebuild`, users whose stored history changed otherwise (events moved to them by a link); `rejudge`, users whose
    verdict may change with nothing added (their account's traits changed).

    A user's tallies are built from their history instead when there are none, they were made under other rules
    (`basis`), the new events restart the trial, or the user is in `rebuild`; and a verdict as of a moment before
    one of their events is judged on the history up to it. Either way the verdict is the one `rescore` gives.

    A user is judged again only when what a verdict reads changed (`read_key`: a met signal, the profile, a
    do-not-touch event, a disposition...), or the last verdict's time ran out (`until`: the next midnight, a hold's
    end, the words "3 h ago" moving on); else their last verdict stands, as judging would give it. Most events
    (another page view, on a day already counted) change no verdict, and judging was most of ingestion's work.
    """
    report = Rescored()
    rebuild = {user for user in rebuild if not user.startswith(ANONYMOUS)}
    rejudge = {user for user in rejudge if not user.startswith(ANONYMOUS)} | rebuild
    users = {user for user in added if not user.startswith(ANONYMOUS)} | rejudge
    if not users:
        return report
    connection = session.connection()
    plan = plan_of(rules)
    tallies.hold(connection, users)
    # Three questions about the same users, in one round trip on PostgreSQL: their tallies, their dispositions and
    # their last verdicts (those of everyone, though only those judged now are compared: a few more rows, not a
    # statement more).
    stored, dispositions, previous = rows_for_each(connection, [
        (tallies.READ, users), (_dispositions_asked(connection), users), (_PREVIOUS, users)])
    stored, dispositions, previous = (tallies.read_rows(stored), _disposition_rows(dispositions),
                                      _previous_rows(previous))
    kept: dict[str, Tally] = {}
    last_judged: dict[str, list] = {}
    account_slots = sorted(plan.catalogue.slots_of_level(Level.ACCOUNT))
    quiet: set[str] = set()  # users whose events this time feed no account trigger: their accounts stand as they were
    identified: set[str] = set()  # those of them who sent an identify call
    for user in users:
        base, state = stored.get(user, (None, None))
        tally = Tally.restore(state, plan, tz, user) if base == basis and user not in rebuild else None
        before = [len(tally.slots[s]) for s in account_slots] if tally is not None else None
        if tally is not None and tally.add(added.get(user, ())):
            kept[user] = tally
            if judged := state.get("judged"):
                last_judged[user] = judged
            if before == [len(tally.slots[s]) for s in account_slots] and user not in rejudge:
                names = {event.name for event in added.get(user, ())}
                if names.isdisjoint(_ACCOUNT_NEWS):
                    quiet.add(user)
                    if IDENTIFY in names:
                        identified.add(user)
    if identified:
        quiet -= account_leads.members_of_led_accounts(session, identified)  # their name or title in a contact map
    stale = users - set(kept)
    histories = {user: events for user, events in events_of(connection, stale)} if stale else {}
    for user, events in histories.items():
        kept[user] = Tally.build(events, plan, tz, user, in_order=True)
    at_us = _micros(at)
    keys, judge_now = {}, []
    for user, tally in kept.items():
        keys[user] = key = read_key(tally, rules, dispositions.get(user, ()))
        judged = last_judged.get(user)
        if user in rejudge or judged is None or judged[0] != key or at_us >= judged[1] or \
                (tally.latest is not None and tally.latest > at):
            judge_now.append(user)
    groups = tallies.read_groups(connection, {kept[u].group[1] for u in judge_now if kept[u].group is not None})
    writes = _Writes(connection, at, report, rules)
    qualified = Status.QUALIFIED
    members: dict[str, tuple[ScoreResult, Tally]] = {}
    with paused_gc():
        for user in sorted(judge_now):
            tally = kept[user]
            group = groups.get(tally.group[1]) if tally.group is not None else None
            if tally.latest is not None and tally.latest > at:  # an event after `at`: judged on the history to it
                events = histories.get(user) or next(iter(events_of(connection, [user])))[1]
                result, upto = score_user_and_tally(events, rules, at, tz=tz,
                                                    dispositions=dispositions.get(user, ()), groups=groups)
                woken = wake(upto, rules, at, result)
                last_judged.pop(user, None)  # judged on part of the tallies: not a verdict on them
            else:
                result = judge(tally, rules, at, dispositions=dispositions.get(user, ()), group=group)
                stands, woken = until_and_wake(tally, rules, at, result)
                last_judged[user] = [keys[user], _micros(stands)]
                members[user] = (result, tally)
            report.users += 1
            if (text := _changed(result, previous.get(user), woken)) is not None:
                writes.user(result, text, woken)
                report.changed += 1
            if result.status is qualified:
                writes.qualified.append(result)
        writes.flush()
        # The accounts of users whose events fed an account trigger, who joined an account, or who qualify (they
        # may join an open account lead's contact map); the contact map's "last active" waits for the next of those
        # or the periodic rescore.
        moved = {user for user in users if user not in quiet or
                 (user in members and members[user][0].status is Status.QUALIFIED)}
        account_leads.roll_up(session, rules, at=at, tz=tz, report=report, judged=members, users=moved,
                              kept={user: tally for user, tally in kept.items() if user not in members}, basis=basis,
                              dispositions=_dispositions)
    tallies.write(connection, [(user, basis, tally.state() | {"judged": last_judged.get(user)})
                               for user, tally in kept.items()])
    return report


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _verdicts(connection: sa.Connection, rules: Rules, *, at: datetime, tz: tzinfo, scope: set[str] | None,
              span: Span) -> Iterator[tuple[ScoreResult, str | None, Tally, datetime | None]]:
    """Each user's verdict, with its JSON text when that or its wake time differs from the stored one (None:
    unchanged), the tallies it was judged on, and its wake time (`wake`)."""
    previous = _previous(connection, scope, span)
    dispositions = _dispositions(connection, scope, span)
    # Everyone: every account's traits at once. Some users: each account's as a user of it is met.
    groups = tallies.all_groups(connection) if scope is None else tallies.GroupsAsMet(connection)
    for user_id, events in events_of(connection, scope, span=span):
        if user_id.startswith(ANONYMOUS):
            continue  # an anonymous visitor: kept, never scored, until a call names the user
        result, tally = score_user_and_tally(events, rules, at, tz=tz, dispositions=dispositions.get(user_id, ()),
                                             groups=groups)
        woken = wake(tally, rules, at, result)
        yield result, _changed(result, previous.pop(user_id, None), woken), tally, woken


def _split(connection: sa.Connection, processes: int) -> list[Span]:
    """Everyone, as `processes` slices of users: one slice when the store is small, one process is asked for,
    or the store is in this process's memory (nobody else can read it).

    This process takes the first slice, weighed against the others' by `_OWN_WEIGHT` (its other work); the others share
    the rest evenly, by events, each in `_PIECES` slices. The cuts are read off the users of an even sample of the
    events (`_SAMPLE` ids, looked up by primary key: milliseconds), not off the (user, time) index at each cut's
    offset, which walks the index up to it (3 s on PostgreSQL for a million events, before any process starts).
    """
    if processes < 2 or connection.engine.url.database in (None, "", ":memory:"):
        return [EVERYONE]
    events = EventRecord.__table__
    # The highest id is the number of events stored, near enough (ids lost to rollbacks aside), and free.
    stored = connection.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
    if stored < _SPLIT_FROM:
        return [EVERYONE]
    step = max(1, stored // _SAMPLE)
    sample = sorted(user for ids in in_chunks(list(range(1, stored + 1, step)))
                    for user in connection.execute(sa.select(events.c.user_id).where(events.c.id.in_(ids))).scalars())
    if not sample:
        return [EVERYONE]
    bounds: list[str] = []
    for position in _cuts(len(sample), processes):
        bound = sample[position]  # the user at that share of the events: the next slice starts with their events
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    edges = [None, *bounds, None]
    return list(zip(edges, edges[1:], strict=False))


def _cuts(total: int, processes: int) -> list[int]:
    """Where the slices after the first begin, among `total` things: this process's share weighs `_OWN_WEIGHT`, each
    other process's one, in `_PIECES` pieces."""
    each = total / (_OWN_WEIGHT + processes - 1) / _PIECES
    return [int(each * (_OWN_WEIGHT * _PIECES + piece)) for piece in range((processes - 1) * _PIECES)]


def _split_scope(connection: sa.Connection, scope: set[str], processes: int) -> list[Span]:
    """Some users (a big backfill's), as `processes` slices of them, as `_split` cuts everyone: one slice when
    they are few, one process is asked for, or the store is in this process's memory."""
    if processes < 2 or len(scope) < _SPLIT_USERS_FROM or connection.engine.url.database in (None, "", ":memory:"):
        return [EVERYONE]
    ids = sorted(scope)
    bounds = [ids[position] for position in _cuts(len(ids), processes)]
    edges = [None, *sorted(set(bounds)), None]
    return list(zip(edges, edges[1:], strict=False))


def _within(scope: set[str] | None, span: Span) -> set[str] | None:
    """The users of `scope` in `span`; None (everyone in the span) when there is no scope."""
    if scope is None or span == EVERYONE:
        return scope
    low, high = span
    return {user for user in scope if (low is None or user >= low) and (high is None or user < high)}


@contextmanager
def _judged_elsewhere(connection: sa.Connection, rules: Rules, at: datetime, tz: tzinfo,
                      spans: list[Span], parts: list[set[str] | None], workers: int) -> Iterator[list[Future]]:
    """The slices after the first, judged by `workers` processes of their own, in order, while this one judges the
    first.

    Spawned, not forked: the caller may be `serve`, whose threads a fork would copy mid-step. The pool
    is shut down on the way out, whatever happened, without waiting for its processes to exit: by then they have
    handed over all they judged, and a process giving back a fifth of a gigabyte took half a second to go, which the
    rescore waited out before routing.
    """
    if not spans:
        yield []
        return
    url = connection.engine.url.render_as_string(hide_password=False)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield [pool.submit(judge_span, url, rules, at, tz, span, None if part is None else sorted(part))
               for span, part in zip(spans, parts, strict=True)]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _take(future: Future, span: Span, part: set[str] | None, writes: _Writes, connection: sa.Connection,
          rules: Rules, at: datetime, tz: tzinfo, members: dict | None = None) -> int:
    """One slice's verdicts into `writes` (and its accounts' members into `members`); judged here instead when its
    process could not do it."""
    try:
        users, judged, theirs = future.result()
    except Exception:  # noqa: BLE001 - a process that cannot start or died: the work is still owed
        log.warning("a rescore process failed; judging its users here instead", exc_info=True)
        users, judged, theirs = _judge(connection, rules, at, tz, span, part)
    if members is not None:
        members.update(theirs)
    for row, result in judged:
        if row is not None:
            writes.users.append(row)
            writes.report.changed += 1
        if result is not None:
            writes.qualified.append(result)
        writes.flush_if_full()
    return users


@contextmanager
def _page_cache(connection: sa.Connection, kib: int) -> Iterator[None]:
    """SQLite's page cache held to `kib` while a rescore runs, then the store's again (bot/store/__init__.py: 256
    MiB, for ingestion's hot indexes). A rescore reads every event once through, in user order: a page cache of its
    size holds only pages never read again, and was a quarter of a full rescore's memory in each process."""
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{kib}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


def judge_span(url: str, rules: Rules, at: datetime, tz: tzinfo, span: Span,
               users: list[str] | None = None) -> tuple[int, list[tuple], list[tuple]]:
    """In a process of its own: `_judge` on a connection of its own."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection, paused_gc():
            with _page_cache(connection, _READER_CACHE_KIB):
                return _judge(connection, rules, at, tz, span, None if users is None else set(users))
    finally:
        engine.dispose()


def _judge(connection: sa.Connection, rules: Rules, at: datetime, tz: tzinfo, span: Span,
           scope: set[str] | None = None) -> tuple[int, list[tuple], list[tuple]]:
    """The users in `span` (of `scope`, when given) judged, and what the rescore must write for them.

    Returns the number of users; for each one whose verdict changed or who qualifies, their trial_users row
    (None when unchanged) and their verdict (None unless qualified). Rows, not verdicts, for the changed: a
    row crosses between processes far more cheaply. And, when the rules have account triggers, each account
    member's id with the part of their verdict and tallies the account roll-up reads (a `facts_row`, `Slots`).
    """
    time = driver_value(_USERS.c.signup_at, connection.dialect)
    scored_at, users, judged, members = time(at), 0, [], []
    accounts = has_account_triggers(rules)
    for result, text, tally, woken in _verdicts(connection, rules, at=at, tz=tz, scope=scope, span=span):
        users += 1
        row = _user_row(result, text, time, scored_at, woken) if text is not None else None
        qualified = result if result.status is Status.QUALIFIED else None
        if row is not None or qualified is not None:
            judged.append((row, qualified))
        if accounts and result.account.key is not None:
            members.append((result.user_id, account_member(result, tally, rules)))
    return users, judged, members


def default_processes() -> int:
    """One per CPU this process may use, at most 4 (a full rescore gains little beyond)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _user_row(result: ScoreResult, text: str, time, scored_at,  # noqa: ANN001 - driver-level values
              wake: datetime | None) -> tuple:
    """A trial_users row as the driver takes it, in `_USER_COLUMNS` order."""
    profile, account = result.profile, result.account
    tier = None if result.tier is None else str(result.tier)
    return (
        result.user_id, result.email, account.domain, account.company_name, result.company_size,
        profile.first_name, profile.last_name, profile.title, profile.plan, profile.industry, profile.group_id,
        time(profile.signup_at), str(result.status), tier, result.score, text, scored_at, time(wake),
    )


class _Writes:
    """What one rescore owes the store, written in batches: verdicts first (a PQL points at its user row).

    Through the store's bulk writer (bot/store/bulk.py): on PostgreSQL a big batch is copied into a temporary
    table and inserted from there in one statement; audit entries, which nothing can conflict with, are copied
    straight into their table.
    """

    def __init__(self, connection: sa.Connection, at: datetime, report: Rescored, rules: Rules) -> None:
        self.connection, self.at, self.report = connection, at, report
        self.accounts = has_account_triggers(rules)  # a user whose account's lead is open gets no lead of their own
        self.users: list[tuple] = []
        self.qualified: list[ScoreResult] = []
        dialect = connection.dialect
        self.sqlite = dialect.name == "sqlite"
        module = sqlite if self.sqlite else postgresql
        self.insert = module.insert
        self.bulk = BulkWriter(connection)
        # At the driver level: tuples with times and JSON already as SQLAlchemy writes them.
        self.time = driver_value(_USERS.c.signup_at, dialect)
        self.scored_at = self.time(at)
        self.quote = quote = dialect.identifier_preparer.quote
        names = [quote(c) for c in _USER_COLUMNS]
        self.user_columns = ", ".join(names)
        self.user_conflict = (f" ON CONFLICT ({names[0]}) DO UPDATE SET "
                              + ", ".join(f"{n} = excluded.{n}" for n in names[1:]))
        mark = "?" if self.sqlite else "%s"
        self.upsert = (f"INSERT INTO {_USERS.name} ({self.user_columns}) VALUES ({', '.join([mark] * len(names))})"
                       + self.user_conflict)

    def user(self, result: ScoreResult, text: str, wake: datetime | None) -> None:
        self.users.append(_user_row(result, text, self.time, self.scored_at, wake))

    def flush_if_full(self) -> None:
        if len(self.users) >= _FLUSH_EVERY or len(self.qualified) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.users:
            if self.bulk.stages(self.users):
                self.bulk.insert_staged(_USERS, _USER_COLUMNS, self.users, self.user_conflict)
            else:
                self.bulk.executemany(self.upsert, self.users)
            self.users = []
        if self.qualified:
            self._record_pqls(self.qualified)
            self.qualified = []

    def _existing(self, results: list[ScoreResult]) -> dict[tuple, tuple[int, str]]:
        """The PQLs these users have already, by (user, trial); an account's lead or an absorbed one with the tier
        None (a user's verdict never moves those)."""
        select = f"SELECT id, user_id, trial_started_at, tier, level, state FROM {_PQLS.name}"
        return {(user_id, utc(trial)): (pql_id, tier if level == "user" and state != PqlState.ABSORBED else None)
                for pql_id, user_id, trial, tier, level, state in
                rows_for(self.connection, select, {r.user_id for r in results})}

    def _record_pqls(self, results: list[ScoreResult]) -> None:
        at, report = self.at, self.report
        existing = self._existing(results)
        joined = account_leads.led_account_keys(self.connection, {r.account.key for r in results
                                                                   if r.account.key}) if self.accounts else set()
        new, plan = [], []
        for result in results:
            trial = result.profile.signup_at
            # The talk track key rides along so outreach can be rendered from the stored lead later.
            signals = [s.to_json() | {"talk_track": s.talk_track} for s in result.signals]
            tier = str(result.tier)
            found = existing.get((result.user_id, trial))
            if found is not None and found[1] is None:
                continue  # part of an account's lead: the account's verdict moves it
            if found is None and result.account.key in joined:
                continue  # their account's lead is open: they join its contact map (account_leads.roll_up)
            if found is None:
                new.append({
                    "user_id": result.user_id, "trial_started_at": trial, "state": str(PqlState.QUALIFIED),
                    "tier": tier, "score": result.score, "signals": signals,
                    "strongest_signal": result.strongest_signal, "qualified_at": result.qualified_at,
                    "created_at": at, "updated_at": at,
                })
            elif TIER_RANK[tier] <= TIER_RANK[found[1]]:
                continue
            plan.append((result, signals, tier, found))
        made: dict[str, int] = {}
        if new:
            # One PQL per (user, trial) even with racing writers: only the rows really inserted come back.
            if self.bulk.stages(new):
                # Ids in the order the users qualified: the staged rows in the order they were copied.
                rows = self.bulk.insert_staged(_PQLS, *as_tuples(_PQLS, new), "ORDER BY ctid ON CONFLICT "
                                           "(user_id, trial_started_at) DO NOTHING RETURNING user_id, id")
            else:
                insert = self.insert(_PQLS).on_conflict_do_nothing(index_elements=["user_id", "trial_started_at"])
                rows = self.connection.execute(insert.returning(_PQLS.c.user_id, _PQLS.c.id), new)
            made = {user_id: pql_id for user_id, pql_id in rows}
        audits, notices = [], []
        for result, signals, tier, found in plan:
            if found is None:
                pql_id = made.get(result.user_id)
                if pql_id is None:
                    continue  # another process recorded it a moment ago
                detail = {"score": result.score, "tier": tier, "signals": signals,
                          "qualified_at": result.qualified_at.isoformat()}
                audits.append(self._audit("pql_triggered", pql_id, result.user_id, detail))
                notices.append(outbox.alert_row(pql_id, now=at))
                notices += tracking.raised_rows(pql_id, result.user_id, now=at, ref=f"PQL-{pql_id}", tier=tier,
                                                score=result.score, level="user",
                                                signals=[signal["name"] for signal in signals],
                                                qualified_at=result.qualified_at.isoformat())
                report.triggered.append(pql_id)
            else:
                pql_id, old_tier = found
                upgraded = self.connection.execute(_UPGRADE, {
                    "b_id": pql_id, "b_old_tier": old_tier, "b_tier": tier, "b_score": result.score,
                    "b_signals": signals, "b_strongest": result.strongest_signal, "b_at": at,
                }).rowcount
                if not upgraded:
                    continue  # another process upgraded it a moment ago, and audited that
                detail = {"old_tier": old_tier, "tier": tier, "score": result.score, "signals": signals}
                audits.append(self._audit("pql_upgraded", pql_id, result.user_id, detail))
                report.upgraded.append(pql_id)
            report.results[pql_id] = result
        self.bulk.append(_AUDIT, audits)
        if tracking.SINKS:  # alerts and the integrations' notices in one insert: the same columns for all
            notices = outbox.alike(notices)
        if notices and self.bulk.stages(notices):
            self.bulk.insert_staged(_NOTICES, *as_tuples(_NOTICES, notices), "ON CONFLICT (key) DO NOTHING")
        elif notices:
            self.connection.execute(self.insert(_NOTICES).on_conflict_do_nothing(index_elements=["key"]), notices)

    def _audit(self, action: str, pql_id: int, user_id: str, detail: dict) -> dict:
        return {"at": self.at, "actor": "system", "action": action, "pql_id": pql_id, "user_id": user_id,
                "detail": detail}
