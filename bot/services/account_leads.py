"""Account leads (seed 003's PQA) in the store: after a rescore has judged users, their accounts are judged
(scoring/accounts.py) and recorded, one open lead per account, absorbing its users' open leads.

The heuristic, per account of the users a rescore judged (members: the trial users whose latest group call named
the group, else whose company email domain it is; each member's tallies as judged in this rescore, else from the
tallies table when made under these rules, else built from their events):
- The account's verdict is kept in `account_scores` (by account key) whenever an account trigger fired: what the
  account lead's alert and Details modal read (its triggers, contact map, firmographics).
- Qualified and no account lead open: if members have open user leads, one of them becomes the account lead (the
  claimed one, else an assigned one, else the oldest): level "account", its account key, its tier raised to the
  account's when that is higher, the triggers' signals in place of its own (its explicit ask kept), version + 1
  so its alert is edited; its rep and claimant stay. The members' other open leads are absorbed into it (state
  `absorbed`, `absorbed_into`), audited, their alerts edited to say so, and a reply in each one's thread (and a
  DM to its owner when that is not the account lead's). If no member has an open lead, a new lead is made for the
  anchor user and goes the way of any new lead (routed, alerted, SLA and escalations).
- An account lead open: members' open user leads are absorbed into it; a member new to its contact map, or newly
  qualified on their own, is added to it (audited, its alert edited), and gets no lead or alert of their own
  (bot/services/rescore.py does not record one while their account's lead is open). A higher tier raises it.
- A closed account lead (dispositioned or stopped) lets a new one be raised only by a trigger firing on what
  happened after it closed.
- A user lead absorbed in the same transaction that recorded it was never alerted: its alert is no longer owed,
  it is not routed, and nobody is told (there is nobody yet).
Two writers rolling up one account at once cannot both open a lead for it: a unique index holds one open account
lead per account key (bot/store/models.py), and the loser's attempt is rolled back to a savepoint and skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from bot.domain.lifecycle import CLOSED, OPEN, TIER_RANK, PqlState
from bot.services import audit, outbox, tracking
from bot.services.alert_text import ASK_TRACK
from bot.store import tallies
from bot.store.bulk import BulkWriter
from bot.store.events import events_of
from bot.store.models import AccountScore, AuditEntry, Notice, Pql, TrialUser
from bot.store.queries import rows_for, utc
from scoring import Rules, ScoreResult, Status
from scoring.accounts import (
    Facts,
    Member,
    Slots,
    fired_triggers,
    group_of,
    has_account_triggers,
    score_account,
    stored_part,
)
from scoring.engine import judge, plan_of, tally_as_of
from scoring.result import account_key
from scoring.tally import Tally
from templates import esc, say


class Rescored(Protocol):
    """What a rescore reports (bot/services/rescore.py `Rescored`), as far as the roll-up adds to it."""

    triggered: list[int]
    accounts: list[int]
    absorbed: list[int]
    results: dict[int, ScoreResult]


#: Each user's earlier dispositions as the rescore reads them (bot/services/rescore.py `_dispositions`).
Dispositions = Callable[[sa.Connection, set[str]], Mapping[str, list]]

_PQLS = Pql.__table__
_USERS = TrialUser.__table__
_SCORES = AccountScore.__table__
_NOTICES = Notice.__table__
_AUDIT = AuditEntry.__table__
#: A member's lead made part of its account's lead: row by row (`_ABSORB`), or from a staged copy of the rows.
_ABSORB = sa.update(_PQLS).where(_PQLS.c.id == sa.bindparam("b_id")).values(
    state=PqlState.ABSORBED, absorbed_into=sa.bindparam("b_into"),
    updated_at=sa.bindparam("b_at", type_=_PQLS.c.updated_at.type), version=_PQLS.c.version + 1)
_ABSORBED_SETS = (f"state = '{PqlState.ABSORBED}', absorbed_into = s.absorbed_into, updated_at = s.updated_at, "
                  "version = pqls.version + 1")
_OPEN = sorted(OPEN)
#: A member's open user lead made its account's lead (`_open_lead`), returning what the account lead's absorbed leads
#: are told of it.
_BECOME = (
    sa.update(_PQLS).where(_PQLS.c.id == sa.bindparam("b_id"), _PQLS.c.state.in_(_OPEN), _PQLS.c.level == "user")
    .values(level="account", account_key=sa.bindparam("b_key"), tier=sa.bindparam("b_tier"),
            signals=sa.bindparam("b_signals", type_=_PQLS.c.signals.type), strongest_signal=sa.bindparam("b_strongest"),
            updated_at=sa.bindparam("b_at", type_=_PQLS.c.updated_at.type), version=_PQLS.c.version + 1)
    .returning(_PQLS.c.id, _PQLS.c.user_id, _PQLS.c.account_key, _PQLS.c.claimed_by, _PQLS.c.rep_id)
)
#: `_BECOME` for a set of leads at once, on PostgreSQL: (at, ids, keys, tiers, signals as JSON text, strongest, open
#: states).
_PG_BECOME = (
    f"UPDATE {_PQLS.name} SET level = 'account', account_key = v.k, tier = v.t, signals = v.s::json, "
    "strongest_signal = v.st, updated_at = %s::timestamptz, version = version + 1 "
    "FROM unnest(%b::int8[], %b::text[], %b::text[], %b::text[], %b::text[]) AS v (i, k, t, s, st) "
    f"WHERE {_PQLS.name}.id = v.i AND state = ANY(%b::text[]) AND level = 'user' "
    f"RETURNING {_PQLS.name}.id, user_id, account_key, claimed_by, rep_id"
)


@dataclass(slots=True)
class _Lead:
    id: int
    user_id: str
    state: str
    level: str
    tier: str
    claimed_by: str | None
    rep_id: str | None
    closed_at: datetime | None
    signals: list


@dataclass(frozen=True, slots=True)
class _Account:
    """An account lead as its absorbed leads' audit entries, thread replies and DMs name it."""

    id: int
    user_id: str
    account_key: str
    claimed_by: str | None
    rep_id: str | None

    @property
    def ref(self) -> str:
        return f"PQL-{self.id}"


