"""The sales manager's side of the SLA clock: the Block Kit of the messages bot/escalations.py sends, and the
buttons on them.

- Reassign and Claim for someone open a modal listing the roster; on submission the lead service runs as
  the manager (`leads.reassign`, `leads.claim(for_rep=...)`, which may go past the rep's daily cap), so the
  rules, the audit trail and the thread reply are the same as `/pql reassign` and `/claim PQL-42 @rep`.
- Release (on a stale claim) calls `leads.release` as whoever clicked.
Only the manager may use them: anyone else is told so privately, and no modal opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt import Ack, App
from slack_sdk.models.blocks import ActionsBlock, Block
from sqlmodel import Session, select

from bot.domain.lifecycle import CLOSED, PqlState
from bot.services import leads
from bot.services.leads import Refused
from bot.slack.blocks import (
    TIER_LABELS,
    _button,
    _context,
    _fields,
    _input_block,
    _modal,
    _section,
    _select,
    clip,
    esc,
)
from bot.slack.errors import guarded, tell
from bot.slack.ids import Action, Input, View
from bot.slack.listeners.actions import lead, lead_id, open_modal
from bot.slack.runtime import Runtime
from bot.store.models import Pql, Rep, TrialUser
from templates import say, sentences

OPTION_MAX = 75  # a select option's text


#: One sentence of templates/slack/escalations.j2, on one line.
words = sentences("slack/escalations.j2")


def lead_facts(session: Session, pql: Pql) -> tuple[str, str | None]:
    """(who, company) of a lead, escaped for mrkdwn: "Sarah Chen", "Acme Corp"."""
    user = session.get(TrialUser, pql.user_id)
    if user is None:
        return esc(pql.user_id), None
    who = user.name or user.email or pql.user_id
    company = user.company_name or user.domain
    return esc(who), esc(company) if company else None


def holder(pql: Pql) -> str:
    """Who has the lead: "<@U0ANA> (claimed)", "<@U0ANA> (assigned, not claimed)", "Nobody: waiting in the queue"."""
    if rep := pql.claimed_by or pql.rep_id:
        return words("holder", rep=rep, claimed=bool(pql.claimed_by))
    return words("nobody", queued=pql.state == PqlState.QUEUED)


# What the manager is sent ------------------------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class Card:
    """One DM to the manager about one lead, as of when it was queued. Texts are mrkdwn, already escaped."""

    pql_id: int
    ref: str
    who: str
    company: str | None
    tier: str
    heading: str  # "🚨 PQL-4 missed its first-touch SLA"
    holder: str  # "<@U0ANA> (claimed)", "Nobody: waiting in the queue"
    late: str  # "SLA missed by 35 min", "Unclaimed for 2 h 5 min"
    claimed: bool
    stale: bool = False  # a claim sitting untouched: Release comes first
    note: str | None = None  # "Moved automatically to <@U0BEN>."

    @property
    def actions(self) -> tuple[Action, ...]:
        if self.stale:
            return Action.RELEASE, Action.REASSIGN, Action.DETAILS
        if self.claimed:
            return Action.REASSIGN, Action.RELEASE, Action.DETAILS
        return Action.REASSIGN, Action.CLAIM_FOR, Action.DETAILS

    @property
    def text(self) -> str:
        """The notification text (and what a client without blocks shows)."""
        return words("manager_text", heading=self.heading, who=self.who, late=self.late)


_LABELS = {Action.REASSIGN: "Reassign", Action.CLAIM_FOR: "Claim for someone", Action.RELEASE: "Release",
           Action.DETAILS: "Details", Action.LOG_TOUCH: "Log touch", Action.SET_DISPOSITION: "Set disposition"}


def _buttons(pql_id: int, actions: tuple[Action, ...]) -> ActionsBlock:
    return ActionsBlock(elements=[_button(_LABELS[action], action, pql_id=pql_id, style="primary" if n == 0 else None)
                                  for n, action in enumerate(actions)])


def card_blocks(card: Card) -> list[dict]:
    """The manager's DM: the lead, who has it, how late, what to do, and the buttons to do it."""
    company = f"\n{card.company}" if card.company else ""
    if card.stale:
        next_step = words("stale_what_now")
    else:
        next_step = words("what_now", claimed=card.claimed)
    blocks: list[Block] = [
        _section(f"*{esc(card.heading)}*"),
        _fields(f"*Lead*\n{esc(card.ref)} · {card.who}{company}\n{TIER_LABELS.get(card.tier, esc(card.tier))}",
                f"*Who has it*\n{card.holder}", f"*How late*\n{esc(card.late)}"),
        _context(*(t for t in (card.note, next_step) if t)),
        _buttons(card.pql_id, card.actions),
    ]
    return [block.to_dict() for block in blocks]


def reminder_blocks(text: str, pql_id: int, *, ask_disposition: bool) -> list[dict]:
    """A follow-up reminder to the rep: the sentence, and the button that does the next step."""
    actions = (Action.SET_DISPOSITION, Action.DETAILS) if ask_disposition else \
        (Action.LOG_TOUCH, Action.SET_DISPOSITION, Action.DETAILS)
    return [_section(text).to_dict(), _buttons(pql_id, actions).to_dict()]


