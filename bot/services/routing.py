"""Who gets a new PQL.

- First, which team (bot/domain/teams.py): the first row of the routing matrix the lead matches, else the default
  team; the lead records it, and everything below happens within that team (its members, daily cap, business hours
  and holidays, SLA, manager and on-call member). With no teams file there is one team: the whole roster.
- A named-account owner (accounts.owner_rep_id, from `pqlbot owners import`) gets their account's
  leads, cap or not, unless they are paused or off the roster: two reps on one account is worse.
- A fast-lane lead (seed 000's explicit asks: a demo or contact-sales request) is never capped and never
  waits behind the queue (bot/domain/routing.py, `FastLane`): it goes at once to whoever is in business
  hours (their own, for a rep with a timezone), load-balanced as below; out of hours to the on-call rep
  (PQL_ON_CALL); and when nobody can take it, the manager is told at once instead of 2 hours later. It
  waits in the queue meanwhile, first in line, and goes out as soon as someone is in hours or on call.
- Otherwise load-balanced round-robin over the roster (`pick`).
- Outside business hours a lead waits for the opening (so a weekend's leads count against Monday's
  cap instead of landing on Monday all at once); the alert is in the channel meanwhile.
- When nobody can take it, it waits in the queue; the queue is shared out in order (fast lane, high,
  medium, then oldest) whenever business is open and someone has room, so a rep back from a pause
  is not flooded: the cap still holds, and the others get their share. A new lead joins the queue
  too while leads of its tier or a higher one wait there: it does not overtake them.
- When every rep is paused, the manager is told at once: nothing is assigned silently.
- While the manager has paused routing for the whole team (`/pql pause-all`, bot/services/switches.py), every new
  lead waits in the queue, fast lane included, and the queue is not shared out; `/pql resume-all` lets it go.
- A lead on a do-not-touch hold (bot/services/holds.py: a support ticket open, a checkout under way) goes to nobody,
  named-account owner included, fast lane included: it waits in the queue in its place (by tier, then when it
  qualified) without holding back the leads behind it, and goes out with the queue once the hold ends, its SLA
  clock going on then (the hold's business time is added to it).
Every decision is audited with its reason, which is what `/pql why` reads back.

New leads, one or a set (the thousands a backfill raises), and leads handed to another team are decided in one
place (`Router._route_set`, `_choose`): from counts read once per team and kept in memory as leads are given out,
written in bulk. Sharing out the queue (`drain`) takes one lead at a time, each pick counted again under a hold on
its rep.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.caps import cap_day
from bot.domain.lifecycle import CLOSED, OPEN, TIER_RANK, PqlState
from bot.domain.routing import Candidate, FastLane, pick
from bot.domain.sla import first_touch_due
from bot.domain.teams import Choice, LeadFacts, Team, Teams, single_team
from bot.services import handoffs, outbox, switches, tracking
from bot.services.leads import hold_rep, new_today
from bot.store.bulk import BulkWriter
from bot.store.models import Account, AccountScore, Assignment, AuditEntry, Notice, Pql, Rep, TrialUser
from bot.store.queries import given_today, in_chunks, rows_for, still_open, utc
from scoring import ScoreResult, paused_gc
from templates import esc, say

_PQLS = Pql.__table__
_REPS = Rep.__table__
_USERS = TrialUser.__table__
_ACCOUNTS = Account.__table__
_ACCOUNT_SCORES = AccountScore.__table__
_ASSIGNMENTS = Assignment.__table__
_AUDIT = AuditEntry.__table__
_NOTICES = Notice.__table__
#: What giving and queueing leads write, a set of leads at a time (`_RoutingWrites`).
_GIVE = (
    sa.update(_PQLS).where(_PQLS.c.id == sa.bindparam("b_id"))
    .values(rep_id=sa.bindparam("b_rep"), assigned_at=sa.bindparam("b_assigned", type_=_PQLS.c.assigned_at.type),
            state=sa.bindparam("b_state"), sla_due_at=sa.bindparam("b_due", type_=_PQLS.c.sla_due_at.type),
            updated_at=sa.bindparam("b_at", type_=_PQLS.c.updated_at.type), team=sa.bindparam("b_team"),
            version=_PQLS.c.version + 1)
)
_QUEUE = (
    sa.update(_PQLS).where(_PQLS.c.id == sa.bindparam("b_id"))
    .values(state=PqlState.QUEUED, sla_due_at=sa.bindparam("b_due", type_=_PQLS.c.sla_due_at.type),
            updated_at=sa.bindparam("b_at", type_=_PQLS.c.updated_at.type), team=sa.bindparam("b_team"),
            version=_PQLS.c.version + 1)
)
# The same two updates as one statement each from a staged copy of their rows (PostgreSQL, `BulkWriter`).
_GIVEN_KEYS = ("id", "rep", "assigned", "state", "due", "at", "team")
_GIVEN_COLUMNS = ("id", "rep_id", "assigned_at", "state", "sla_due_at", "updated_at", "team")
_GIVEN_SETS = ("rep_id = s.rep_id, assigned_at = s.assigned_at, state = s.state, sla_due_at = s.sla_due_at, "
               "updated_at = s.updated_at, team = s.team, version = pqls.version + 1")
_QUEUED_COLUMNS = ("id", "sla_due_at", "updated_at", "team")
_QUEUED_SETS = (f"state = '{PqlState.QUEUED}', sla_due_at = s.sla_due_at, updated_at = s.updated_at, team = s.team, "
                "version = pqls.version + 1")
_CHANNEL = sa.bindparam("b_channel", type_=_NOTICES.c.channel.type)
_MOVE_ALERT = (
    sa.update(_NOTICES).where(_NOTICES.c.key == sa.bindparam("b_key"), _NOTICES.c.state == "pending",
                              _NOTICES.c.channel.is_distinct_from(_CHANNEL))
    .values(channel=_CHANNEL)
)


@dataclass(slots=True)
class _Lead:
    """What routing reads of a lead."""

    id: int
    user_id: str
    state: str
    tier: str
    rep_id: str | None
    created_at: datetime
    sla_due_at: datetime | None
    version: int
    level: str | None
    account_key: str | None
    held_since: datetime | None

    @property
    def ref(self) -> str:
        return f"PQL-{self.id}"


def _leads(connection: sa.Connection, ids: list[int]) -> list[_Lead]:
    """The leads, in the order of `ids`."""
    c = _PQLS.c
    found: dict[int, _Lead] = {}
    for chunk in in_chunks(ids):
        rows = connection.execute(sa.select(c.id, c.user_id, c.state, c.tier, c.rep_id, c.created_at, c.sla_due_at,
                                            c.version, c.level, c.account_key, c.held_since)
                                  .where(c.id.in_(chunk)))
        found.update((row[0], _Lead(*row)) for row in rows)
    return [found[pql_id] for pql_id in ids if pql_id in found]


def _given_before(connection: sa.Connection, pql_ids: list[int]) -> dict[tuple[int, str], datetime]:
    """When each of these leads was last given to each rep it was given to before: (lead id, rep id) -> then. One
    driver-level statement (`rows_for`): a set of 10,000 new leads, which have none, spent a quarter of a second in
    SQLAlchemy's expanding IN."""
    at = connection.dialect.identifier_preparer.quote("at")
    latest: dict[tuple[int, str], datetime] = {}
    for pql_id, rep_id, given in rows_for(connection, f"SELECT pql_id, rep_id, {at} FROM {_ASSIGNMENTS.name}",
                                          pql_ids, column="pql_id", numbers=True):
        given = utc(given)
        if (key := (pql_id, rep_id)) not in latest or given > latest[key]:
            latest[key] = given
    return latest