@dataclass(slots=True)
class _Batch:
    """What a roll-up writes in bulk at its end: new account leads (one statement for all of them: a first rescore
    of a big store opens thousands), and the user leads recorded in this same transaction that are absorbed."""

    new: list[tuple[str, ScoreResult, dict]] = field(default_factory=list)
    born: list[tuple[_Lead, Pql | _Account]] = field(default_factory=list)
    #: The leads the rescore recorded before the roll-up (its `triggered`, as a set: a first rescore's thousands are
    #: asked about once per absorbed lead).
    recorded: set[int] = field(default_factory=set)
    #: Members' open leads to be made their accounts' leads (`_become_all`): (key, verdict, their leads, the one kept,
    #: its tier).
    become: list[tuple[str, ScoreResult, list[_Lead], _Lead, str]] = field(default_factory=list)

    def flush(self, session: Session, report: Rescored, at: datetime) -> None:
        connection = session.connection()
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        audits: list[dict] = []
        bulk = BulkWriter(connection)  # a first rescore's thousands on PostgreSQL: one statement each
        if self.born:
            rows = [(lead.id, account.id, at) for lead, account in self.born]
            audits += [_audit_row("pql_absorbed", at, lead.id, lead.user_id, into=account.id,
                                  account=account.account_key) for lead, account in self.born]
            if bulk.stages(rows):
                bulk.update_staged(_PQLS, ("id", "absorbed_into", "updated_at"), rows, _ABSORBED_SETS, "pqls.id = s.id")
            else:
                connection.execute(_ABSORB, [{"b_id": i, "b_into": into, "b_at": when} for i, into, when in rows])
            gone = {lead.id for lead, _ in self.born}
            # Made and absorbed in one pass: nobody is owed its alert, nor the CRM its task (the account's has it).
            owed = [key for i in sorted(gone)
                    for key in (f"alert:{i}", f"webhook:pql_triggered:{i}", f"hubspot:raise:{i}")]
            connection.execute(sa.delete(_NOTICES).where(_NOTICES.c.key.in_(owed), _NOTICES.c.state == "pending"))
            report.triggered[:] = [pql_id for pql_id in report.triggered if pql_id not in gone]
            for pql_id in gone:
                report.results.pop(pql_id, None)
        if self.new:
            # Any unique index refusing a row (this account's open lead, made by another writer a moment ago; the
            # anchor's lead of that trial) leaves it out: only the rows really inserted come back.
            insert = module.insert(_PQLS).on_conflict_do_nothing().returning(_PQLS.c.id, _PQLS.c.account_key)
            made = dict(connection.execute(insert, [values for _, _, values in self.new]).all())
            by_key = {key: pql_id for pql_id, key in made.items()}
            notices = []
            for key, verdict, values in self.new:
                if (pql_id := by_key.get(key)) is None:
                    continue
                audits.append(_audit_row("pql_triggered", at, pql_id, verdict.user_id, level="account", account=key,
                                         tier=values["tier"], users=[c.user_id for c in verdict.users],
                                         triggers=[t.name for t in verdict.triggers],
                                         qualified_at=verdict.qualified_at.isoformat()))
                notices.append(outbox.alert_row(pql_id, now=at))
                notices += tracking.raised_rows(pql_id, verdict.user_id, now=at, ref=f"PQL-{pql_id}",
                                                tier=values["tier"], score=values.get("score"), level="account",
                                                account=key, signals=[t.name for t in verdict.triggers],
                                                qualified_at=verdict.qualified_at.isoformat())
                report.triggered.append(pql_id)
                report.results[pql_id] = verdict
            if notices:
                notices = outbox.alike(notices) if tracking.SINKS else notices
                connection.execute(module.insert(_NOTICES).on_conflict_do_nothing(index_elements=["key"]), notices)
        bulk.append(_AUDIT, audits)


