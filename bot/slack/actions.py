"""Buttons (on alerts and App Home) and modal submissions. Ack first; refusals go back privately."""

from __future__ import annotations

from pathlib import Path

from slack_bolt import Ack, App

from bot import leads
from bot.lead_view import MAX_TOUCHES
from bot.leads import Refused
from bot.review import words
from bot.slack import blocks
from bot.slack.errors import guarded
from bot.slack.home import publish_home
from bot.slack.ids import Action, Input, LeadRef, View
from bot.slack.runtime import Runtime
from bot.store.models import Pql
from bot.words import say


def register(app: App) -> None:
    app.action(Action.CLAIM)(guarded(claim_clicked))
    app.action(Action.DETAILS)(guarded(details_clicked))
    app.action(Action.LOG_TOUCH)(guarded(touch_clicked))
    app.action(Action.SET_DISPOSITION)(guarded(disposition_clicked))
    app.action(Action.PAUSE)(guarded(pause_clicked))
    app.action(Action.SHARE_REVIEW)(guarded(share_review_clicked))
    app.view(View.LOG_TOUCH)(guarded(touch_submitted))
    app.view(View.SET_DISPOSITION)(guarded(disposition_submitted))
    app.view(View.DETAILS)(guarded(details_closed))


def _pql_id(body: dict) -> int:
    return LeadRef.decode(body["actions"][0]["value"]).pql_id


def _tell(runtime: Runtime, body: dict, text: str) -> None:
    """A private answer where the click happened: ephemeral in a channel, a DM from App Home."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if channel:
        runtime.gateway.ephemeral(channel, user, text)
    else:
        runtime.gateway.dm(user, text)


def claim_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    try:
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, body["user"]["id"])
            pql = session.get(Pql, _pql_id(body))
            leads.claim(session, pql, who, now=runtime.now(), tz=runtime.settings.tz,
                        cap=runtime.settings.pql_daily_cap)
    except Refused as refusal:
        _tell(runtime, body, str(refusal))
    runtime.kick()  # the alert is edited to show the claim


def details_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    with runtime.session() as session:
        view = runtime.lead(session, _pql_id(body))
    runtime.gateway.open_view(body["trigger_id"], blocks.details_modal(view, now=runtime.now(), tz=runtime.settings.tz))


def _workable(body: dict, runtime: Runtime):
    """The lead's view if this person may work it, else a refusal said to them (and None)."""
    with runtime.session() as session:
        who = runtime.actor(session, body["user"]["id"])
        view = runtime.lead(session, _pql_id(body))
    try:
        if not (who.is_manager or view.claimed_by == who.user_id):
            raise Refused(say("not_yours", ref=view.ref, owner=view.claimed_by))
        if not view.is_open:
            raise Refused(say("lead_closed", ref=view.ref, state=view.state.replace("_", " ")))
    except Refused as refusal:
        _tell(runtime, body, str(refusal))
        return None
    return view


def touch_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    if view := _workable(body, runtime):
        if view.touches_left <= 0:
            _tell(runtime, body, say("touch_limit", ref=view.ref, limit=MAX_TOUCHES))
            return
        runtime.gateway.open_view(body["trigger_id"], blocks.touch_modal(view))


def disposition_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    if view := _workable(body, runtime):
        runtime.gateway.open_view(body["trigger_id"], blocks.disposition_modal(view))


def details_closed(ack: Ack) -> None:
    ack()


def touch_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    values = blocks.parse_touch(view["state"]["values"])
    if not values["channel"]:
        ack(response_action="errors", errors={Input.TOUCH_CHANNEL: "Pick how you reached them."})
        return
    _submit(ack, body, view, runtime, lambda session, pql, who: leads.log_touch(
        session, pql, who, now=runtime.now(), **values), error_block=Input.TOUCH_NOTE)


def disposition_submitted(ack: Ack, body: dict, view: dict, runtime: Runtime) -> None:
    values = blocks.parse_disposition(view["state"]["values"])
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
    pql_id = LeadRef.decode(view.get("private_metadata")).pql_id
    try:
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, body["user"]["id"])
            work(session, session.get(Pql, pql_id), who)
    except Refused as refusal:
        ack(response_action="errors", errors={error_block: str(refusal)[:150]})
        return
    ack()
    runtime.kick()


def pause_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    ack()
    user = body["user"]["id"]
    try:
        with runtime.session() as session, session.begin():
            leads.set_paused(session, user, body["actions"][0]["value"] == "pause", now=runtime.now())
    except Refused as refusal:
        _tell(runtime, body, str(refusal))
        return
    publish_home(runtime, user)


def share_review_clicked(ack: Ack, body: dict, runtime: Runtime) -> None:
    """The Share button of a private /pql-review: post that week's review (and its chart) to the PQL channel.
    A person's explicit click, so it goes straight to Slack rather than through the outbox."""
    ack()
    week = body["actions"][0]["value"]
    with runtime.session() as session:
        text, shown, chart = runtime.render_review(session, week, note=words("shared_by", user=body["user"]["id"]))
    try:
        channel, _ = runtime.gateway.post(runtime.settings.pql_alerts_channel, text, shown)
        if chart is not None:
            runtime.gateway.upload_file(channel, chart, title=words("title", label=week),
                                        initial_comment=words("chart_comment", label=week))
    finally:
        if chart is not None:
            Path(chart).unlink(missing_ok=True)
    _tell(runtime, body, words("shared", label=week, channel=f"<#{channel}>"))