def _people(connection: sa.Connection, users: set[str]) -> dict[str, tuple[str | None, str | None]]:
    """Each user's name as a DM shows it (their name, else their email) and their named account's owner."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for chunk in in_chunks(sorted(users)):
        rows = connection.execute(
            sa.select(_USERS.c.user_id, _USERS.c.first_name, _USERS.c.last_name, _USERS.c.email,
                      _ACCOUNTS.c.owner_rep_id)
            .select_from(_USERS.outerjoin(_ACCOUNTS, _ACCOUNTS.c.domain == _USERS.c.domain))
            .where(_USERS.c.user_id.in_(chunk)))
        for user_id, first, last, email, owner in rows:
            name = " ".join(part for part in (first, last) if part) or None  # TrialUser.name
            found[user_id] = (name or email, owner)
    return found


def _verdicts(connection: sa.Connection, key: sa.Column, verdict: sa.Column, keys: set[str]) -> dict[str, tuple]:
    """What routing reads of the stored verdicts of `keys` (users or accounts): (family, band, ACV estimate, fired
    triggers), a few statements for a set, each part taken out of the JSON by the database: the whole verdict (its
    signals, reasons, contact map) is many times what the matrix reads, and parsing it was 40 % of routing the
    10,000 leads of a backfill."""
    parts = (verdict["family"].as_string(), verdict["band"].as_string(), verdict["acv_potential"], verdict["triggers"])
    found: dict[str, tuple] = {}
    for chunk in in_chunks(sorted(keys)):
        found.update((row[0], tuple(row[1:])) for row in connection.execute(sa.select(key, *parts)
                                                                             .where(key.in_(chunk))))
    return found


def _facts(connection: sa.Connection, leads: list[_Lead],
           held: Mapping[int, ScoreResult] | None = None) -> dict[int, LeadFacts]:
    """What the routing matrix reads of each lead: the family, band, ACV estimate and fired triggers of the verdict
    the lead is shown from (`lead_view.lead_verdict`: its account's for an account lead, else its user's latest),
    read for the whole set at once. `held`: verdicts by lead id that the caller wrote in this transaction (a
    rescore's: the verdict behind each lead it raised), read from memory instead of the store when they are the
    lead's (on PostgreSQL, reading back a backfill's 10,000 verdicts was 0.8 s of its rescore)."""
    found = {}
    for lead in leads:
        verdict = (held or {}).get(lead.id)
        if verdict is not None and verdict.level == (lead.level or "user") and (
                verdict.account.key == lead.account_key if verdict.level == "account"
                else verdict.user_id == lead.user_id):
            found[lead.id] = LeadFacts(tier=lead.tier, family=verdict.family, band=str(verdict.band),
                                       acv=verdict.acv_potential, level=verdict.level,
                                       triggers=tuple(t.name for t in verdict.triggers if t.name))
    leads = [lead for lead in leads if lead.id not in found]
    accounts = _verdicts(connection, _ACCOUNT_SCORES.c.account_key, _ACCOUNT_SCORES.c.verdict,
                         {lead.account_key for lead in leads if lead.level == "account" and lead.account_key})
    users = _verdicts(connection, _USERS.c.user_id, _USERS.c.verdict, {lead.user_id for lead in leads})
    nothing = (None, None, None, None)
    for lead in leads:
        account = accounts.get(lead.account_key) if lead.level == "account" and lead.account_key else None
        family, band, acv, triggers = account or users.get(lead.user_id) or nothing
        fired = tuple(t["name"] for t in triggers or () if isinstance(t, dict) and t.get("name"))
        found[lead.id] = LeadFacts(tier=lead.tier, family=family, band=band, acv=acv, level=lead.level or "user",
                                   triggers=fired)
    return found


@dataclass(slots=True)
class _Desk:
    """A member of a team on the roster and the counts routing reads of them (`Router.candidates`', on that team's
    clock), kept in memory while a set of leads is routed."""

    rep: Rep
    today: int  # leads given today that count against the cap
    active: int  # open leads
    week: dict[str, int]  # leads given this week, by tier
    last: datetime | None  # when they were last given one
    in_hours: bool
    at_work: bool
    day_start: datetime  # when the team's day began, for the cap
    uncapped: frozenset[str]  # the team's fast lane, which the cap leaves out

    def candidate(self, tier: str, order: int) -> Candidate:
        return Candidate(self.rep.id, order, self.today, self.active, self.week.get(tier, 0), self.last)

    def took(self, lead: _Lead, given_before: datetime | None, now: datetime) -> None:
        """The counts once they are given `lead` (`given_before`: when they were last given it before), as counting
        them again would find them."""
        if lead.tier not in self.uncapped and not (given_before is not None and given_before >= self.day_start):
            self.today += 1
        if lead.state not in CLOSED and _given_state(lead.state) in OPEN:
            self.active += 1
        self.week[lead.tier] = self.week.get(lead.tier, 0) + 1
        self.last = now if self.last is None or now > self.last else self.last


def _given_state(state: str) -> str:
    """A lead's state once given to a rep (`_give`)."""
    return PqlState.ASSIGNED if state in (PqlState.QUALIFIED, PqlState.ALERTED, PqlState.QUEUED) else state


