"""Buttons (on alerts and App Home) and modal submissions. Ack first; a refusal is said privately by `guarded`
(bot/slack/errors.py), or, in a modal, beside the field it concerns.

What a button or modal carries (its value, private_metadata, state) comes back from Slack as sent, but is
read as untrusted all the same: anything that does not name a lead, a choice or a person is a refusal said
to the person, never a failure.
"""

from __future__ import annotations

from pathlib import Path

from slack_bolt import Ack, App
from sqlmodel import Session

from bot.domain.kit import MAX_TOUCHES
from bot.review import words
from bot.services import handoffs, leads
from bot.services.leads import Refused
from bot.slack import blocks
from bot.slack.errors import guarded, tell
from bot.slack.ids import Action, Input, LeadRef, View
from bot.slack.listeners.commands import PQL_ID_MAX, review_period
from bot.slack.listeners.home import publish_home
from bot.slack.runtime import Runtime
from bot.store.models import Pql
from templates import say


def register(app: App) -> None:
    app.action(Action.CLAIM)(guarded(claim_clicked))
    app.action(Action.DETAILS)(guarded(details_clicked))
    app.action(Action.LOG_TOUCH)(guarded(touch_clicked))
    app.action(Action.SET_DISPOSITION)(guarded(disposition_clicked))
    app.action(Action.PAUSE)(guarded(pause_clicked))
    app.action(Action.SHARE_REVIEW)(guarded(share_review_clicked))
    app.action(Action.HAND_OFF)(guarded(handoff_clicked))
    app.view(View.HAND_OFF)(guarded(handoff_submitted))
    app.view(View.LOG_TOUCH)(guarded(touch_submitted))
    app.view(View.SET_DISPOSITION)(guarded(disposition_submitted))
    app.view(View.DETAILS)(guarded(details_closed))


STALE = "That button or form doesn't point at a lead any more. Open the lead from its alert and try again."
NO_TRIGGER = "Slack didn't send what it needs to open that form. Please click again."


def lead_id(value: object) -> int:
    """The lead a button value or a modal's private_metadata names; a refusal when it names none."""
    try:
        pql_id = LeadRef.decode(value if isinstance(value, str) else None).pql_id
    except ValueError:
        raise Refused(STALE) from None
    if not 1 <= pql_id <= PQL_ID_MAX:
        raise Refused(STALE)
    return pql_id


def lead(session: Session, who: leads.Actor, pql_id: int) -> Pql:
    """The lead with this id, for someone on the roster (`leads.require_roster`, asked first, so that people off
    it cannot tell a lead that exists from one that does not) or a manager of it (`leads.require_sight`); a refusal
    naming it when there is none."""
    leads.require_roster(who)
    leads.require_sight(who, pql := session.get(Pql, pql_id))
    if pql is None:
        raise Refused(say("unknown_lead", ref=f"PQL-{pql_id}"))
    return pql


def _value(body: dict) -> object:
    return (body["actions"][0] or {}).get("value")


def _pql_id(body: dict) -> int:
    return lead_id(_value(body))


def open_modal(runtime: Runtime, body: dict, view: dict) -> None:
    """Open a modal for the click in `body` (Slack sends a trigger id with every click; without one, say so)."""
    if not body.get("trigger_id"):
        raise Refused(NO_TRIGGER)
    runtime.gateway.open_view(body["trigger_id"], view)


def claim_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session, session.begin():
        who = runtime.actor(session, body["user"]["id"])
        pql = lead(session, who, _pql_id(body))
        cap, tz = runtime.cap_for(pql.team)  # the lead's team's cap, on its day
        leads.claim(session, pql, who, now=runtime.now(), tz=tz, cap=cap, team=runtime.team_of(pql.team))
    runtime.kick()  # the alert is edited to show the claim


def details_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        who = runtime.actor(session, body["user"]["id"])
        view = runtime.lead(session, lead(session, who, _pql_id(body)).id)
    open_modal(runtime, body, blocks.details_modal(view, now=runtime.now(), tz=runtime.settings.tz))


def _workable(body: dict, runtime: Runtime):
    """The lead's view if this person may work it; a refusal otherwise."""
    with runtime.session() as session:
        who = runtime.actor(session, body["user"]["id"])
        pql = lead(session, who, _pql_id(body))
        manages, view = who.manages(pql), runtime.lead(session, pql.id)
    if not (manages or view.claimed_by == who.user_id):
        raise Refused(say("not_yours", ref=view.ref, owner=view.claimed_by))
    if not view.is_open:
        raise Refused(say("lead_closed", ref=view.ref, state=view.state.replace("_", " ")))
    return view