def _audit_row(action: str, at: datetime, pql_id: int, user_id: str, **detail: object) -> dict:
    return {"at": at, "actor": "system", "action": action, "pql_id": pql_id, "user_id": user_id, "detail": detail}


def roll_up(session: Session, rules: Rules, *, at: datetime, tz: tzinfo, report: Rescored,
            judged: Mapping[str, Member], dispositions: Dispositions, users: Iterable[str] | None = None,
            kept: Mapping[str, Tally] | None = None, basis: str | None = None) -> None:
    """Judge the accounts of `users` (everyone's when None) as of `at` and record their leads (see the module
    docstring), in the caller's transaction. `judged`: members' verdicts and tallies this rescore has already, or
    only the part of them an account reads (a `facts_row` and `Slots`: a full rescore keeps no more of a
    population); `kept`: running tallies it holds for others; `basis`: what stored tallies must be made under to be
    used; `dispositions`: how the rescore reads users' earlier dispositions."""
    if not has_account_triggers(rules):
        return
    connection = session.connection()
    accounts = _accounts(connection, None if users is None else set(users))
    if not accounts:
        return
    everyone = set().union(*accounts.values())
    members, states = _members(connection, rules, at, tz, everyone, judged, kept or {}, basis)
    keys = sorted(accounts)
    account_leads = _account_leads(connection, keys)
    # First what fired, on the members' slots alone: an account where nothing fired and no lead is open needs no
    # verdict (most accounts, most days).
    owed: dict[str, tuple] = {}
    for key in keys:
        found = [members[user] for user in sorted(accounts[key]) if user in members]
        if not found:
            continue
        leads = account_leads.get(key, [])
        current = next((lead for lead in leads if lead.state not in CLOSED), None)
        closed = [lead.closed_at for lead in leads if lead.state in CLOSED and lead.closed_at is not None]
        since = max(closed) if closed else None
        fired = fired_triggers(found, rules, at, tz, since=since)
        if fired or current is not None:
            owed[key] = (current, since, fired)
    if not owed:
        return
    _judge_members(connection, rules, at, tz, members, {user for key in owed for user in accounts[key]}, dispositions,
                   states)
    stored = _stored(connection, list(owed))
    groups = tallies.read_groups(connection, {g for key in owed if (g := group_of(key))})
    user_leads = _open_user_leads(connection, {user for key in owed for user in accounts[key]})
    scores: list[dict] = []
    batch = _Batch(recorded=set(report.triggered))
    for key, (current, since, fired) in owed.items():
        found = [members[user] for user in sorted(accounts[key]) if user in members]
        verdict = score_account(key, found, rules, at, tz, groups.get(group_of(key) or ""), since=since, fired=fired)
        if verdict.triggers:
            text = orjson.dumps(verdict.to_json()).decode()
            if key not in stored or stored[key][0] != text:
                scores.append({"account_key": key, "verdict": orjson.loads(text), "scored_at": at})
        theirs = [lead for user in sorted(accounts[key]) for lead in user_leads.get(user, ())]
        if current is not None:
            _carry_on(session, current, verdict, stored.get(key, (None, {}))[1], theirs, report, at, batch)
        elif verdict.status is Status.QUALIFIED:
            _open_lead(session, key, verdict, theirs, report, at, batch)
    _become_all(session, batch, report, at)
    batch.flush(session, report, at)
    _write_scores(connection, scores)


