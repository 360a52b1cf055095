"""App Home: a rep's open leads and today's count against the cap; the manager's queue, most urgent first, and the
team, or each team with its own cap and day (bot/domain/teams.py); a team's manager, the same for their own
teams."""

from __future__ import annotations

import sqlalchemy as sa
from slack_bolt import App
from sqlmodel import Session, select

from bot.domain.business_time import BusinessCalendar
from bot.domain.follow_ups import next_touch_due
from bot.services import leads, switches
from bot.slack import blocks
from bot.slack.errors import guarded
from bot.slack.runtime import Runtime
from bot.store.models import Pql, Rep, Touch, TrialUser
from bot.store.queries import still_open


def register(app: App) -> None:
    app.event("app_home_opened")(guarded(home_opened))


def home_opened(event: dict, runtime: Runtime) -> None:
    if event.get("tab", "home") == "home":
        publish_home(runtime, event["user"])


def _home_lead(session: Session, pql: Pql, calendar: BusinessCalendar, team: str | None = None) -> blocks.HomeLead:
    user = session.get(TrialUser, pql.user_id)
    who = (user.name or "") if user else ""
    touches = list(session.exec(select(Touch).where(Touch.pql_id == pql.id).order_by(Touch.number)))
    return blocks.HomeLead(
        ref=pql.ref, pql_id=pql.id, who=who or (user.email if user else pql.user_id) or pql.user_id,
        company=(user.company_name or user.domain or "") if user else "", tier=pql.tier, state=pql.state,
        sla_due_at=pql.sla_due_at, touches=len(touches), next_touch_due_at=next_touch_due(touches, calendar),
        rep_id=pql.rep_id, team=team,
    )


def home_view(runtime: Runtime, user_id: str) -> dict:
    settings, now = runtime.settings, runtime.now()
    with runtime.session() as session:
        who = runtime.actor(session, user_id)
        rep = session.get(Rep, user_id)
        open_leads = select(Pql).where(still_open(Pql.state)).order_by(Pql.qualified_at)
        mine = session.exec(open_leads.where(sa.or_(Pql.claimed_by == user_id,
                                                    sa.and_(Pql.claimed_by.is_(None), Pql.rep_id == user_id))))
        cap, day_tz = runtime.cap_for_rep(user_id)
        queue, reps, teams = [], [], None
        known = settings.teams
        managed = [t for t in known.teams.values() if who.is_manager or t.manager == user_id]  # a team's: its own
        if managed:
            names = {t.name for t in managed}
            waiting = [p for p in session.exec(open_leads.where(Pql.claimed_by.is_(None)))
                       if who.is_manager or known.team(p.team).name in names]
            queue = [_home_lead(session, p, settings.calendar, None if known.is_single else known.team(p.team).title)
                     for p in waiting]
            roster = [m for m in session.exec(select(Rep).where(Rep.on_roster).order_by(Rep.id))
                      if who.is_manager or any(t.member_ids is None or m.id in t.member_ids for t in managed)]
            reps = [_home_rep(session, member, now=now, tz=settings.tz) for member in roster]
            if not known.is_single:
                teams = []
                for team in managed:
                    its = [p for p in waiting if known.team(p.team).name == team.name]  # not `mine`: the rep's own
                    members = [m for m in roster if team.member_ids is None or m.id in team.member_ids]
                    teams.append(blocks.HomeTeam(
                        team.title, team.daily_cap, [_home_rep(session, m, now=now, tz=team.calendar.tz)
                                                     for m in members],
                        waiting=sum(1 for p in its if p.rep_id is None),
                        unclaimed=sum(1 for p in its if p.rep_id is not None)))
        return blocks.home(
            rep_id=user_id if who.on_roster else None, is_manager=bool(managed),
            paused=bool(rep and rep.paused), leads=[_home_lead(session, p, settings.calendar) for p in mine],
            today_count=leads.new_today(session, user_id, now=now, tz=day_tz), cap=cap,
            fast_lane_today=leads.fast_lane_today(session, user_id, now=now, tz=day_tz),
            queue=queue, paused_reps=[r.rep_id for r in reps if r.paused], reps=reps, now=now, tz=settings.tz,
            teams=teams,
            routing_paused_by=(switch.by if (switch := switches.get(session, switches.ROUTING)) else None),
        )


def _home_rep(session: Session, member: Rep, *, now, tz) -> blocks.HomeRep:
    """A rep's line in the manager's view: open leads, and today's count on the day of `tz` (their team's)."""
    active = session.exec(select(sa.func.count()).select_from(Pql).where(
        still_open(Pql.state), sa.or_(Pql.claimed_by == member.id, Pql.rep_id == member.id))).one()
    return blocks.HomeRep(member.id, member.name, member.paused, active,
                          leads.new_today(session, member.id, now=now, tz=tz),
                          leads.fast_lane_today(session, member.id, now=now, tz=tz))


def publish_home(runtime: Runtime, user_id: str) -> None:
    runtime.gateway.publish_home(user_id, home_view(runtime, user_id))
