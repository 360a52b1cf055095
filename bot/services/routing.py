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
Every decision is audited with its reason, which is what `/pql why` reads back.
"""

from __future__ import annotations

import copy
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import CLOSED, TIER_RANK, PqlState
from bot.domain.routing import Candidate, FastLane, pick
from bot.domain.sla import first_touch_due
from bot.domain.teams import Choice, LeadFacts, Team, Teams, single_team
from bot.services import audit, lead_view, outbox, switches, tracking
from bot.services.leads import hold_rep, new_today
from bot.store.models import Account, Assignment, Notice, Pql, Rep, TrialUser
from bot.store.queries import given_today, still_open
from templates import esc, say

_PQLS = Pql.__table__
_NOTICES = Notice.__table__


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

    def choose_team(self, session: Session, pql: Pql) -> Choice:
        """The team the routing matrix gives the lead (with one team and no matrix, that team, unread)."""
        if self.teams.is_single:
            return Choice(self.teams.teams[self.teams.default], None)
        return self.teams.choose(lead_facts(session, pql))

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

    def candidates(self, session: Session, tier: str, now: datetime) -> tuple[list[Candidate], list[Rep]]:
        """(reps who can take a lead now, everyone on the roster).

        One statement for the whole roster, each count a correlated subquery on an index (assignments by
        rep and time, leads by rep and state): routing costs the same in a store holding years of leads as
        in a new one (bench/history.py). Counted one rep at a time, it was 4 scans of both tables per rep.
        """
        local = now.astimezone(self.calendar.tz)
        week_start = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), self.calendar.tz)
        mine = Assignment.rep_id == Rep.id
        today = given_today(Rep.id, now=now, tz=self.calendar.tz, uncapped=self.fast_lane.tiers).scalar_subquery()
        open_leads = select(sa.func.count()).select_from(Pql).where(
            Pql.rep_id == Rep.id, still_open(Pql.state)).scalar_subquery()
        tier_this_week = select(sa.func.count()).select_from(Assignment).join(Pql, Assignment.pql_id == Pql.id).where(
            mine, Assignment.at >= week_start, Pql.tier == tier).scalar_subquery()
        last_given = select(sa.func.max(Assignment.at)).where(mine).scalar_subquery()
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

    # -- routing -----------------------------------------------------------------------------------

    def route(self, session: Session, pql: Pql, *, now: datetime) -> str | None:
        """Give a newly recorded lead to someone of the team the matrix chooses, or queue it there; returns the rep
        id or None."""
        if pql.rep_id or pql.state in CLOSED or pql.state == PqlState.QUEUED:
            return pql.rep_id
        choice = self.choose_team(session, pql)
        return self.for_team(choice.team, choice)._route(session, pql, now=now)

    choice: Choice | None = None  # why this router's team was chosen, said in the audit (`/pql why`)
    handed: str | None = None  # a hand-off's reason, said instead of the matrix's (`hand_to`)

    def hand_to(self, session: Session, pql: Pql, team: Team, *, why: str, now: datetime,
                previous: str | None = None) -> str | None:
        """Route a lead handed to `team` (bot/services/handoffs.py) within that team, its clocks starting `now`:
        its named-account owner when they are on the team and not the one handing it over, else as a new lead of
        the team (the fast lane's rules for a fast-lane lead; the queue when nobody can take it). The rep's id or
        None (queued)."""
        within = self.for_team(team, Choice(team, None))
        within.handed = why
        pql.sla_due_at = first_touch_due(now, pql.tier, team.calendar, team.first_touch)
        owner = within._owner(session, pql)
        if owner and owner != previous and (team.member_ids is None or owner in team.member_ids):
            return within._give(session, pql, owner, "override", "named account owner", now=now)
        return within._route(session, pql, now=now, skip_owner=True)

    def _route(self, session: Session, pql: Pql, *, now: datetime, skip_owner: bool = False) -> str | None:
        if pql.sla_due_at is None:
            pql.sla_due_at = first_touch_due(pql.created_at, pql.tier, self.calendar, self.team.first_touch)
        if switches.is_on(session, switches.ROUTING):  # the rollback switch: recorded and alerted, not routed
            self._queue(session, pql, [], now=now, why=say("routing_paused_why"))
            return None
        owner = None if skip_owner else self._owner(session, pql)
        if owner:
            return self._give(session, pql, owner, "override", "named account owner", now=now)
        if self.fast_lane.covers(pql.tier):
            chosen_id, roster = self._fast(session, pql, now=now)
            if chosen_id is None:
                self._queue(session, pql, roster, now=now, fast=True)
            return chosen_id
        candidates, roster = self.candidates(session, pql.tier, now)
        # Leads already waiting at this priority or above go first: a newcomer must not overtake them
        # (say, just after midnight, or at the weekend, while yesterday's overflow waits for the morning).
        ahead = self._waiting_ahead(session, pql)
        closed = not self.calendar.is_open(now)  # nights and weekends count against the next day's cap
        chosen = None if ahead or closed else self._pick_held(session, candidates, now)
        if chosen:
            why = (f"round-robin: fewest active leads ({chosen.active}), {chosen.tier_this_week} {pql.tier} "
                   f"this week, {chosen.new_today} of {self.cap} new today")
            return self._give(session, pql, chosen.rep_id, "round_robin", why, now=now)
        self._queue(session, pql, roster, now=now, ahead=ahead, closed=closed)
        return None

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

    def _waiting_ahead(self, session: Session, pql: Pql) -> int:
        """Queued leads of this lead's tier or a higher one (all older than a lead being routed now)."""
        tiers = [tier for tier, rank in TIER_RANK.items() if rank >= TIER_RANK[pql.tier]]
        return session.exec(select(sa.func.count()).select_from(Pql).where(
            Pql.state == PqlState.QUEUED, Pql.tier.in_(tiers), Pql.id != pql.id, self._is_mine(Pql.team))).one()

    def _owner(self, session: Session, pql: Pql) -> str | None:
        user = session.get(TrialUser, pql.user_id)
        account = session.get(Account, user.domain) if user and user.domain else None
        if not account or not account.owner_rep_id:
            return None
        rep = session.get(Rep, account.owner_rep_id)
        return rep.id if rep and rep.on_roster and not rep.paused else None

    def _give(self, session: Session, pql: Pql, rep_id: str, reason: str, why: str, *, now: datetime) -> str:
        state = PqlState.ASSIGNED if pql.state in (PqlState.QUALIFIED, PqlState.ALERTED, PqlState.QUEUED) \
            else pql.state
        session.connection().execute(
            sa.update(_PQLS).where(_PQLS.c.id == pql.id).values(
                rep_id=rep_id, assigned_at=now, state=state, sla_due_at=pql.sla_due_at, updated_at=now,
                team=self.team.name, version=_PQLS.c.version + 1))
        session.refresh(pql)
        session.add(Assignment(pql_id=pql.id, rep_id=rep_id, reason=reason, at=now))
        self._alert_to_team(session, pql)
        audit.record(session, "pql_assigned", at=now, pql_id=pql.id, user_id=pql.user_id, rep=rep_id,
                     reason=reason, why=self._team_why(why), **self._team_detail())
        if self.handed:  # the hand-off's own DM tells them, with the lead's history
            return rep_id
        user = session.get(TrialUser, pql.user_id)
        who = (user.name or user.email) if user else pql.user_id
        tier = pql.tier.replace("_", " ")
        outbox.dm(session, rep_id, f"assigned:{pql.id}:{rep_id}:{now.isoformat()}",
                  say("assigned_dm", ref=pql.ref, who=esc(who), tier=tier), pql=pql, now=now)
        tracking.crm(session, "owner", pql, key=f"owner:{pql.id}:{pql.version}", now=now)
        return rep_id

    def _queue(self, session: Session, pql: Pql, roster: list[Rep], *, now: datetime, ahead: int = 0,
               closed: bool = False, fast: bool = False, why: str | None = None) -> None:
        # Caps and hours clear by themselves; an empty or fully paused roster needs the manager now, and so does
        # a fast-lane lead nobody can take (seed 000: "the only acceptable response is speed"). A lead held by the
        # manager's own rollback switch (`why` given) tells nobody: they paused it.
        stuck = why is None and (fast or not roster or all(rep.paused for rep in roster))
        if why is not None:
            pass
        elif not roster:
            why = "nobody is on the roster"
        elif all(rep.paused for rep in roster):
            why = "every rep is paused"
        elif fast:
            why = self._nobody_for_fast_lane(roster)
        elif closed:
            why = "outside business hours: it goes out when business opens, within that day's caps"
        elif ahead:
            why = f"{ahead} earlier lead{'s wait' if ahead > 1 else ' waits'} in the queue at its priority or above"
        else:
            why = f"every available rep is at today's cap of {self.cap} (or outside their hours)"
        session.connection().execute(
            sa.update(_PQLS).where(_PQLS.c.id == pql.id).values(
                state=PqlState.QUEUED, sla_due_at=pql.sla_due_at, updated_at=now, team=self.team.name,
                version=_PQLS.c.version + 1))
        session.refresh(pql)
        self._alert_to_team(session, pql)
        audit.record(session, "pql_queued", at=now, pql_id=pql.id, user_id=pql.user_id, why=self._team_why(why),
                     **self._team_detail())
        if self.manager and stuck:
            text = say("fast_lane_stuck" if fast else "nobody_to_route", ref=pql.ref, why=why)
            outbox.dm(session, self.manager, f"unroutable:{pql.id}", text, pql=pql, now=now)

    def _team_reason(self) -> str:
        """Which team and why, as `/pql why` and the alert say it: "team SDR pool (routing matrix row 6):
        active-buyer compound, SMB ...", "team SDR pool (the default team)"."""
        if self.handed:
            return f"team {self.team.title}: {self.handed}"
        choice = self.choice or Choice(self.team, None)
        row = self.teams.routes[choice.row - 1] if choice.row else None
        return f"{choice.why}: {row.why or row.describe()}" if row else choice.why

    def _team_why(self, why: str) -> str:
        """The rep's reason, after the team's when there is more than one team."""
        return why if self.teams.is_single and not self.handed else f"{self._team_reason()}; {why}"

    def _alert_to_team(self, session: Session, pql: Pql) -> None:
        """With teams, the lead's alert goes to its team's channel (`alert_channel`), if it has not gone yet."""
        if self.teams.is_single:
            return
        session.connection().execute(
            sa.update(_NOTICES).where(_NOTICES.c.key == f"alert:{pql.id}", _NOTICES.c.state == "pending",
                                      _NOTICES.c.channel.is_distinct_from(self.team.alert_channel))
            .values(channel=self.team.alert_channel))

    def _team_detail(self) -> dict:
        """The team in the audit entry (none with one team and no matrix: nothing changes for a pilot)."""
        if self.teams.is_single and not self.handed:
            return {}
        return {"team": self.team.name, "row": self.choice.row if self.choice else None,
                "team_why": self._team_reason()}

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
        never capped; the rest while business is open, high, medium, then oldest."""
        if switches.is_on(session, switches.ROUTING):
            return []  # the rollback switch: the queue waits for `/pql resume-all`
        is_open = self.calendar.is_open(now)
        waiting = select(Pql).where(Pql.state == PqlState.QUEUED, self._is_mine(Pql.team))
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


def lead_facts(session: Session, pql: Pql) -> LeadFacts:
    """What the routing matrix reads of a lead: its verdict's (the account's for an account lead) family, band, ACV
    estimate and fired triggers."""
    verdict = lead_view.lead_verdict(session, pql, session.get(TrialUser, pql.user_id))
    fired = tuple(t["name"] for t in verdict.get("triggers") or () if isinstance(t, dict) and t.get("name"))
    return LeadFacts(tier=pql.tier, family=verdict.get("family"), band=verdict.get("band"),
                     acv=verdict.get("acv_potential"), level=pql.level or "user", triggers=fired)