# -- reading -----------------------------------------------------------------------------------------------------

def _accounts(connection: sa.Connection, users: set[str] | None) -> dict[str, set[str]]:
    """Account key -> its members, for the accounts of `users` (of every trial user when None)."""
    select = f"SELECT user_id, group_id, domain FROM {_USERS.name}"
    if users is None:
        rows = connection.exec_driver_sql(f"{select} WHERE group_id IS NOT NULL OR domain IS NOT NULL").fetchall()
    else:
        theirs = rows_for(connection, select, users)
        groups = {group for _, group, _ in theirs if group}
        domains = {domain for _, group, domain in theirs if not group and domain}
        rows = [*rows_for(connection, select, groups, column="group_id"),
                *(row for row in rows_for(connection, select, domains, column="domain") if not row[1])]
    found: dict[str, set[str]] = defaultdict(set)
    for user_id, group, domain in rows:
        if (key := account_key(group, domain)) is not None:
            found[key].add(user_id)
    return found


def _members(connection: sa.Connection, rules: Rules, at: datetime, tz: tzinfo, users: set[str],
             judged: Mapping[str, Member], kept: Mapping[str, Tally], basis: str | None
             ) -> tuple[dict[str, Member], dict[str, dict]]:
    """Each member's tallies as of `at` (which is all `fired_triggers` reads), with their verdict where it was judged
    already: as judged, else `(None, tallies)` held, or stored (when made under `basis` and not past `at`: only the
    part an account reads, `Slots`, with the stored state returned beside, by user), else built from their history.
    Most accounts need no verdict (nothing fired, no lead open): `_judge_members` judges the members of those that
    do, on the stored tallies restored whole."""
    found = {user: judged[user] for user in users if user in judged}
    missing = users - set(found)
    states: dict[str, dict] = {}
    if not missing:
        return found, states
    tallied: dict[str, Tally | Slots] = {user: kept[user] for user in missing if user in kept}
    if basis is not None:
        for user, (made_under, state) in tallies.read(connection, missing - set(tallied)).items():
            if made_under == basis and (part := stored_part(state, rules)) is not None:
                tallied[user], states[user] = part, state
    for user, tally in tallied.items():
        if tally.latest is None or tally.latest <= at:
            found[user] = (None, tally)  # type: ignore[assignment]  # judged by `_judge_members` if needed
    rest = missing - set(found)
    if rest:
        for user, events in events_of(connection, rest):
            found[user] = (None, tally_as_of(events, rules, at, tz))  # type: ignore[assignment]
    return found, states


def _judge_members(connection: sa.Connection, rules: Rules, at: datetime, tz: tzinfo, members: dict[str, Member],
                   users: set[str], dispositions_of: Dispositions, states: Mapping[str, dict]) -> None:
    """Those of `users` known by their tallies alone (`_members`; from their stored `states` when only its `Slots`
    were read) judged on them as of `at`, and those known by the rescore's `facts_row` made `Facts`, in place: what
    `score_account` reads."""
    todo = {}
    plan = plan_of(rules)
    for user in users:
        if (member := members.get(user)) is None:
            continue
        if member[0] is None:
            tally = member[1]
            todo[user] = Tally.restore(states[user], plan, tz, user) if type(tally) is Slots else tally
        elif type(member[0]) is tuple:
            members[user] = (Facts(member[0]), member[1])
    if not todo:
        return
    dispositions = dispositions_of(connection, set(todo))
    groups = tallies.read_groups(connection, {tally.group[1] for tally in todo.values() if tally.group is not None})
    for user, tally in todo.items():
        group = groups.get(tally.group[1]) if tally.group is not None else None
        members[user] = (judge(tally, rules, at, dispositions=dispositions.get(user, ()), group=group), tally)


