"""The PQL alert in the channel: who, the trial, score and tier, what fired (the lead's family, in the rep's words,
and each trigger with its tier of response), the signals with their trial days, the talk track, an account lead's
contact map, the account's history, the rep and the SLA clock, the touches, and the buttons that fit the lead's
state."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.domain.kit import DISPOSITION_LABELS, EMAIL_LABELS, MAX_TOUCHES, TOUCH_CHANNELS
from bot.domain.lifecycle import PqlState
from bot.services.alert_text import AlertFacts, plain_alert
from bot.services.lead_view import LeadView, TouchView, contact_line
from bot.slack.blocks.parts import (
    FALLBACK_MAX,
    MESSAGE_BLOCKS_MAX,
    NOTE_MAX,
    TIER_LABELS,
    bullets,
    button,
    clock,
    context,
    fields,
    header,
    lead_name,
    section,
    sla_text,
    words,
)
from bot.slack.ids import Action
from templates import clip, esc, sentences

bands_words = sentences("scoring/bands.j2")
fired_words = sentences("scoring/triggers.j2")
#: An alert lists this many fired triggers and contacts, then counts the rest (the Details modal has them all);
#: a line is clipped so that a full list stays inside a section's 3,000 characters.
FIRED_SHOWN, CONTACTS_SHOWN, LINE_MAX = 10, 10, 280


def alert(view: LeadView, *, now: datetime, tz: tzinfo) -> tuple[str, list[dict]]:
    """The PQL alert for the channel: (link-free notification text, blocks)."""
    blocks = [
        header(f"{TIER_LABELS.get(view.tier, view.tier)} · {view.ref} · {title(view)}"),
        *_status(view),
        fields(_who(view), _company(view), _trial(view, tz), _score(view)),
        *what_fired(view, nurture=False),
        section(f"*Signals*\n{esc(_capitalized(view.signal_summary)) or 'none'}"),
        section(f"*Suggested talk track*\n{esc(view.talk_track)}"),
        *contact_map(view, tz=tz, shown=CONTACTS_SHOWN),
        section(f"*Account history*\n{bullets(view.history, words('no_history'))}"),
        context(*rep_lines(view, now=now, tz=tz)),
    ]
    if view.touches:
        blocks.append(section(_touch_list(view, now=now, tz=tz)))
    blocks.append(ActionsBlock(elements=_alert_buttons(view)))
    return alert_text(view), [b.to_dict() for b in blocks[:MESSAGE_BLOCKS_MAX]]


def alert_text(view: LeadView) -> str:
    """The notification fallback: the plain alert (bot/services/alert_text.py), made inert for mrkdwn, with any
    link in the data blanked out, clipped to Slack's limit."""
    text = plain_alert(AlertFacts(
        ref=view.ref, tier=view.tier, name=lead_name(view), title=view.title, company_name=view.company_name,
        company_size=view.company_size, score=view.score, max_score=view.max_score, ask=_ask(view),
        summary=view.signal_summary, trial_day=view.trial_day, days_left=view.days_left, talk_track=view.talk_track,
        family=view.family, fired=tuple(f.line for f in view.fired if f.response != 3),
        account=view.account_name if view.level == "account" else None, users=len(view.contacts),
    ))
    return clip(esc(re.sub(r"\S*https?://\S*", "[link]", text.strip())), FALLBACK_MAX)


def title(view: LeadView) -> str:
    """Who the lead is: the person, or for an account lead the account ("Acme Corp (account)")."""
    if view.level == "account" and view.account_name:
        return f"{view.account_name} (account)"
    return lead_name(view)


def what_fired(view: LeadView, *, nurture: bool) -> list[Block]:
    """The lead's family in the rep's words (seed 000: help a buyer buy; help a blocked user unblock, not a pitch)
    and each trigger that fired with its tier of response (seed 001) and evidence; with `nurture`, the tier 3 ones
    too (recorded for automated nurture, never a person's job: the Details modal lists them, the alert does not).
    Nothing from a verdict before triggers."""
    fired = [f for f in view.fired if nurture or f.response != 3]
    if not view.family and not fired:
        return []
    lines = [fired_words("family", family=view.family)] if view.family else []
    shown = [f"• {clip(esc(f.line), LINE_MAX)}" for f in fired[:FIRED_SHOWN]]
    if len(fired) > FIRED_SHOWN:
        shown.append(fired_words("more", count=len(fired) - FIRED_SHOWN))
    if shown:
        lines += ["*What fired*", *shown]
    return [section("\n".join(lines))]


def contact_map(view: LeadView, *, tz: tzinfo, shown: int) -> list[Block]:
    """An account lead's contact map (seed 004): the account and its users, the most recently active first; the
    first `shown` of them, then how many more there are."""
    if view.level != "account" or not (view.contacts or view.account_name):
        return []
    heading = fired_words("account", name=esc(view.account_name or "unknown"), users=len(view.contacts))
    lines = [f"*Contact map* · {heading}"]
    lines += [f"• {clip(esc(contact_line(c, tz=tz)), LINE_MAX)}" for c in view.contacts[:shown]]
    if len(view.contacts) > shown:
        lines.append(fired_words("contacts_more", count=len(view.contacts) - shown))
    return [section("\n".join(lines))]


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ask(view: LeadView) -> str | None:
    """What a fast-lane lead asked for ("requested a demo")."""
    return view.ask if view.tier == "fast_lane" else None