def touch_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    if view := _workable(body, runtime):
        if view.hold:  # the button is gone from a held lead's alert; an older copy of it is answered the same
            raise Refused(say("hands_off", ref=view.ref, reason=view.hold))
        if view.touches_left <= 0:
            tell(runtime, body, say("touch_limit", ref=view.ref, limit=MAX_TOUCHES))
            return
        open_modal(runtime, body, blocks.touch_modal(view))


def disposition_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    if view := _workable(body, runtime):
        open_modal(runtime, body, blocks.disposition_modal(view))


def handoff_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    if view := _workable(body, runtime):
        open_modal(runtime, body, blocks.handoff_modal(view))


def handoff_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    values = state_values(view, blocks.parse_handoff, ("team", "note"))
    if not values["team"]:
        ack(response_action="errors", errors={Input.TEAM: "Pick a team."})
        return
    settings = runtime.settings
    _submit(ack, body, view, runtime, lambda session, pql, who: handoffs.hand_off(
        session, pql, who, values["team"], router=runtime.router, now=runtime.now(), tz=settings.tz,
        product_name=settings.product_name, note=values["note"]), error_block=Input.TEAM)


def details_closed(ack: Ack) -> None:
    ack()


def state_values(view: dict, parse, fields: tuple[str, ...]) -> dict:
    """A modal's inputs, parsed; a state not shaped like Slack's reads as nothing chosen or typed."""
    try:
        values = parse((view.get("state") or {}).get("values") or {})
    except (AttributeError, TypeError):
        return dict.fromkeys(fields)
    # A choice or a text is a string (never with a NUL: the store cannot keep one); anything else (a number,
    # a list) was not made by our modal.
    return {k: v.replace("\x00", "") if isinstance(v, str) else v if isinstance(v, bool) else None
            for k, v in values.items()}


def touch_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    values = state_values(view, blocks.parse_touch, ("channel", "email_key", "note", "replied"))
    values["replied"] = bool(values["replied"])
    if not values["channel"]:
        ack(response_action="errors", errors={Input.TOUCH_CHANNEL: "Pick how you reached them."})
        return
    _submit(ack, body, view, runtime, lambda session, pql, who: leads.log_touch(
        session, pql, who, now=runtime.now(), **values), error_block=Input.TOUCH_NOTE)


def disposition_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    values = state_values(view, blocks.parse_disposition, ("disposition", "reason"))
    if values["disposition"] == "disqualified" and not (values["reason"] or "").strip():
        ack(response_action="errors", errors={Input.DISPOSITION_REASON: say("reason_required")})
        return
    if not values["disposition"]:
        ack(response_action="errors", errors={Input.DISPOSITION: "Pick a disposition."})
        return
    _submit(ack, body, view, runtime, lambda session, pql, who: leads.set_disposition(
        session, pql, who, now=runtime.now(), **values), error_block=Input.DISPOSITION)


def _submit(ack: Ack, body: dict, view: dict, runtime: Runtime, work, *, error_block: str) -> None:
    """Run the service before answering, so a refusal shows in the modal instead of closing it."""
    try:
        pql_id = lead_id(view.get("private_metadata"))
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, body["user"]["id"])
            work(session, lead(session, who, pql_id), who)
    except Refused as refusal:
        ack(response_action="errors", errors={error_block: str(refusal)[:150]})
        return
    ack()
    runtime.kick()


def pause_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    user = body["user"]["id"]
    if (value := _value(body)) not in ("pause", "resume"):
        raise Refused("That switch is out of date. Open pqlbot's App Home again.")
    with runtime.session() as session, session.begin():
        leads.set_paused(session, user, value == "pause", now=runtime.now())
    publish_home(runtime, user)


def share_review_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    """The Share button of a private /pql-review: post that week's review (and its chart) to the PQL channel.
    A person's explicit click, so it goes straight to Slack rather than through the outbox."""
    ack()
    week, user = _value(body), body["user"]["id"]
    with runtime.session() as session:
        leads.require_roster(runtime.actor(session, user))  # a post in the team's channel, in their name
        review_period(week, today=runtime.now().astimezone(runtime.settings.tz).date())
        text, shown, chart = runtime.render_review(session, week, note=words("shared_by", user=user))
    try:
        channel, _ = runtime.gateway.post(runtime.settings.pql_alerts_channel, text, shown)
        if chart is not None:
            runtime.gateway.upload_file(channel, chart, title=words("title", label=week),
                                        initial_comment=words("chart_comment", label=week))
    finally:
        if chart is not None:
            Path(chart).unlink(missing_ok=True)
    tell(runtime, body, words("shared", label=week, channel=f"<#{channel}>"))