_LEAD_COLUMNS = "id, user_id, state, level, tier, claimed_by, rep_id, dispositioned_at, updated_at, signals"


def _lead(row: tuple) -> _Lead:
    pql_id, user_id, state, level, tier, claimed_by, rep_id, dispositioned_at, updated_at, signals = row
    closed_at = dispositioned_at or (updated_at if state in CLOSED else None)
    return _Lead(pql_id, user_id, state, level, tier, claimed_by, rep_id, None if closed_at is None else utc(closed_at),
                 orjson.loads(signals) if isinstance(signals, str) else list(signals or []))


def _account_leads(connection: sa.Connection, keys: list[str]) -> dict[str, list[_Lead]]:
    found: dict[str, list[_Lead]] = defaultdict(list)
    select = f"SELECT account_key, {_LEAD_COLUMNS} FROM {_PQLS.name}"
    for key, *row in rows_for(connection, select, keys, column="account_key"):
        found[key].append(_lead(tuple(row)))
    return found


def _open_user_leads(connection: sa.Connection, users: set[str]) -> dict[str, list[_Lead]]:
    found: dict[str, list[_Lead]] = defaultdict(list)
    for row in rows_for(connection, f"SELECT {_LEAD_COLUMNS} FROM {_PQLS.name}", users):
        lead = _lead(row)
        if lead.level == "user" and lead.state not in CLOSED:
            found[lead.user_id].append(lead)
    return found


def _stored(connection: sa.Connection, keys: list[str]) -> dict[str, tuple[str, dict]]:
    """Each account's stored verdict: (its JSON text as written, the verdict)."""
    select = f"SELECT account_key, CAST(verdict AS TEXT) FROM {_SCORES.name}"
    found = {}
    for key, text in rows_for(connection, select, keys, column="account_key"):
        verdict = orjson.loads(text)
        found[key] = (orjson.dumps(verdict).decode(), verdict)
    return found


def led_account_keys(connection: sa.Connection, keys: Iterable[str], *, closed_too: bool = False) -> set[str]:
    """Which of these accounts have an account lead: an open one (their users' own qualifying then makes no lead), or
    with `closed_too` one in any state."""
    rows = rows_for(connection, f"SELECT account_key, state FROM {_PQLS.name}", set(keys), column="account_key")
    return {key for key, state in rows if closed_too or state not in CLOSED}


def members_of_led_accounts(session: Session, users: set[str], *, closed_too: bool = False) -> set[str]:
    """Those of `users` whose account has an open account lead (with `closed_too`, an account lead in any state): what
    they do (a ticket, a checkout, a conversion) reaches the account's one conversation."""
    if not users:
        return set()
    connection = session.connection()
    rows = rows_for(connection, f"SELECT user_id, group_id, domain FROM {_USERS.name}", users)
    keys = {user: key for user, group, domain in rows if (key := account_key(group, domain)) is not None}
    led = led_account_keys(connection, set(keys.values()), closed_too=closed_too)
    return {user for user, key in keys.items() if key in led}


def account_lead_of_member(session: Session, user_id: str, *, at: datetime, closed_too: bool = False) -> Pql | None:
    """The account lead of the account `user_id` belongs to, recorded by `at`: the open one, or with `closed_too` the
    latest in any state. None for a user of no account, or of one with no such lead."""
    user = session.get(TrialUser, user_id)
    key = account_key(user.group_id, user.domain) if user is not None else None
    if key is None:
        return None
    query = select(Pql).where(Pql.level == "account", Pql.account_key == key, Pql.created_at <= at)
    if not closed_too:
        query = query.where(Pql.state.in_(_OPEN))
    return session.exec(query.order_by(Pql.id.desc())).first()


# -- writing -----------------------------------------------------------------------------------------------------

def _signals(verdict: ScoreResult, keep: list) -> list:
    """The account's triggers as signals (with their talk tracks), then the lead's own explicit ask if it had one
    (what a fast-lane alert quotes). The rest of what its user did is in the contact map, as every member's is."""
    mine = [s.to_json() | {"talk_track": s.talk_track} for s in verdict.signals]
    return mine + [s for s in keep if s.get("talk_track") == ASK_TRACK]


def _higher(tier: str, verdict: ScoreResult) -> str:
    new = str(verdict.tier) if verdict.tier is not None else tier
    return new if TIER_RANK.get(new, 0) > TIER_RANK.get(tier, 0) else tier