class _RoutingWrites:
    """What routing a set of leads writes, in the order giving or queueing them one by one would write it, in a few
    statements. Each lead comes with the router within its team (`Router.for_team`)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.given: list[dict] = []
        self.queued: list[dict] = []
        self.assignments: list[dict] = []
        self.moved: list[dict] = []
        self.audits: list[dict] = []
        self.notices: list[dict] = []
        self.ids: set[int] = set()

    def give(self, lead: _Lead, team: Router, rep_id: str, reason: str, why: str, who: str, *,
             dm: bool = True) -> None:
        """`dm`: False where the caller sends the rep its own DM (a queued hand-off's)."""
        now = self.now
        self.given.append({"b_id": lead.id, "b_rep": rep_id, "b_assigned": now, "b_at": now,
                           "b_state": _given_state(lead.state), "b_team": team.team.name, "b_due": lead.sla_due_at})
        self.assignments.append({"pql_id": lead.id, "rep_id": rep_id, "reason": reason, "by": "system", "at": now})
        self._to_team(lead, team)
        self.audits.append({"at": now, "actor": "system", "action": "pql_assigned", "pql_id": lead.id,
                            "user_id": lead.user_id, "detail": {"rep": rep_id, "reason": reason,
                                                                "why": team._team_why(why), **team._team_detail()}})
        self.notices += tracking.crm_row("owner", lead.id, key=f"owner:{lead.id}:{lead.version + 1}", now=now)
        if dm and not team.handed:  # the hand-off's own DM tells them, with the lead's history
            text = say("assigned_dm", ref=lead.ref, who=esc(who), tier=lead.tier.replace("_", " "))
            self.notices.append(outbox.row(key=f"assigned:{lead.id}:{rep_id}:{now.isoformat()}", kind="dm",
                                           now=now, target=rep_id, pql_id=lead.id, text=text, blocks=None,
                                           payload=None))
        self.ids.add(lead.id)

    def queue(self, lead: _Lead, team: Router, why: str, *, stuck: bool, fast: bool = False) -> None:
        """`stuck`: nobody can take it until someone acts (an empty or paused team, the fast lane): its manager hears
        at once."""
        now = self.now
        self.queued.append({"b_id": lead.id, "b_at": now, "b_due": lead.sla_due_at, "b_team": team.team.name})
        self._to_team(lead, team)
        self.audits.append({"at": now, "actor": "system", "action": "pql_queued", "pql_id": lead.id,
                            "user_id": lead.user_id, "detail": {"why": team._team_why(why), **team._team_detail()}})
        if team.manager and stuck:
            text = say("fast_lane_stuck" if fast else "nobody_to_route", ref=lead.ref, why=why)
            self.notices.append(outbox.row(key=f"unroutable:{lead.id}", kind="dm", now=now, target=team.manager,
                                           pql_id=lead.id, text=text, blocks=None, payload=None))
        self.ids.add(lead.id)

    def _to_team(self, lead: _Lead, team: Router) -> None:
        """With teams, the lead's alert goes to its team's channel (`alert_channel`), if it has not gone yet."""
        if not team.teams.is_single:
            self.moved.append({"b_key": f"alert:{lead.id}", "b_channel": team.team.alert_channel})

    def flush(self, session: Session) -> None:
        connection = session.connection()
        bulk = BulkWriter(connection)  # a backfill's thousands on PostgreSQL: one statement each, not one per row
        if self.given and bulk.stages(self.given):
            bulk.update_staged(_PQLS, _GIVEN_COLUMNS, [tuple(row[f"b_{c}"] for c in _GIVEN_KEYS) for row in self.given],
                               _GIVEN_SETS, "pqls.id = s.id")
        elif self.given:
            connection.execute(_GIVE, self.given)
        if self.queued and bulk.stages(self.queued):
            bulk.update_staged(_PQLS, _QUEUED_COLUMNS, [(row["b_id"], row["b_due"], row["b_at"], row["b_team"])
                                                        for row in self.queued], _QUEUED_SETS, "pqls.id = s.id")
        elif self.queued:
            connection.execute(_QUEUE, self.queued)
        bulk.append(_ASSIGNMENTS, self.assignments)
        if self.moved and bulk.stages(self.moved):
            bulk.update_staged(_NOTICES, ("key", "channel"), [(row["b_key"], row["b_channel"]) for row in self.moved],
                               "channel = s.channel", "notices.key = s.key AND notices.state = 'pending' "
                               "AND notices.channel IS DISTINCT FROM s.channel")
        elif self.moved:
            connection.execute(_MOVE_ALERT, self.moved)
        bulk.append(_AUDIT, self.audits)
        if self.notices:
            module = postgresql if connection.dialect.name == "postgresql" else sqlite
            connection.execute(module.insert(_NOTICES).on_conflict_do_nothing(index_elements=["key"]),
                               outbox.alike(self.notices))
        for held in list(session.identity_map.values()):  # what the session holds of them is stale now
            if isinstance(held, Pql) and held.id in self.ids:
                session.expire(held)


class Router:
    """Routing for a set of teams; `for_team` is the same router within one team (its calendar, cap, manager and
    fast lane, its members as candidates, its leads in its queue). Without `teams`, one team of the whole roster
    made of the other arguments (bot/domain/teams.py, `single_team`)."""

    def __init__(self, calendar: BusinessCalendar, *, cap: int, manager: str | None,
                 fast_lane: FastLane | None = None, teams: Teams | None = None) -> None:
        self.calendar, self.cap, self.manager = calendar, cap, manager
        self.fast_lane = fast_lane or FastLane()
        self.teams = teams or single_team(calendar, cap=cap, manager=manager, fast_lane=self.fast_lane)
        self.team = self.teams.teams[self.teams.default]
        if teams is not None:
            self.calendar, self.cap, self.manager = self.team.calendar, self.team.daily_cap, self.team.escalate_to
            self.fast_lane = self.team.fast_lane
        self.members = self.team.member_ids

    # -- teams -------------------------------------------------------------------------------------

    def for_team(self, team: Team | str | None, choice: Choice | None = None) -> Router:
        """This router within `team` (a name; None: the default team), `choice` saying why it was chosen."""
        team = team if isinstance(team, Team) else self.teams.team(team)
        if team.name == self.team.name and choice is None:
            return self
        within = copy.copy(self)
        within.choice = choice
        within.team, within.members = team, team.member_ids
        within.calendar, within.cap, within.manager = team.calendar, team.daily_cap, team.escalate_to  # or a channel
        within.fast_lane = team.fast_lane
        return within

    def _is_mine(self, column: sa.ColumnElement) -> sa.ColumnElement:
        """Leads of this team: those recording its name, and for the default team those recording none (with one
        team, every lead)."""
        if self.teams.is_single:
            return sa.true()
        if self.team.name == self.teams.default:
            return sa.or_(column == self.team.name, column.is_(None))
        return column == self.team.name

    # -- availability ------------------------------------------------------------------------------

    def _in_hours(self, rep: Rep, now: datetime) -> bool:
        """A rep with a timezone of their own works 9-18 on weekdays there."""
        if not rep.timezone:
            return True
        own = BusinessCalendar(ZoneInfo(rep.timezone), self.calendar.opens, self.calendar.closes)
        return own.is_open(now)

    def _at_work(self, rep: Rep, now: datetime) -> bool:
        """In business hours: their own (9-18 on weekdays in their timezone) or the team's, holidays included.
        The fast lane asks this of every rep, since it does not wait for the team's opening."""
        if not rep.timezone:
            return self.calendar.is_open(now)
        own = BusinessCalendar(ZoneInfo(rep.timezone), self.calendar.opens, self.calendar.closes,
                               self.calendar.holidays)
        return own.is_open(now)

    def _roster_counts(self, now: datetime, tiers: list[str]) -> tuple[sa.ScalarSelect, sa.ScalarSelect,
                                                                   sa.ScalarSelect, list[sa.ScalarSelect]]:
        """What routing counts of each rep, as correlated subqueries on `Rep.id` (each on an index): leads given
        today against the cap, open leads, when they were last given one, and leads of each of `tiers` given this
        week (the team's week)."""
        local = now.astimezone(self.calendar.tz)
        week_start = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), self.calendar.tz)
        mine = Assignment.rep_id == Rep.id
        today = given_today(Rep.id, now=now, tz=self.calendar.tz, uncapped=self.fast_lane.tiers).scalar_subquery()
        open_leads = select(sa.func.count()).select_from(Pql).where(
            Pql.rep_id == Rep.id, still_open(Pql.state)).scalar_subquery()
        last_given = select(sa.func.max(Assignment.at)).where(mine).scalar_subquery()
        this_week = [select(sa.func.count()).select_from(Assignment).join(Pql, Assignment.pql_id == Pql.id).where(
            mine, Assignment.at >= week_start, Pql.tier == tier).scalar_subquery() for tier in tiers]
        return today, open_leads, last_given, this_week

    def candidates(self, session: Session, tier: str, now: datetime) -> tuple[list[Candidate], list[Rep]]:
        """(reps who can take a lead now, everyone on the roster).

        One statement for the whole roster, each count a correlated subquery on an index (assignments by
        rep and time, leads by rep and state): routing costs the same in a store holding years of leads as
        in a new one (bench/history.py). Counted one rep at a time, it was 4 scans of both tables per rep.
        """
        today, open_leads, last_given, [tier_this_week] = self._roster_counts(now, [tier])
        roster = sa.select(Rep, today, open_leads, tier_this_week, last_given).where(Rep.on_roster)
        if self.members is not None:
            roster = roster.where(Rep.id.in_(sorted(self.members)))
        rows = session.execute(roster.order_by(Rep.created_at, Rep.id)).all()
        fast = self.fast_lane.covers(tier)  # never capped; in business hours, each rep by their own

        def can_take(rep: Rep, today: int) -> bool:
            if rep.paused:
                return False
            return self._at_work(rep, now) if fast else self._in_hours(rep, now) and today < self.cap

        found = [Candidate(rep.id, order, today, active, tier_week, last)
                 for order, (rep, today, active, tier_week, last) in enumerate(rows) if can_take(rep, today)]
        return found, [rep for rep, *_ in rows]

    def _desks(self, session: Session, tiers: list[str], now: datetime) -> list[_Desk]:
        """The team's members on the roster with the counts routing reads (this week's for each of `tiers`): one read
        for a set of leads (`_route_set`), kept up to date in memory as they are given out. The same counts as
        `candidates`."""
        today, open_leads, last_given, this_week = self._roster_counts(now, tiers)
        roster = sa.select(Rep, today, open_leads, last_given, *this_week).where(Rep.on_roster)
        if self.members is not None:
            roster = roster.where(Rep.id.in_(sorted(self.members)))
        rows = session.execute(roster.order_by(Rep.created_at, Rep.id)).all()
        day_start = cap_day(now, self.calendar.tz)[0]
        return [_Desk(rep, today, active, dict(zip(tiers, week, strict=True)), last, self._in_hours(rep, now),
                      self._at_work(rep, now), day_start, self.fast_lane.tiers)
                for rep, today, active, last, *week in rows]

    # -- routing -----------------------------------------------------------------------------------

    def route(self, session: Session, pql: Pql, *, now: datetime) -> str | None:
        """Give a newly recorded lead to someone of the team the matrix chooses, or queue it there: `route_all` of
        this one lead. Returns the rep id or None."""
        return self.route_all(session, [pql.id], now=now).get(pql.id, pql.rep_id)

    choice: Choice | None = None  # why this router's team was chosen, said in the audit (`/pql why`)
    handed: str | None = None  # a hand-off's reason, said instead of the matrix's (`hand_to`)

    def hand_to(self, session: Session, pql: Pql, team: Team, *, why: str, now: datetime,
                previous: str | None = None) -> str | None:
        """Route a lead handed to `team` (bot/services/handoffs.py) within that team, its clocks starting `now`:
        its named-account owner when they are on the team and not the one handing it over, else as a new lead of
        the team (the fast lane's rules for a fast-lane lead; the queue when nobody can take it). The rep's id or
        None (queued)."""
        session.flush()
        [lead] = _leads(session.connection(), [pql.id])
        lead.sla_due_at = first_touch_due(now, lead.tier, team.calendar, team.first_touch)
        return self._route_set(session, [lead], [Choice(team, None)], now=now, handed=why, previous=previous)[lead.id]

    def route_all(self, session: Session, pql_ids: list[int], *, now: datetime,
                  verdicts: Mapping[int, ScoreResult] | None = None) -> dict[int, str | None]:
        """Route the leads one transaction recorded, in that order, as a set (`_route_set`): each to the team the
        routing matrix chooses from its verdict (read for the set at once; `verdicts`: those this transaction wrote
        behind its leads, by lead id, read from memory: see `_facts`), then within that team. Returns who got each
        lead routed now (None: queued); a lead already given, queued or closed is left alone."""
        if not pql_ids:
            return {}
        session.flush()  # what this transaction added already goes first
        connection = session.connection()
        todo = [lead for lead in _leads(connection, pql_ids)
                if not (lead.rep_id or lead.state in CLOSED or lead.state == PqlState.QUEUED)]
        if not todo:
            return {}
        # A backfill's set reads and writes tens of thousands of short-lived, acyclic objects (its leads, their
        # verdicts, its rows): the collector's scans of them found nothing, for a fifth of a second of 10,000 leads.
        with paused_gc():
            if self.teams.is_single:
                return self._route_set(session, todo, [Choice(self.team, None)] * len(todo), now=now)
            facts = _facts(connection, todo, verdicts)
            return self._route_set(session, todo, [self.teams.choose(facts[lead.id]) for lead in todo], now=now)

    def _route_set(self, session: Session, todo: list[_Lead], choices: list[Choice], *, now: datetime,
                   handed: str | None = None, previous: str | None = None) -> dict[int, str | None]:
        """Who gets each lead of `todo`, in turn, within the team of its `choices` (None: it waits in that team's
        queue): the one place routing decides (`_choose`). From one read per team of its members' counts, one of the
        queue and one of the leads' named-account owners, the counts then kept in memory as leads are given out (a
        backfill raises thousands, and counting again per lead grew with the queue), and written in bulk: the same
        choices, reasons, audit entries and messages as routing each alone in turn. `handed`: a hand-off's reason
        (`hand_to`), said instead of the matrix's; its named-account owner gets it only when on the team and not
        `previous`, the rep handing it over."""
        writes = _RoutingWrites(now)
        within = self._within(choices, handed)
        routed: dict[int, str | None] = {}
        if switches.is_on(session, switches.ROUTING):  # the rollback switch: recorded and alerted, not routed
            for lead, team in zip(todo, within, strict=True):
                team._due(lead)
                writes.queue(lead, team, say("routing_paused_why"), stuck=False)
                routed[lead.id] = None
            writes.flush(session)
            return routed
        connection = session.connection()
        # Held, then counted, as `_pick_held` holds the rep it picks: a claim racing this waits for it.
        connection.execute(sa.update(_REPS).where(_REPS.c.on_roster).values(paused=_REPS.c.paused))
        teams = {team.team.name: team for team in within}
        tiers = sorted({lead.tier for lead in todo})
        desks = {name: team._desks(session, tiers, now) for name, team in teams.items()}
        desks_of: dict[str, list[_Desk]] = {}
        for desk in (desk for team_desks in desks.values() for desk in team_desks):
            desks_of.setdefault(desk.rep.id, []).append(desk)
        roster = {desk.rep.id: desk.rep for desk in desks[self.team.name]} if self.teams.is_single else \
            {rep.id: rep for rep in session.exec(select(Rep).where(Rep.on_roster))}
        waiting = self._waiting(connection)
        queued = {name: team._queued(waiting) for name, team in teams.items()}
        is_open = {name: team.calendar.is_open(now) for name, team in teams.items()}
        people = _people(connection, {lead.user_id for lead in todo})
        given_before = _given_before(connection, [lead.id for lead in todo])
        for lead, team in zip(todo, within, strict=True):
            team._due(lead)
            if lead.held_since is not None:  # nobody's until the hold ends; it does not hold back the leads behind it
                writes.queue(lead, team, say("on_hold_why"), stuck=False)
                routed[lead.id] = None
                continue
            name = team.team.name
            who, owner = people.get(lead.user_id, (None, None))
            owner = team._taking_owner(roster.get(owner) if owner else None, handed=handed, previous=previous)
            rep_id, reason, why = team._choose(lead, desks[name], owner, queued[name], is_open[name])
            if rep_id is None:
                queued[name][lead.tier] = queued[name].get(lead.tier, 0) + 1
                fast = team.fast_lane.covers(lead.tier)
                reps = [desk.rep for desk in desks[name]]
                writes.queue(lead, team, why, stuck=fast or not reps or all(rep.paused for rep in reps), fast=fast)
                routed[lead.id] = None
                continue
            for desk in desks_of.get(rep_id, ()):
                desk.took(lead, given_before.get((lead.id, rep_id)), now)
            writes.give(lead, team, rep_id, reason, why, who or lead.user_id)
            routed[lead.id] = rep_id
        writes.flush(session)
        return routed

    def _within(self, choices: list[Choice], handed: str | None) -> list[Router]:
        """This router within each choice's team, one per choice (its team and row)."""
        made: dict[tuple[str, int | None], Router] = {}
        for choice in choices:
            if (choice.team.name, choice.row) not in made:
                team = made[choice.team.name, choice.row] = self.for_team(choice.team, choice)
                team.handed = handed
        return [made[choice.team.name, choice.row] for choice in choices]

    def _due(self, lead: _Lead) -> None:
        """The lead's first-touch deadline on this team's clock, unless it has one."""
        if lead.sla_due_at is None:
            lead.sla_due_at = first_touch_due(lead.created_at, lead.tier, self.calendar, self.team.first_touch)

    def _waiting(self, connection: sa.Connection) -> list[tuple[str | None, str, int]]:
        """The queue counted by team and tier, leads on hold left out (they hold back nobody): (team, tier, leads).
        With one team, by tier alone (team None). From the indexes without reading a row of the rest of the queue
        (its (state, team, tier) index, less the held leads' partial index): a queue of 10,000 read row by row cost
        20 ms a routing."""
        c = _PQLS.c
        queued, single = c.state == PqlState.QUEUED, self.teams.is_single
        if single:
            counts = sa.select(sa.null(), c.tier, sa.func.count()).where(queued).group_by(c.tier)
        else:
            counts = sa.select(c.team, c.tier, sa.func.count()).where(queued).group_by(c.team, c.tier)
        waiting = Counter({(team, tier): count for team, tier, count in connection.execute(counts)})
        held = sa.select(c.team, c.tier, sa.func.count()).where(queued, c.held_since.is_not(None))
        for team, tier, count in connection.execute(held.group_by(c.team, c.tier)):  # by team: on the held index
            waiting[None if single else team, tier] -= count
        return [(team, tier, count) for (team, tier), count in waiting.items() if count > 0]

    def _queued(self, waiting: list[tuple[str | None, str, int]]) -> dict[str, int]:
        """This team's queue by tier, of the whole queue's (team, tier, count) rows: as `_is_mine` counts."""
        default = self.team.name == self.teams.default
        mine = {}
        for team, tier, count in waiting:
            if self.teams.is_single or team == self.team.name or (team is None and default):
                mine[tier] = mine.get(tier, 0) + count
        return mine

    def _taking_owner(self, owner: Rep | None, *, handed: str | None, previous: str | None) -> str | None:
        """The named-account owner who gets the lead, cap or not: on the roster and not paused; for a hand-off, also
        on this team and not the rep handing it over."""
        if owner is None or owner.paused:
            return None
        if handed and (owner.id == previous or (self.members is not None and owner.id not in self.members)):
            return None
        return owner.id

    def _choose(self, lead: _Lead, roster: list[_Desk], owner: str | None, queued: Mapping[str, int],
                is_open: bool) -> tuple[str | None, str, str]:
        """Who gets the lead within this team, on the counts in memory: (their rep id, the reason, why), or (None, "",
        why it waits). The named-account owner (`owner`) first; a fast-lane lead to whoever is at work, else the
        on-call rep; any other lead round-robin within the cap, unless leads of its tier or a higher one wait in
        the queue (it must not overtake them) or business is closed."""
        if owner:
            return owner, "override", "named account owner"
        if self.fast_lane.covers(lead.tier):
            chosen = pick([desk.candidate(lead.tier, order) for order, desk in enumerate(roster)
                           if not desk.rep.paused and desk.at_work])
            if chosen:
                why = (f"fast lane (never capped): in business hours, fewest active leads ({chosen.active}), "
                       f"{chosen.tier_this_week} fast lane this week")
                return chosen.rep_id, "round_robin", why
            on_call = self._on_call([desk.rep for desk in roster])
            if on_call:
                return on_call, "on_call", "fast lane (never capped): out of hours, the on-call rep"
            return None, "", self._waits(lead, [desk.rep for desk in roster], fast=True)
        rank = TIER_RANK[lead.tier]
        ahead = sum(count for tier, count in queued.items() if TIER_RANK.get(tier, -1) >= rank)
        chosen = None
        if not ahead and is_open:
            chosen = pick([desk.candidate(lead.tier, order) for order, desk in enumerate(roster)
                           if not desk.rep.paused and desk.in_hours and desk.today < self.cap])
        if chosen:
            why = (f"round-robin: fewest active leads ({chosen.active}), {chosen.tier_this_week} {lead.tier} "
                   f"this week, {chosen.new_today} of {self.cap} new today")
            return chosen.rep_id, "round_robin", why
        return None, "", self._waits(lead, [desk.rep for desk in roster], ahead=ahead, closed=not is_open)


    def _fast(self, session: Session, pql: Pql, *, now: datetime,
              queued: bool = False) -> tuple[str | None, list[Rep]]:
        """A fast-lane lead to whoever can take it now, cap or not: a rep in business hours (the round-robin's
        pick), else the on-call rep. (Who got it, or None when nobody can; the roster.)"""
        candidates, roster = self.candidates(session, pql.tier, now)
        chosen = pick(candidates)
        if chosen:
            why = (f"fast lane (never capped){', from the queue' if queued else ''}: in business hours, fewest "
                   f"active leads ({chosen.active}), {chosen.tier_this_week} fast lane this week")
            return self._give(session, pql, chosen.rep_id, "round_robin", why, now=now), roster
        on_call = self._on_call(roster)
        if on_call:
            why = f"fast lane (never capped){', from the queue' if queued else ''}: out of hours, the on-call rep"
            return self._give(session, pql, on_call, "on_call", why, now=now), roster
        return None, roster

    def _on_call(self, roster: list[Rep]) -> str | None:
        """The on-call rep, when one is set, on the roster and not paused."""
        on_call = self.fast_lane.on_call
        return on_call if any(rep.id == on_call and not rep.paused for rep in roster) else None

    def _pick_held(self, session: Session, candidates: list[Candidate], now: datetime) -> Candidate | None:
        """The pick, with its rep held (leads.hold_rep) and counted again under the hold: a claim that
        gave them a lead since they were counted moves on to the next pick."""
        while (chosen := pick(candidates)) is not None:
            hold_rep(session, chosen.rep_id)
            today = new_today(session, chosen.rep_id, now=now, tz=self.calendar.tz)
            if today < self.cap:
                chosen.new_today = today
                return chosen
            candidates = [c for c in candidates if c.rep_id != chosen.rep_id]
        return None

    def _owner(self, session: Session, pql: Pql) -> str | None:
        user = session.get(TrialUser, pql.user_id)
        account = session.get(Account, user.domain) if user and user.domain else None
        if not account or not account.owner_rep_id:
            return None
        rep = session.get(Rep, account.owner_rep_id)
        return rep.id if rep and rep.on_roster and not rep.paused else None

    def _give(self, session: Session, pql: Pql, rep_id: str, reason: str, why: str, *, now: datetime) -> str:
        """Give a lead of the queue (`drain`) to `rep_id`, written as a set's leads are (`_RoutingWrites`). A lead
        handed to this team that waited in its queue brings the hand-off's DM, with its history, not the usual one."""
        session.flush()
        [lead] = _leads(session.connection(), [pql.id])
        handoff_dm = handoffs.queued_dm(session, pql)
        user = session.get(TrialUser, pql.user_id)
        writes = _RoutingWrites(now)
        writes.give(lead, self, rep_id, reason, why, (user.name or user.email) if user else pql.user_id,
                    dm=handoff_dm is None)
        writes.flush(session)
        if handoff_dm:
            outbox.dm(session, rep_id, f"handoff-dm:{pql.id}:{pql.version}", handoff_dm, pql=pql, now=now)
        return rep_id

    def _team_reason(self) -> str:
        """Which team and why, as `/pql why` and the alert say it: "team SDR pool (routing matrix row 6):
        active-buyer compound, SMB ...", "team SDR pool (the default team)"; for a lead its team's queue gives out,
        the team alone (it was chosen when the lead joined the queue, which its `pql_queued` entry says)."""
        if self.handed:
            return f"team {self.team.title}: {self.handed}"
        if (choice := self.choice) is None:
            return f"team {self.team.title}"
        row = self.teams.routes[choice.row - 1] if choice.row else None
        return f"{choice.why}: {row.why or row.describe()}" if row else choice.why

    def _team_why(self, why: str) -> str:
        """The rep's reason, after the team's when there is more than one team."""
        return why if self.teams.is_single and not self.handed else f"{self._team_reason()}; {why}"

    def _team_detail(self) -> dict:
        """The team in the audit entry (none with one team and no matrix: nothing changes for a pilot)."""
        if self.teams.is_single and not self.handed:
            return {}
        return {"team": self.team.name, "row": self.choice.row if self.choice else None,
                "team_why": self._team_reason()}

    def _waits(self, pql: Pql | _Lead, roster: list[Rep], *, ahead: int = 0, closed: bool = False,
               fast: bool = False) -> str:
        """Why a lead waits in the queue, as its audit entry (and the manager, when stuck) reads it."""
        if not roster:
            return "nobody is on the roster"
        if all(rep.paused for rep in roster):
            return "every rep is paused"
        if fast:
            return self._nobody_for_fast_lane(roster)
        if closed:
            return "outside business hours: it goes out when business opens, within that day's caps"
        if ahead:
            return f"{ahead} earlier lead{'s wait' if ahead > 1 else ' waits'} in the queue at its priority or above"
        return f"every available rep is at today's cap of {self.cap} (or outside their hours)"

    def _nobody_for_fast_lane(self, roster: list[Rep]) -> str:
        """Why nobody can take a fast-lane lead now, as the manager reads it."""
        on_call = self.fast_lane.on_call
        if not roster:
            return "nobody is on the roster"
        if all(rep.paused for rep in roster):
            return "every rep is paused"
        if on_call is None:
            return "fast lane: nobody is in business hours and no on-call rep is set (PQL_ON_CALL)"
        if not any(rep.id == on_call for rep in roster):
            return f"fast lane: nobody is in business hours and the on-call rep <@{on_call}> is not on the roster"
        return f"fast lane: nobody is in business hours and the on-call rep <@{on_call}> is paused"

    def drain(self, session: Session, *, now: datetime) -> list[tuple[int, str]]:
        """Share each team's queue out among its members (`_drain`)."""
        if self.teams.is_single:
            return self._drain(session, now=now)
        return [given for name in self.teams.teams for given in self.for_team(name)._drain(session, now=now)]

    def _drain(self, session: Session, *, now: datetime) -> list[tuple[int, str]]:
        """Share the queue out: fast-lane leads whenever someone can take them (in business hours or on call),
        never capped; the rest while business is open, high, medium, then oldest. A lead on hold stays in its place
        until the hold ends."""
        if switches.is_on(session, switches.ROUTING):
            return []  # the rollback switch: the queue waits for `/pql resume-all`
        is_open = self.calendar.is_open(now)
        waiting = select(Pql).where(Pql.state == PqlState.QUEUED, Pql.held_since.is_(None), self._is_mine(Pql.team))
        if not is_open:
            waiting = waiting.where(Pql.tier.in_(sorted(self.fast_lane.tiers)))
        queued = sorted(session.exec(waiting), key=lambda p: (-TIER_RANK[p.tier], p.qualified_at, p.id))
        given = []
        for pql in queued:
            if self.fast_lane.covers(pql.tier):
                owner = self._owner(session, pql)
                if owner:
                    given.append((pql.id, self._give(session, pql, owner, "override", "named account owner", now=now)))
                    continue
                rep_id, roster = self._fast(session, pql, now=now, queued=True)
                if rep_id:
                    given.append((pql.id, rep_id))
                elif self.manager:  # one upgraded to the fast lane while it waited: the manager hears now, once
                    text = say("fast_lane_stuck", ref=pql.ref, why=self._nobody_for_fast_lane(roster))
                    outbox.dm(session, self.manager, f"unroutable:{pql.id}", text, pql=pql, now=now)
                continue
            owner = self._owner(session, pql)
            if owner:
                given.append((pql.id, self._give(session, pql, owner, "override", "named account owner", now=now)))
                continue
            chosen = self._pick_held(session, self.candidates(session, pql.tier, now)[0], now)
            if chosen is None:
                break  # nobody has room: the rest wait, in order
            why = f"from the queue, in priority order; {chosen.new_today} of {self.cap} new today"
            given.append((pql.id, self._give(session, pql, chosen.rep_id, "queue", why, now=now)))
        return given

