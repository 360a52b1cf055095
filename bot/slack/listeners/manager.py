"""The sales manager's side of the SLA clock: the buttons on the messages the sweeps (bot/sweeps) queue, whose
Block Kit is bot/slack/blocks/manager.py.

- Reassign and Claim for someone open a modal listing the roster; on submission the lead service runs as
  the manager (`leads.reassign`, `leads.claim(for_rep=...)`, which may go past the rep's daily cap), so the
  rules, the audit trail and the thread reply are the same as `/pql reassign` and `/claim PQL-42 @rep`.
- Release (on a stale claim) calls `leads.release` as whoever clicked.
Only the sales manager, or the manager of the lead's team (its escalation target, bot/domain/teams.py), may use
them; a team's manager picks among their team's members. Anyone else is told so privately, and no modal opens.
"""

from __future__ import annotations

from slack_bolt import Ack, App
from sqlmodel import Session, select

from bot.domain.lifecycle import CLOSED
from bot.services import leads
from bot.services.lead_view import holder, lead_facts
from bot.services.leads import Refused
from bot.slack.blocks.manager import chosen_rep, rep_modal
from bot.slack.errors import guarded, tell
from bot.slack.ids import Action, Input, View
from bot.slack.listeners.actions import lead, lead_id, open_modal
from bot.slack.runtime import Runtime
from bot.store.models import Pql, Rep
from templates import clip, say, sentences

OPTION_MAX = 75  # a select option's text


#: One sentence of templates/slack/escalations.j2, on one line.
words = sentences("slack/escalations.j2")


def register(app: App) -> None:
    app.action(Action.REASSIGN)(guarded(reassign_clicked))
    app.action(Action.CLAIM_FOR)(guarded(claim_for_clicked))
    app.action(Action.RELEASE)(guarded(release_clicked))
    app.view(View.REASSIGN)(guarded(reassign_submitted))
    app.view(View.CLAIM_FOR)(guarded(claim_for_submitted))


def _lead(session: Session, who: leads.Actor, body: dict) -> Pql:
    """The lead a button is about."""
    return lead(session, who, lead_id((body["actions"][0] or {}).get("value")))


def _managed_lead(session: Session, runtime: Runtime, body: dict, action: str) -> tuple[leads.Actor, Pql]:
    """The lead a manager's button is about, and who clicked; a refusal for anyone but a manager of the lead (off the
    roster and managing another team: the same as anyone off it), or when the lead is closed."""
    who = runtime.actor(session, body["user"]["id"])
    if not (who.is_manager or who.manages_a_team):
        raise Refused(say("managers_only", action=action))
    pql = _lead(session, who, body)
    if not who.manages(pql):
        raise Refused(say("managers_only", action=action))
    if pql.state in CLOSED:
        raise Refused(say("lead_closed", ref=pql.ref, state=pql.state.replace("_", " ")))
    return who, pql


def _roster(session: Session, runtime: Runtime, pql: Pql, who: leads.Actor, *,
            skip: str | None = None) -> dict[str, str]:
    """Reps on the roster to pick from: "Ana Ruiz · 2 of 5 new today · 1 fast lane · paused", against the lead's
    team's daily cap and counted on its day (its timezone's), as a claim of the lead counts them; for a team's
    manager, the lead's team's members only."""
    now = runtime.now()
    cap, tz = runtime.cap_for(pql.team)
    team = runtime.settings.teams.team(pql.team).member_ids
    labels = {}
    for rep in session.exec(select(Rep).where(Rep.on_roster).order_by(Rep.created_at, Rep.id)):
        if rep.id == skip or (not who.is_manager and team is not None and rep.id not in team):
            continue
        today = leads.new_today(session, rep.id, now=now, tz=tz)
        facts = [rep.name or rep.id, f"{today} of {cap} new today"]
        if fast := leads.fast_lane_today(session, rep.id, now=now, tz=tz):
            facts.append(f"{fast} fast lane")  # on their day, not against the cap
        facts += ["paused"] if rep.paused else []
        labels[rep.id] = clip(" · ".join(facts), OPTION_MAX)
    return labels


def _lead_line(session: Session, pql: Pql) -> str:
    who, company = lead_facts(session, pql)
    return f"*{pql.ref}* ({who}{f', {company}' if company else ''})"


def reassign_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        who, pql = _managed_lead(session, runtime, body, "reassign leads")
        reps = _roster(session, runtime, pql, who, skip=pql.claimed_by or pql.rep_id)
        if not reps:
            raise Refused(words("no_other_reps", ref=pql.ref))
        modal = rep_modal(View.REASSIGN, pql_id=pql.id, title=f"Reassign {pql.ref}", submit="Reassign",
                          intro=words("reassign_intro", lead=_lead_line(session, pql), holder=holder(pql)), reps=reps)
    open_modal(runtime, body, modal)


def claim_for_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        who, pql = _managed_lead(session, runtime, body, "claim a lead on someone's behalf")
        if pql.claimed_by:
            raise Refused(say("already_claimed", ref=pql.ref, by=pql.claimed_by))
        modal = rep_modal(View.CLAIM_FOR, pql_id=pql.id, title="Claim for a rep", submit="Claim",
                          intro=words("claim_for_intro", lead=_lead_line(session, pql)),
                          reps=_roster(session, runtime, pql, who))
    open_modal(runtime, body, modal)


def release_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session, session.begin():
        who = runtime.actor(session, body["user"]["id"])
        pql = _lead(session, who, body)
        leads.release(session, pql, who, now=runtime.now())  # refuses anyone but the manager
        ref = pql.ref
    runtime.kick()
    tell(runtime, body, words("released_you", ref=ref))


def _submit_rep(ack: Ack, body: dict, view: dict, runtime: Runtime, work) -> None:
    """Run the service as whoever submitted before answering, so a refusal shows in the modal."""
    rep = chosen_rep((view.get("state") or {}).get("values") or {})
    if not rep:
        ack(response_action="errors", errors={Input.REP: words("pick_rep")})
        return
    try:
        pql_id = lead_id(view.get("private_metadata"))
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, body["user"]["id"])
            work(session, lead(session, who, pql_id), who, rep)
    except Refused as refusal:
        ack(response_action="errors", errors={Input.REP: str(refusal)[:150]})
        return
    ack()
    runtime.kick()


def reassign_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    _submit_rep(ack, body, view, runtime, lambda session, pql, who, rep: leads.reassign(
        session, pql, who, rep, now=runtime.now()))


def claim_for_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    def claim_for(session: Session, pql: Pql, who: leads.Actor, rep: str) -> None:
        cap, tz = runtime.cap_for(pql.team)  # the lead's team's cap, on its day
        leads.claim(session, pql, who, now=runtime.now(), tz=tz, cap=cap, for_rep=rep)

    _submit_rep(ack, body, view, runtime, claim_for)