def _open_lead(session: Session, key: str, verdict: ScoreResult, theirs: list[_Lead], report: Rescored,
               at: datetime, batch: _Batch) -> None:
    """The account's lead, made of a member's open lead (absorbing the others) or made new for the anchor."""
    if not theirs:
        batch.new.append((key, verdict, {
            "user_id": verdict.user_id, "trial_started_at": verdict.qualified_at, "state": PqlState.QUALIFIED,
            "tier": str(verdict.tier), "score": verdict.score, "signals": _signals(verdict, []),
            "strongest_signal": verdict.strongest_signal, "qualified_at": verdict.qualified_at, "created_at": at,
            "updated_at": at, "level": "account", "account_key": key}))
        return
    keep = min(theirs, key=lambda lead: (lead.claimed_by is None, lead.rep_id is None, lead.id))
    batch.become.append((key, verdict, theirs, keep, _higher(keep.tier, verdict)))


def _become_all(session: Session, batch: _Batch, report: Rescored, at: datetime) -> None:
    """The members' open leads `_open_lead` chose made their accounts' leads, all in one statement (a first rescore
    of a big store makes thousands: on PostgreSQL a savepoint and an update each were thousands of round trips),
    then each told, audited and its account's other leads absorbed, in the order the accounts were scored. When a
    unique index refuses one (another writer opened that account's lead a moment ago), they are made again one at a
    time, each to a savepoint of its own, and that one is skipped."""
    if not batch.become:
        return
    rows = [(keep.id, key, tier, _signals(verdict, keep.signals), verdict.strongest_signal)
            for key, verdict, _, keep, tier in batch.become]
    # The connection is asked for inside each savepoint: one taken before it is not rolled back to it on PostgreSQL.
    try:
        with session.begin_nested():
            became = _become(session.connection(), rows, at)
    except sa.exc.IntegrityError:
        became = {}
        for row in rows:
            try:
                with session.begin_nested():
                    became |= _become(session.connection(), [row], at)
            except sa.exc.IntegrityError:
                continue  # another writer opened this account's lead a moment ago
    for key, verdict, theirs, keep, tier in batch.become:
        if (row := became.get(keep.id)) is None:
            continue  # closed or taken meanwhile: the next rescore looks again
        lead = _Account(*row)  # read back by the update itself
        if (held := session.identity_map.get(Session.identity_key(Pql, lead.id))) is not None:
            session.expire(held)  # written past the ORM
        audit.record(session, "pql_became_account_lead", at=at, pql_id=lead.id, user_id=lead.user_id, account=key,
                     old_tier=keep.tier, tier=tier, users=[c.user_id for c in verdict.users],
                     triggers=[t.name for t in verdict.triggers])
        if lead.id not in batch.recorded:
            text = say("became_account_lead", ref=lead.ref, company=esc(verdict.account.company_name),
                       users=len(verdict.users))
            outbox.reply(session, session.get(Pql, lead.id), f"account-lead:{lead.id}", text, now=at)
        report.accounts.append(lead.id)
        report.results[lead.id] = verdict
        for other in theirs:
            if other.id != keep.id:
                _absorb(session, other, lead, verdict, report, at, batch)
    batch.become = []


def _become(connection: sa.Connection, rows: list[tuple], at: datetime) -> dict[int, tuple]:
    """`rows` of (lead id, account key, tier, signals, strongest signal): each lead, when still an open user lead,
    made its account's lead. Returns what `_BECOME` returns, by lead id: one statement on PostgreSQL, one each on
    SQLite (no round trips to save there)."""
    found = {}
    if connection.dialect.name != "postgresql":
        for lead_id, key, tier, signals, strongest in rows:
            if (row := connection.execute(_BECOME, {"b_id": lead_id, "b_key": key, "b_tier": tier,
                                                    "b_signals": signals, "b_strongest": strongest,
                                                    "b_at": at}).first()) is not None:
                found[row[0]] = tuple(row)
        return found
    for start in range(0, len(rows), 5000):
        ids, keys, tiers, signals, strongest = zip(*rows[start:start + 5000], strict=True)
        texts = [orjson.dumps(s).decode() for s in signals]
        done = connection.exec_driver_sql(_PG_BECOME, (at, list(ids), list(keys), list(tiers), texts, list(strongest),
                                                       _OPEN)).all()
        found.update((row[0], tuple(row)) for row in done)
    return found