def _status(view: LeadView) -> list[Block]:
    """What matters first: the lead stopped, its disposition, a do-not-touch hold, or a fast-lane ask waiting for a
    reply."""
    if view.stopped_reason:
        mark = "⛔" if view.state is PqlState.STOPPED_OPT_OUT else "🛑"
        return [section(f"{mark} *Stopped: {esc(view.stopped_reason)}*")]
    if view.disposition:
        by = view.disposition_by or view.claimed_by or view.assigned_rep
        line = f"Disposition: *{DISPOSITION_LABELS.get(view.disposition, view.disposition)}*"
        line += f" by <@{by}>" if by else ""
        line += f" · {esc(clip(view.disposition_reason, NOTE_MAX))}" if view.disposition_reason else ""
        return [section(line)]
    if view.hold and view.is_open:
        return [section(words("on_hold", reason=view.hold))]
    if view.tier == "fast_lane" and view.is_open and not view.touches:
        return [section(words("fast_lane_ask", ask=esc(_ask(view) or "asked to talk with us")))]
    return []


def _who(view: LeadView) -> str:
    lines = [f"*Who*\n{esc(lead_name(view))}", esc(view.title or "")]
    if view.email and view.email != lead_name(view):
        lines.append(esc(view.email))
    return "\n".join(line for line in lines if line)


def _company(view: LeadView) -> str:
    """The company, its size and band, and its ACV potential; a verdict from before bands shows the size alone."""
    lines = ["*Company*", esc(view.company_name or view.domain or "unknown")]
    if view.band is None:
        lines.append(f"{view.company_size:,} people" if view.company_size else "")
    else:
        lines += [band_line(view), acv_line(view)]
    return "\n".join(line for line in lines if line)


def band_line(view: LeadView) -> str:
    """"800 people · Mid-market", "Size unknown"."""
    return bands_words("size_and_band", size=view.company_size, band=view.band)


def acv_line(view: LeadView) -> str:
    """"ACV potential ≈ $20,000", or that there is no estimate without a company size."""
    return bands_words("acv", amount=view.acv_potential)


def _trial(view: LeadView, tz: tzinfo) -> str:
    lines = ["*Trial*"]
    if view.signup_at:
        local = view.signup_at.astimezone(tz)
        lines.append(f"Signed up {local:%a} {local.day} {local:%b}")
    if view.trial_day is not None:
        left = f" · {view.days_left} day{'s' * (view.days_left != 1)} left" if view.days_left is not None else ""
        lines.append(f"Day {view.trial_day}{left}")
    if view.plan:
        lines.append(f"Plan: {esc(view.plan)}")
    return "\n".join(lines) if len(lines) > 1 else "*Trial*\nunknown"


def _score(view: LeadView) -> str:
    return f"*Score*\n{view.score}/{view.max_score} · {TIER_LABELS.get(view.tier, esc(view.tier))}"


def rep_lines(view: LeadView, *, now: datetime, tz: tzinfo) -> list[str]:
    if view.claimed_by:
        at = f" at {clock(view.claimed_at, now=now, tz=tz)}" if view.claimed_at else ""
        lines = [f"Claimed by <@{view.claimed_by}>{at}"]
    elif view.assigned_rep:
        lines = [f"{'Assigned to' if view.state is PqlState.ASSIGNED else 'Suggested rep:'} <@{view.assigned_rep}>"]
    else:
        lines = ["Queued: waiting for a rep with room today" if view.state is PqlState.QUEUED else "No rep yet"]
    if view.routed and view.is_open:
        lines.append(words("routed", why=esc(view.routed)))
    if view.is_open and not view.touches:
        if view.sla_due_at:
            lines.append(sla_text(view.sla_due_at, now=now))
        elif view.tier != "fast_lane":  # a fast-lane ask already says "reply within 1 hour" up top
            lines.append(words("sla_target", tier=view.tier))
    return lines


def _touch_line(touch: TouchView, *, now: datetime, tz: tzinfo) -> str:
    how = EMAIL_LABELS.get(touch.email_key or "") or TOUCH_CHANNELS.get(touch.channel, esc(touch.channel))
    note = f" · {esc(clip(touch.note, 200))}" if touch.note else ""
    return f"Touch {touch.number}: {how} · {clock(touch.at, now=now, tz=tz)}{note}"


def _touch_list(view: LeadView, *, now: datetime, tz: tzinfo) -> str:
    lines = [f"*Touches: {len(view.touches)} of {MAX_TOUCHES}*"]
    lines += [_touch_line(t, now=now, tz=tz) for t in view.touches]
    if view.is_open and view.touches_left <= 0:
        lines.append(words("all_touches_done", limit=MAX_TOUCHES))
    return "\n".join(lines)


def _alert_buttons(view: LeadView) -> list[ButtonElement]:
    pql_id = view.pql_id
    details = button("Details", Action.DETAILS, pql_id=pql_id)
    if view.stopped_reason or not view.is_open:
        return [details]
    held = view.hold is not None  # do not touch: nobody claims it or logs a touch until it resumes
    if not view.claimed_by:
        return [details] if held else [button("Claim", Action.CLAIM, pql_id=pql_id, style="primary"), details]
    hand_off = [button("Hand off", Action.HAND_OFF, pql_id=pql_id)] if view.handoff_teams else []
    if view.touches_left > 0 and not held:
        log = button("Log touch", Action.LOG_TOUCH, pql_id=pql_id, style="primary")
        return [log, button("Set disposition", Action.SET_DISPOSITION, pql_id=pql_id), *hand_off, details]
    return [button("Set disposition", Action.SET_DISPOSITION, pql_id=pql_id, style="primary"), *hand_off, details]


