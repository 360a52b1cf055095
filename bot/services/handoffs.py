"""Hand-offs: a rep hands a lead to another team (seed 004: SDR -> AE once a meeting is set on an account worth a
full AE motion; SDR -> CS for "Routed to CS"), with its history.

- Only the lead's owner (who claimed it, else who it is assigned to), the sales manager or the lead's team's
  manager may hand it off; an open lead only.
- The receiving team must take hand-offs (`[teams.<name>.handoff]` in the teams file), and the lead must meet what
  it asks: for `when = "meeting_set"`, a touch logged since the lead came to this team (the one that set the
  meeting); `min_acv`, an ACV estimate at least that (seed 004's $30,000 for the AE motion).
- The lead keeps its record, its touches and its history; it leaves its rep, joins the team and is routed within
  it as that team routes (`Router.hand_to`), and the receiving team's SLA clock starts at the hand-off.
- Audited (`pql_handed_off`: who, from which team to which, why, to whom), said in the alert's thread, and the
  receiving rep gets seed 004's handoff package by DM. A refusal says why.
- A hand-off nobody in the receiving team can take now waits in its queue: its entry keeps the DM (`dm`), and the
  rep the queue first gives the lead to gets it instead of the ordinary "assigned" DM (`queued_dm`, asked by
  routing as it gives a lead).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.lifecycle import CLOSED, PqlState
from bot.domain.teams import Team, Teams
from bot.services import audit, lead_view, outbox
from bot.services.leads import Actor, Refused
from bot.store.models import Assignment, AuditEntry, Pql, Touch, TrialUser
from templates import esc, say


class Router(Protocol):
    """What a hand-off asks of routing (bot/services/routing.py's `Router`, which imports this module to give a
    queued hand-off with its DM): the teams, and routing a lead within one."""

    teams: Teams

    def hand_to(self, session: Session, pql: Pql, team: Team, *, why: str, now: datetime,
                previous: str | None = None) -> str | None: ...


_PQLS = Pql.__table__
#: What the handing rep says happened, by the receiving team's `handoff.when`.
BECAUSE = {"meeting_set": "meeting set", "routed_to_cs": "routed to CS"}


def hand_off(session: Session, pql: Pql, who: Actor, to_team: str, *, router: Router, now: datetime, tz: tzinfo,
             product_name: str, note: str | None = None) -> str | None:
    """Hand `pql` to the team named `to_team`; returns the receiving rep's id, or None when it waits in that team's
    queue. Raises `Refused` with the reason otherwise."""
    teams = router.teams
    current = teams.team(pql.team)
    owner = pql.claimed_by or pql.rep_id
    if not (who.is_manager or (owner and who.user_id == owner) or who.user_id == current.manager):
        raise Refused(say("handoff_not_yours", ref=pql.ref, owner=owner))
    if pql.state in CLOSED:
        raise Refused(say("lead_closed", ref=pql.ref, state=pql.state.replace("_", " ")))
    target = teams.teams.get(to_team.strip().lower().removeprefix("#"))
    if target is None:
        raise Refused(say("handoff_unknown_team", team=esc(to_team), teams=", ".join(teams.teams)))
    if target.name == current.name:
        raise Refused(say("handoff_same_team", ref=pql.ref, team=esc(target.title)))
    if target.handoff is None:
        raise Refused(say("handoff_not_taken", team=esc(target.title)))
    _meets(session, pql, target)
    because = BECAUSE[target.handoff.when]
    moved = session.connection().execute(
        sa.update(_PQLS).where(_PQLS.c.id == pql.id, _PQLS.c.version == pql.version, _PQLS.c.state.notin_(CLOSED))
        .values(rep_id=None, assigned_at=None, claimed_by=None, claimed_at=None, state=PqlState.ALERTED,
                team=target.name, handed_off_at=now, sla_due_at=None, updated_at=now, version=_PQLS.c.version + 1))
    session.refresh(pql)
    if moved.rowcount != 1:  # someone acted on it meanwhile: look again
        raise Refused(say("handoff_raced", ref=pql.ref))
    why = f"handed off from {current.title}: {because}"  # who did it is the entry's actor
    rep_id = router.hand_to(session, pql, target, why=why, now=now, previous=owner)
    package = lead_view.build(session, pql.id, tz=tz, product_name=product_name, at=now).handoff
    dm = say("handoff_dm", ref=pql.ref, by=who.user_id, team=esc(current.title), because=because,
             who=esc(_who(session, pql)), note=esc((note or "").strip()) or None, package=_package(package))
    audit.record(session, "pql_handed_off", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id,
                 from_team=current.name, team=target.name, because=target.handoff.when, rep=rep_id,
                 note=(note or "").strip() or None, team_why=f"team {target.title}: {why}",
                 why=f"team {target.title}: {why}", dm=None if rep_id else dm)  # queued: for whoever gets it
    text = say("handed_off", ref=pql.ref, by=who.user_id, team=esc(target.title), because=because, rep=rep_id)
    outbox.reply(session, pql, f"handoff:{pql.id}:{pql.version}", text, now=now)
    if rep_id:
        outbox.dm(session, rep_id, f"handoff-dm:{pql.id}:{pql.version}", dm, pql=pql, now=now)
    return rep_id


def queued_dm(session: Session, pql: Pql) -> str | None:
    """The hand-off's DM (its history, kept with the hand-off's entry) owed to whoever the queue gives the lead to,
    when it was handed to a team, waited in its queue and has not been given to anyone since; else None (the
    ordinary DM). Asked before routing records the assignment."""
    if pql.handed_off_at is None:
        return None
    given = session.exec(select(sa.func.count()).select_from(Assignment).where(
        Assignment.pql_id == pql.id, Assignment.at >= pql.handed_off_at)).one()
    if given:
        return None
    entry = session.exec(select(AuditEntry).where(AuditEntry.pql_id == pql.id, AuditEntry.action == "pql_handed_off")
                         .order_by(AuditEntry.id.desc())).first()
    return (entry.detail or {}).get("dm") if entry is not None else None


def _meets(session: Session, pql: Pql, target: Team) -> None:
    """What the receiving team asks of a lead handed to it, or `Refused` saying what is missing."""
    rule = target.handoff
    if rule.when == "meeting_set":
        since = [Touch.at >= pql.handed_off_at] if pql.handed_off_at else []
        if not session.exec(select(sa.exists().where(Touch.pql_id == pql.id, *since))).one():
            raise Refused(say("handoff_needs_touch", ref=pql.ref, team=esc(target.title)))
    if rule.min_acv is not None:
        acv = lead_view.lead_verdict(session, pql, session.get(TrialUser, pql.user_id)).get("acv_potential")
        if acv is None or acv < rule.min_acv:
            raise Refused(say("handoff_acv", ref=pql.ref, team=esc(target.title), acv=acv, min_acv=rule.min_acv))


def _who(session: Session, pql: Pql) -> str:
    user = session.get(TrialUser, pql.user_id)
    return ((user.name or user.email) if user else None) or pql.user_id


def _package(package: lead_view.HandoffPackage | None) -> dict[str, list[str] | str]:
    """Seed 004's handoff package as the DM's template reads it (escaped for Slack)."""
    if package is None:
        return {}
    return {"usage": [esc(line) for line in package.usage_summary],
            "profile": [esc(line) for line in package.company_profile],
            "contacts": [esc(line) for line in package.contact_map],
            "opening": esc(package.recommended_opening),
            "blockers": [esc(line) for line in package.upgrade_blockers],
            "triggers": [esc(line) for line in package.triggers]}