def _carry_on(session: Session, lead_row: _Lead, verdict: ScoreResult, before: dict, theirs: list[_Lead],
              report: Rescored, at: datetime, batch: _Batch) -> None:
    """An open account lead: members' open leads absorbed into it, newcomers and the newly qualified added to its
    contact map, its tier raised when the account's is higher; its alert edited for those and for a member's new name,
    title or email."""
    known = {c["user_id"]: c for c in before.get("users", [])}
    added = [c for c in verdict.users if before and (c.user_id not in known or (
        c.status == str(Status.QUALIFIED) and known[c.user_id].get("status") != str(Status.QUALIFIED)))]
    # Who a member is, as the alert's contact lines show it: a new name, title or email edits the alert.
    renamed = any((was := known.get(c.user_id)) is not None
                  and (was.get("name"), was.get("title"), was.get("email")) != (c.name, c.title, c.email)
                  for c in verdict.users)
    tier = _higher(lead_row.tier, verdict) if verdict.status is Status.QUALIFIED else lead_row.tier
    if not theirs and not added and not renamed and tier == lead_row.tier:
        return  # the daily rescore's common case: nothing to write, not even the lead to read
    lead = session.get(Pql, lead_row.id)
    for other in theirs:
        _absorb(session, other, lead, verdict, report, at, batch)
    for contact in added:
        audit.record(session, "pql_account_member_added", at=at, pql_id=lead.id, user_id=contact.user_id,
                     account=lead.account_key, qualified=contact.status == str(Status.QUALIFIED))
    if not added and not renamed and tier == lead_row.tier:
        return
    values = {"updated_at": at, "version": _PQLS.c.version + 1}
    if tier != lead_row.tier:
        values |= {"tier": tier, "signals": _signals(verdict, lead_row.signals),
                   "strongest_signal": verdict.strongest_signal}
        audit.record(session, "pql_upgraded", at=at, pql_id=lead.id, user_id=lead.user_id, old_tier=lead_row.tier,
                     tier=tier, level="account")
    report.accounts.append(lead.id)
    session.connection().execute(sa.update(_PQLS).where(_PQLS.c.id == lead.id).values(**values))
    session.refresh(lead)
    report.results[lead.id] = verdict


def _absorb(session: Session, other: _Lead, into: Pql | _Account, verdict: ScoreResult, report: Rescored,
            at: datetime, batch: _Batch) -> None:
    """A member's open user lead becomes part of the account lead: closed as absorbed, told in its thread."""
    if other.id in batch.recorded:  # recorded in this transaction: never alerted, never routed, nobody to tell
        batch.born.append((other, into))
        return
    connection = session.connection()
    changed = connection.execute(
        sa.update(_PQLS).where(_PQLS.c.id == other.id, _PQLS.c.state.in_(_OPEN))
        .values(state=PqlState.ABSORBED, absorbed_into=into.id, updated_at=at, version=_PQLS.c.version + 1)
    ).rowcount
    if not changed:
        return
    audit.record(session, "pql_absorbed", at=at, pql_id=other.id, user_id=other.user_id, into=into.id,
                 account=into.account_key)
    absorbed = session.get(Pql, other.id)
    session.refresh(absorbed)
    user = session.get(TrialUser, other.user_id)
    who = esc((user.name or user.email or other.user_id) if user else other.user_id)
    text = say("absorbed", ref=absorbed.ref, who=who, account_ref=into.ref,
               company=esc(verdict.account.company_name))
    outbox.reply(session, absorbed, f"absorbed:{other.id}", text, now=at)
    if (owner := other.claimed_by or other.rep_id) and owner != (into.claimed_by or into.rep_id):
        outbox.dm(session, owner, f"absorbed-dm:{other.id}", text, pql=absorbed, now=at)
    report.absorbed.append(other.id)


def _write_scores(connection: sa.Connection, rows: list[dict]) -> None:
    if not rows:
        return
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = module.insert(_SCORES)
    connection.execute(insert.on_conflict_do_update(index_elements=["account_key"], set_={
        "verdict": insert.excluded.verdict, "scored_at": insert.excluded.scored_at}), rows)