def note_blocks(text: str) -> list[dict]:
    return [_section(text).to_dict()]


def rep_modal(callback: View, *, pql_id: int, title: str, intro: str, reps: dict[str, str], submit: str) -> dict:
    """A modal with one choice: a rep of the roster (`reps`: user id -> label)."""
    blocks = [
        _section(intro),
        _input_block(Input.REP, "Rep", _select(Input.REP, "Pick a rep", reps)),
    ]
    return _modal(callback, title, blocks, pql_id, submit=submit)


def chosen_rep(state_values: dict) -> str | None:
    """The rep picked in a rep modal's `view.state.values`, else None (also for a state not shaped like Slack's)."""
    try:
        picked = ((state_values.get(str(Input.REP)) or {}).get(str(Input.REP)) or {})
        rep = (picked.get("selected_option") or {}).get("value") or picked.get("selected_user")
    except (AttributeError, TypeError):
        return None
    return rep if isinstance(rep, str) and "\x00" not in rep else None


# Listeners --------------------------------------------------------------------------------------------------

def register(app: App) -> None:
    app.action(Action.REASSIGN)(guarded(reassign_clicked))
    app.action(Action.CLAIM_FOR)(guarded(claim_for_clicked))
    app.action(Action.RELEASE)(guarded(release_clicked))
    app.view(View.REASSIGN)(guarded(reassign_submitted))
    app.view(View.CLAIM_FOR)(guarded(claim_for_submitted))


def _lead(session: Session, body: dict) -> Pql:
    """The lead a button is about."""
    return lead(session, lead_id((body["actions"][0] or {}).get("value")))


def _managed_lead(session: Session, runtime: Runtime, body: dict, action: str) -> Pql:
    """The lead a manager's button is about; a refusal for anyone else, or when the lead is closed."""
    who = runtime.actor(session, body["user"]["id"])
    if not who.is_manager:
        raise Refused(say("managers_only", action=action))
    pql = _lead(session, body)
    if pql.state in CLOSED:
        raise Refused(say("lead_closed", ref=pql.ref, state=pql.state.replace("_", " ")))
    return pql


def _roster(session: Session, runtime: Runtime, *, skip: str | None = None) -> dict[str, str]:
    """Reps on the roster to pick from: "Ana Ruiz · 2 of 5 new today · paused"."""
    settings, now = runtime.settings, runtime.now()
    labels = {}
    for rep in session.exec(select(Rep).where(Rep.on_roster).order_by(Rep.created_at, Rep.id)):
        if rep.id == skip:
            continue
        today = leads.new_today(session, rep.id, now=now, tz=settings.tz)
        facts = [rep.name or rep.id, f"{today} of {settings.pql_daily_cap} new today"]
        facts += ["paused"] if rep.paused else []
        labels[rep.id] = clip(" · ".join(facts), OPTION_MAX)
    return labels


def _lead_line(session: Session, pql: Pql) -> str:
    who, company = lead_facts(session, pql)
    return f"*{pql.ref}* ({who}{f', {company}' if company else ''})"


def reassign_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        pql = _managed_lead(session, runtime, body, "reassign leads")
        reps = _roster(session, runtime, skip=pql.claimed_by or pql.rep_id)
        if not reps:
            raise Refused(words("no_other_reps", ref=pql.ref))
        modal = rep_modal(View.REASSIGN, pql_id=pql.id, title=f"Reassign {pql.ref}", submit="Reassign",
                          intro=words("reassign_intro", lead=_lead_line(session, pql), holder=holder(pql)), reps=reps)
    open_modal(runtime, body, modal)


def claim_for_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        pql = _managed_lead(session, runtime, body, "claim a lead on someone's behalf")
        if pql.claimed_by:
            raise Refused(say("already_claimed", ref=pql.ref, by=pql.claimed_by))
        modal = rep_modal(View.CLAIM_FOR, pql_id=pql.id, title="Claim for a rep", submit="Claim",
                          intro=words("claim_for_intro", lead=_lead_line(session, pql)),
                          reps=_roster(session, runtime))
    open_modal(runtime, body, modal)


def release_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session, session.begin():
        who = runtime.actor(session, body["user"]["id"])
        pql = _lead(session, body)
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
            work(session, lead(session, pql_id), who, rep)
    except Refused as refusal:
        ack(response_action="errors", errors={Input.REP: str(refusal)[:150]})
        return
    ack()
    runtime.kick()


def reassign_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    _submit_rep(ack, body, view, runtime, lambda session, pql, who, rep: leads.reassign(
        session, pql, who, rep, now=runtime.now()))


def claim_for_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    settings = runtime.settings
    _submit_rep(ack, body, view, runtime, lambda session, pql, who, rep: leads.claim(
        session, pql, who, now=runtime.now(), tz=settings.tz, cap=settings.pql_daily_cap, for_rep=rep))
