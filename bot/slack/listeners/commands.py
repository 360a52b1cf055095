"""Slash commands: /claim, /pql (help, reassign, handoff, why, pause, resume, pause-all, resume-all,
pause-outreach, resume-outreach) and /pql-review.

Each handler acks at once, then does the work and answers the person privately through `respond`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from slack_bolt import Ack, App, Respond
from sqlmodel import Session, select

from bot import review as reviews
from bot.domain.periods import Period, parse_period
from bot.services import explain, handoffs, leads, switches
from bot.services.leads import Refused
from bot.slack.blocks import review as review_blocks
from bot.slack.errors import guarded
from bot.slack.ids import Command
from bot.slack.runtime import Runtime
from bot.store.models import Pql
from templates import esc, say

MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
HELP = """*pqlbot* turns product usage into PQLs and helps you work them.
• `/claim` — take the oldest unclaimed lead that's yours to take
• `/claim PQL-42` (or an email, or a user id) — take that lead
• `/claim PQL-42 @rep` — (manager) claim it on a rep's behalf, past their cap if need be
• `/pql reassign PQL-42 @rep` — (manager) give a lead to another rep
• `/pql handoff PQL-42 ae [note]` — hand your lead to another team (SDR → AE once a meeting is set, SDR → CS)
• `/pql why PQL-42` — who got a lead, when and why
• `/pql pause` / `/pql resume` — stop or restart new assignments to you (or use the App Home switch)
• `/pql pause-all` / `/pql resume-all` — (manager) pause or resume routing for the whole team: the rollback switch
• `/pql pause-outreach` / `/pql resume-outreach` — (manager) stop or restart follow-up reminders (complaints guardrail)
• `/pql-review [this|last|2026-W48]` — the weekly PQL review
Log touches and set dispositions with the buttons on each alert."""


#: pqls.id is an INTEGER: PostgreSQL refuses to compare it with a larger number.
PQL_ID_MAX = 2**31 - 1
#: The longest period /pql-review (and its Share button) reviews: a year. Reviewing a long range costs
#: seconds of CPU per year in it, and anyone in the workspace may ask (`pqlbot review` has no bound).
MAX_REVIEW_DAYS = 366
REVIEW_TOO_LONG = f"A review covers at most {MAX_REVIEW_DAYS} days. Try `/pql-review this`, `/pql-review last`, " \
                  "a week like `/pql-review 2026-W45` or a shorter range."


def find(session: Session, who: leads.Actor, ref: str) -> Pql:
    """`leads.find`, for someone on the roster (`leads.require_roster`, asked first, so that people off it cannot
    tell a lead that exists from one that does not) or a manager of the lead (`leads.require_sight`), and for what
    people type: text the store cannot compare is no lead rather than a failure.

    leads.find reads any run of digits as a lead id first; past PQL_ID_MAX (or in non-ASCII digits such as
    "²") that lookup fails, so such a reference is looked up only as the product user id it can also be."""
    leads.require_roster(who)
    text = ref.strip().strip("<>").removeprefix("mailto:").split("|", 1)[0]  # as leads.find reads it
    if "\x00" in text:  # PostgreSQL cannot compare text holding a NUL
        leads.require_sight(who, None)
        raise Refused(say("unknown_lead", ref=ref.replace("\x00", "").strip()))
    number = text.upper().removeprefix("PQL-").removeprefix("PQL")
    if number.isdigit() and not (number.isascii() and int(number) <= PQL_ID_MAX):
        pql = session.exec(select(Pql).where(Pql.user_id == text).order_by(Pql.id.desc())).first()
    else:
        try:
            pql = leads.find(session, ref)
        except Refused:
            pql = None
    leads.require_sight(who, pql)  # a team's manager off the roster: their teams' leads only
    if pql is None:
        raise Refused(say("unknown_lead", ref=ref.strip()))
    return pql


def review_period(asked: object, *, today: date) -> Period:
    """The period a /pql-review (or its Share button) names, or a refusal saying what to type."""
    try:
        if not isinstance(asked, str):
            raise ValueError(asked)
        period = parse_period(asked, today=today)
        datetime.combine(period.end + timedelta(days=1), datetime.min.time())  # the metrics' end bound exists
    except (ValueError, OverflowError):
        raise Refused(reviews.words("bad_week", text=esc(str(asked)))) from None
    if (period.end - period.start).days >= MAX_REVIEW_DAYS:
        raise Refused(REVIEW_TOO_LONG)
    return period


def register(app: App) -> None:
    app.command(Command.CLAIM)(guarded(claim))
    app.command(Command.PQL)(guarded(pql))
    app.command(Command.REVIEW)(guarded(review))


def claim(ack: Ack, command: dict, respond: Respond, runtime: Runtime, body: dict) -> None:
    ack()
    text = command.get("text", "").strip()
    mentioned = MENTION.findall(text)
    ref = MENTION.sub("", text).strip()
    with runtime.session() as session, session.begin():
        who = runtime.actor(session, command["user_id"])
        leads.require_roster(who)  # before a bare /claim says whether anything is waiting
        if ref:
            pql = find(session, who, ref)
        else:
            leads.require_sight(who, None)  # a lead for oneself: a team's manager off the roster takes none
            if (pql := leads.oldest_claimable(session, who, teams=runtime.teams_of_rep(who.user_id))) is None:
                raise Refused(say("nothing_to_claim"))
        cap, tz = runtime.cap_for(pql.team)  # the lead's team's cap, on its day
        leads.claim(session, pql, who, now=runtime.now(), tz=tz, cap=cap,
                    for_rep=mentioned[0] if mentioned else None, team=runtime.team_of(pql.team))
        answer = say("claimed", ref=pql.ref, rep=pql.claimed_by, by=who.user_id)
    runtime.kick()
    respond(text=answer, response_type="ephemeral")


def pql(ack: Ack, command: dict, respond: Respond, runtime: Runtime, body: dict) -> None:
    ack()
    words = command.get("text", "").split()
    action, args = (words[0].lower(), words[1:]) if words else ("help", [])
    if action == "reassign" and len(args) >= 2 and (rep := MENTION.findall(" ".join(args[1:]))):
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, command["user_id"])
            pql = leads.reassign(session, find(session, who, args[0]), who, rep[0], now=runtime.now())
            answer = say("reassigned", ref=pql.ref, rep=rep[0], by=who.user_id)
    elif action == "handoff" and len(args) >= 2:
        settings = runtime.settings
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, command["user_id"])
            lead = find(session, who, args[0])
            rep = handoffs.hand_off(session, lead, who, args[1], router=runtime.router, now=runtime.now(),
                                    tz=settings.tz, product_name=settings.product_name, note=" ".join(args[2:]))
            team = runtime.router.teams.team(lead.team).title
            answer = say("handed_off", ref=lead.ref, by=who.user_id, team=esc(team),
                         because=handoffs.BECAUSE[runtime.router.teams.team(lead.team).handoff.when], rep=rep)
    elif action == "why" and args:
        with runtime.session() as session:
            answer = why(session, find(session, runtime.actor(session, command["user_id"]), args[0]),
                         tz=runtime.settings.tz)
    elif action in ("pause-all", "resume-all"):
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, command["user_id"])
            answer = switches.set_routing_paused(session, who, action == "pause-all", now=runtime.now(),
                                                 teams=runtime.settings.teams)
    elif action in ("pause-outreach", "resume-outreach"):
        with runtime.session() as session, session.begin():
            who = runtime.actor(session, command["user_id"])
            answer = switches.set_outreach_paused(session, who, action == "pause-outreach", now=runtime.now())
    elif action in ("pause", "resume"):
        with runtime.session() as session, session.begin():
            answer = leads.set_paused(session, command["user_id"], action == "pause", now=runtime.now())
    else:
        answer = HELP if action == "help" else f"I don't know `/pql {action}`.\n\n{HELP}"
    runtime.kick()
    respond(text=answer, response_type="ephemeral")


def why(session, pql, *, tz) -> str:  # noqa: ANN001 - a Session, a Pql, a tzinfo
    """Who got the lead and why, its escalations, touches and disposition, in the team's time: the trail
    `pqlbot explain` shows too (bot/services/explain.py)."""
    lines = [f"*{pql.ref}*"]
    for step in explain.trail(session, [pql.id]):
        words = explain.Step(step.at, esc(step.what), step.rep, step.by).said(lambda user: f"<@{user}>")
        lines.append(f"• {step.at.astimezone(tz):%a %d %b %H:%M %Z}: {words}")
    return "\n".join(lines)


def review(ack: Ack, command: dict, respond: Respond, runtime: Runtime, body: dict) -> None:
    """`/pql-review [this|last|2026-W45]`: the week's review, privately, with a button to share it."""
    ack()
    asked = command.get("text", "").strip()
    now, tz = runtime.now(), runtime.settings.tz
    period = review_period(asked, today=now.astimezone(tz).date())
    with runtime.session() as session:
        shown = reviews.for_settings(session, period, settings=runtime.settings, now=now)
    text, blocks = review_blocks.blocks(shown, share=True, tz=tz)
    respond(text=text, blocks=blocks, response_type="ephemeral")
