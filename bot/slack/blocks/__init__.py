"""Every Block Kit payload pqlbot sends: the PQL alert, the lead modals and the App Home tab.

The only module that builds Block Kit. Pure: it renders what it is given (a `LeadView`, home rows) at the
`now` and in the team timezone it is given, and returns plain dicts made by slack_sdk's models, whose
`to_dict()` checks Slack's limits. Text from the store is escaped for mrkdwn and clipped to fit; longer
sentences live in templates/slack/blocks_words.j2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View as SlackView

from bot.domain.kit import DISPOSITION_LABELS, EMAIL_LABELS, MAX_TOUCHES, TOUCH_CHANNELS
from bot.domain.lifecycle import PqlState
from bot.services.lead_view import LeadView, TouchView
from bot.slack.ids import Action, Input, LeadRef, View
from templates import ENV, clip, esc, render, sentences, span

TIER_LABELS = {"fast_lane": "⚡ Fast lane", "high": "🔥 High", "medium": "Medium"}
# Slack's limits (https://docs.slack.dev/reference/block-kit): slack_sdk checks most of them in to_dict(),
# but not the ones marked *, so clipping keeps every text inside them.
SECTION_MAX, FIELD_MAX, HEADER_MAX, BUTTON_MAX, TITLE_MAX = 3000, 2000, 150, 75, 24  # FIELD_MAX*
MESSAGE_BLOCKS_MAX, VIEW_BLOCKS_MAX = 50, 100  # MESSAGE_BLOCKS_MAX*
FALLBACK_MAX, NOTE_MAX = 3000, 1000
HOME_LIST_MAX = 20  # rows per App Home list; the rest are counted

_STATE_LABELS = {
    PqlState.QUALIFIED: "new", PqlState.ALERTED: "new", PqlState.QUEUED: "queued for a rep",
    PqlState.ASSIGNED: "assigned, not claimed yet", PqlState.CLAIMED: "claimed", PqlState.WORKING: "working",
}
_words = sentences("slack/blocks_words.j2", one_line=False)


# Text --------------------------------------------------------------------------------------------------------

def _bullets(lines: list[str], empty: str) -> str:
    return "\n".join(f"• {esc(line)}" for line in lines) if lines else empty


def _name(view: LeadView) -> str:
    return view.name or view.email or view.user_id


# Time --------------------------------------------------------------------------------------------------------

def clock(at: datetime, *, now: datetime, tz: tzinfo) -> str:
    """"10:42" today, "Tue 10:42" within a week either way, else "3 Mar 10:42" (team timezone)."""
    local, today = at.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return f"{local:%H:%M}"
    if abs((local.date() - today).days) < 7:
        return f"{local:%a %H:%M}"
    return f"{local.day} {local:%b %H:%M}"


def sla_text(due: datetime | None, *, now: datetime) -> str:
    if due is None:
        return "no SLA clock yet"
    return f"SLA: {span(due - now)} left" if due >= now else f"SLA missed {span(now - due)} ago"


# Blocks ------------------------------------------------------------------------------------------------------

def _section(text: str, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_MAX)), accessory=accessory)


def _fields(*texts: str) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=clip(t, FIELD_MAX)) for t in texts])


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(t, FIELD_MAX)) for t in texts if t])


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_MAX), emoji=True))


def _button(text: str, action: Action, *, pql_id: int | None = None, value: str | None = None,
            style: str | None = None) -> ButtonElement:
    value = value if value is not None else LeadRef(pql_id=pql_id).encode()
    return ButtonElement(text=clip(text, BUTTON_MAX), action_id=str(action), value=value, style=style)


def _options(labels: dict[str, str]) -> list[Option]:
    return [Option(value=key, text=label) for key, label in labels.items()]


def _modal(callback: View, title: str, blocks: list[Block], pql_id: int, *, submit: str | None = None,
           close: str = "Cancel") -> dict:
    return SlackView(type="modal", callback_id=str(callback), title=clip(title, TITLE_MAX), submit=submit,
                     close=close, blocks=blocks[:VIEW_BLOCKS_MAX],
                     private_metadata=LeadRef(pql_id=pql_id).encode()).to_dict()


def ephemeral(text: str) -> list[dict]:
    """One section for an ephemeral reply; `text` is mrkdwn already (mentions stay mentions)."""
    return [_section(text).to_dict()]


# The alert ---------------------------------------------------------------------------------------------------

def alert(view: LeadView, *, now: datetime, tz: tzinfo) -> tuple[str, list[dict]]:
    """The PQL alert for the channel: (link-free notification text, blocks)."""
    blocks = [
        _header(f"{TIER_LABELS.get(view.tier, view.tier)} · {view.ref} · {_name(view)}"),
        *_status(view),
        _fields(_who(view), _company(view), _trial(view, tz), _score(view)),
        _section(f"*Signals*\n{esc(_capitalized(view.signal_summary)) or 'none'}"),
        _section(f"*Suggested talk track*\n{esc(view.talk_track)}"),
        _section(f"*Account history*\n{_bullets(view.history, _words('no_history'))}"),
        _context(*_rep_lines(view, now=now, tz=tz)),
    ]
    if view.touches:
        blocks.append(_section(_touch_list(view, now=now, tz=tz)))
    blocks.append(ActionsBlock(elements=_alert_buttons(view)))
    return alert_text(view), [b.to_dict() for b in blocks[:MESSAGE_BLOCKS_MAX]]


def alert_text(view: LeadView) -> str:
    """The notification fallback, worded by templates/alert.txt.j2 like the scorer's plain alert."""
    text = render("alert.txt.j2",
        ref=view.ref, tier=view.tier, name=_name(view), title=view.title, company_name=view.company_name,
        company_size=view.company_size, score=view.score, max_score=view.max_score, ask=_ask(view),
        summary=_capitalized(view.signal_summary), trial_day=view.trial_day, days_left=view.days_left,
        talk_track=view.talk_track,
    )
    return clip(esc(re.sub(r"\S*https?://\S*", "[link]", text.strip())), FALLBACK_MAX)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ask(view: LeadView) -> str | None:
    """What a fast-lane lead asked for ("requested a demo"), read back from the signal summary."""
    if view.tier != "fast_lane":
        return None
    for part in view.signal_summary.split("; "):
        if found := re.match(r"((?:requested|asked)\b.*?)(?: \(day \d+\))?$", part.strip()):
            return found.group(1)
    return None


def _status(view: LeadView) -> list[Block]:
    """What matters first: the lead stopped, its disposition, or a fast-lane ask waiting for a reply."""
    if view.stopped_reason:
        mark = "⛔" if view.state is PqlState.STOPPED_OPT_OUT else "🛑"
        return [_section(f"{mark} *Stopped: {esc(view.stopped_reason)}*")]
    if view.disposition:
        by = view.disposition_by or view.claimed_by or view.assigned_rep
        line = f"Disposition: *{DISPOSITION_LABELS.get(view.disposition, view.disposition)}*"
        line += f" by <@{by}>" if by else ""
        line += f" · {esc(clip(view.disposition_reason, NOTE_MAX))}" if view.disposition_reason else ""
        return [_section(line)]
    if view.tier == "fast_lane" and view.is_open and not view.touches:
        return [_section(_words("fast_lane_ask", ask=esc(_ask(view) or "asked to talk with us")))]
    return []


def _who(view: LeadView) -> str:
    lines = [f"*Who*\n{esc(_name(view))}", esc(view.title or "")]
    if view.email and view.email != _name(view):
        lines.append(esc(view.email))
    return "\n".join(line for line in lines if line)


def _company(view: LeadView) -> str:
    size = f"{view.company_size:,} people" if view.company_size else ""
    return "\n".join(p for p in ("*Company*", esc(view.company_name or view.domain or "unknown"), size) if p)


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


def _rep_lines(view: LeadView, *, now: datetime, tz: tzinfo) -> list[str]:
    if view.claimed_by:
        at = f" at {clock(view.claimed_at, now=now, tz=tz)}" if view.claimed_at else ""
        lines = [f"Claimed by <@{view.claimed_by}>{at}"]
    elif view.assigned_rep:
        lines = [f"{'Assigned to' if view.state is PqlState.ASSIGNED else 'Suggested rep:'} <@{view.assigned_rep}>"]
    else:
        lines = ["Queued: waiting for a rep with room today" if view.state is PqlState.QUEUED else "No rep yet"]
    if view.is_open and not view.touches:
        if view.sla_due_at:
            lines.append(sla_text(view.sla_due_at, now=now))
        elif view.tier != "fast_lane":  # a fast-lane ask already says "reply within 1 hour" up top
            lines.append(_words("sla_target", tier=view.tier))
    return lines


def _touch_line(touch: TouchView, *, now: datetime, tz: tzinfo) -> str:
    how = EMAIL_LABELS.get(touch.email_key or "") or TOUCH_CHANNELS.get(touch.channel, esc(touch.channel))
    note = f" · {esc(clip(touch.note, 200))}" if touch.note else ""
    return f"Touch {touch.number}: {how} · {clock(touch.at, now=now, tz=tz)}{note}"


def _touch_list(view: LeadView, *, now: datetime, tz: tzinfo) -> str:
    lines = [f"*Touches: {len(view.touches)} of {MAX_TOUCHES}*"]
    lines += [_touch_line(t, now=now, tz=tz) for t in view.touches]
    if view.is_open and view.touches_left <= 0:
        lines.append(_words("all_touches_done", limit=MAX_TOUCHES))
    return "\n".join(lines)


def _alert_buttons(view: LeadView) -> list[ButtonElement]:
    pql_id = view.pql_id
    details = _button("Details", Action.DETAILS, pql_id=pql_id)
    if view.stopped_reason or not view.is_open:
        return [details]
    if not view.claimed_by:
        return [_button("Claim", Action.CLAIM, pql_id=pql_id, style="primary"), details]
    if view.touches_left > 0:
        log = _button("Log touch", Action.LOG_TOUCH, pql_id=pql_id, style="primary")
        return [log, _button("Set disposition", Action.SET_DISPOSITION, pql_id=pql_id), details]
    return [_button("Set disposition", Action.SET_DISPOSITION, pql_id=pql_id, style="primary"), details]


# Modals ------------------------------------------------------------------------------------------------------

def details_modal(view: LeadView, *, now: datetime, tz: tzinfo) -> dict:
    """The handoff package (seed 004) and the three outreach emails of the kit."""
    touched = " · ".join(_rep_lines(view, now=now, tz=tz) + [f"{len(view.touches)} of {MAX_TOUCHES} touches"])
    blocks: list[Block] = [
        _header(f"{view.ref} · {_name(view)}"),
        _context(f"{TIER_LABELS.get(view.tier, esc(view.tier))} · {view.score}/{view.max_score} · {touched}"),
        *_handoff(view),
        DividerBlock(),
    ]
    sent = {t.email_key: t for t in view.touches if t.email_key}
    for key, label in EMAIL_LABELS.items():
        if (email := view.emails.get(key)) is None:
            continue
        variant = _email1_variant(email.subject) if key == "email1" else None
        title = f"*{label}{f' (variant {variant})' if variant else ''}*"
        if touch := sent.get(key):
            title += f" · sent {clock(touch.at, now=now, tz=tz)} (touch {touch.number})"
        blocks.append(_section(f"{title}\n*Subject:* {esc(email.subject)}\n\n{esc(email.body)}"))
    if not view.emails:
        blocks.append(_section("*Outreach emails*\nnone"))
    return _modal(View.DETAILS, f"{view.ref} details", blocks, view.pql_id, close="Close")


def _handoff(view: LeadView) -> list[Block]:
    package = view.handoff
    if package is None:
        return [_section("*Handoff package*\nnone yet")]
    return [
        _section(f"*Usage summary*\n{_bullets(package.usage_summary, 'none')}"),
        _section(f"*Company profile*\n{_bullets(package.company_profile, 'none')}"),
        _section(f"*Contact map*\n{_bullets(package.contact_map, 'none')}"),
        _section(f"*Recommended opening*\n{esc(package.recommended_opening) or 'none'}"),
        _section(f"*Upgrade blockers*\n{_bullets(package.upgrade_blockers, 'none')}"),
    ]


@cache
def _email1_subjects() -> dict[str, re.Pattern[str]]:
    """Variant letter -> a pattern of its template's subject line ({{ ... }} matches anything)."""
    patterns = {}
    for name in ENV.list_templates(filter_func=lambda n: re.fullmatch(r"emails/email1_\w\.txt\.j2", n) is not None):
        source = ENV.loader.get_source(ENV, name)[0]
        line = next((ln for ln in source.splitlines() if ln.startswith("Subject: ")), None)
        if line and "{%" not in line:
            parts = re.split(r"\{\{.*?\}\}", line.removeprefix("Subject: ").strip())
            patterns[name.split("_")[1][0].upper()] = re.compile(".+?".join(map(re.escape, parts)))
    return patterns


def _email1_variant(subject: str) -> str | None:
    """Which Email 1 variant (A, B, C, F) wrote this subject, when exactly one template could have."""
    matches = [letter for letter, pattern in _email1_subjects().items() if pattern.fullmatch(subject)]
    return matches[0] if len(matches) == 1 else None


def _lead_line(view: LeadView) -> str:
    company = f", {esc(view.company_name)}" if view.company_name else ""
    return f"*{esc(view.ref)}* · {esc(_name(view))}{company}"


def _select(input_id: Input, placeholder: str, labels: dict[str, str],
            initial: str | None = None) -> StaticSelectElement:
    chosen = Option(value=initial, text=labels[initial]) if initial in labels else None
    return StaticSelectElement(action_id=str(input_id), placeholder=placeholder, options=_options(labels),
                               initial_option=chosen)


def _text_input(input_id: Input, placeholder: str | None = None) -> PlainTextInputElement:
    return PlainTextInputElement(action_id=str(input_id), multiline=True, max_length=NOTE_MAX, placeholder=placeholder)


def _input_block(input_id: Input, label: str, element: Any, *, optional: bool = False,
                 hint: str | None = None) -> InputBlock:
    """block id == action id, so parsing reads values[id][id]."""
    return InputBlock(block_id=str(input_id), label=label, element=element, optional=optional, hint=hint)


def touch_modal(view: LeadView) -> dict:
    number = min(len(view.touches) + 1, MAX_TOUCHES)
    next_email = list(EMAIL_LABELS)[min(number, len(EMAIL_LABELS)) - 1]
    blocks = [
        _section(f"{_lead_line(view)}\n{len(view.touches)} of {MAX_TOUCHES} touches so far"),
        _input_block(Input.TOUCH_CHANNEL, "Channel",
                     _select(Input.TOUCH_CHANNEL, "Email, call or LinkedIn", TOUCH_CHANNELS)),
        _input_block(Input.TOUCH_EMAIL, "Which email", _select(Input.TOUCH_EMAIL, "Email of the kit", EMAIL_LABELS,
                                                                next_email),
                     optional=True, hint=_words("email_hint")),
        _input_block(Input.TOUCH_NOTE, "Note", _text_input(Input.TOUCH_NOTE, "A line or two"), optional=True),
        _input_block(Input.TOUCH_REPLIED, "Reply", CheckboxesElement(
            action_id=Input.TOUCH_REPLIED,
            options=[Option(value="replied", label="They replied (counts toward the reply rate)")]), optional=True),
    ]
    return _modal(View.LOG_TOUCH, f"Log touch {number} of {MAX_TOUCHES}", blocks, view.pql_id, submit="Log touch")


def disposition_modal(view: LeadView) -> dict:
    blocks = [
        _section(f"{_lead_line(view)}\n{len(view.touches)} of {MAX_TOUCHES} touches"),
        _context(_words("disposition_help")),
        _input_block(Input.DISPOSITION, "Disposition",
                     _select(Input.DISPOSITION, "Pick a disposition", DISPOSITION_LABELS, view.disposition)),
        _input_block(Input.DISPOSITION_REASON, "Reason", _text_input(Input.DISPOSITION_REASON), optional=True,
                     hint=_words("reason_hint")),
    ]
    return _modal(View.SET_DISPOSITION, "Set disposition", blocks, view.pql_id, submit="Save")


def _input(values: dict, input_id: Input) -> dict:
    return (values.get(str(input_id)) or {}).get(str(input_id)) or {}


def _selected(values: dict, input_id: Input) -> str | None:
    return (_input(values, input_id).get("selected_option") or {}).get("value")


def _typed(values: dict, input_id: Input) -> str | None:
    return (_input(values, input_id).get("value") or "").strip() or None


def parse_touch(state_values: dict) -> dict[str, str | None]:
    """A touch modal's `view.state.values` -> {"channel", "email_key", "note", "replied"}; missing is None."""
    checked = (state_values.get(Input.TOUCH_REPLIED) or {}).get(Input.TOUCH_REPLIED) or {}
    return {"channel": _selected(state_values, Input.TOUCH_CHANNEL),
            "email_key": _selected(state_values, Input.TOUCH_EMAIL),
            "note": _typed(state_values, Input.TOUCH_NOTE),
            "replied": any(o.get("value") == "replied" for o in checked.get("selected_options") or [])}


def parse_disposition(state_values: dict) -> dict[str, str | None]:
    """A disposition modal's `view.state.values` -> {"disposition", "reason"}; what's missing is None."""
    return {"disposition": _selected(state_values, Input.DISPOSITION),
            "reason": _typed(state_values, Input.DISPOSITION_REASON)}


# App Home ----------------------------------------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class HomeLead:
    ref: str  # PQL-42
    pql_id: int
    who: str
    company: str | None
    tier: str
    state: str  # a PqlState value
    sla_due_at: datetime | None
    touches: int
    next_touch_due_at: datetime | None


@dataclass(slots=True, frozen=True)
class HomeRep:
    rep_id: str
    name: str | None
    paused: bool
    active_leads: int
    new_today: int


def home(*, rep_id: str | None, is_manager: bool, paused: bool, leads: list[HomeLead], today_count: int, cap: int,
         queue: list[HomeLead], paused_reps: list[str], reps: list[HomeRep], now: datetime, tz: tzinfo) -> dict:
    """The App Home tab: a rep's own leads and pause switch, the team view for the manager, else what pqlbot is."""
    blocks: list[Block] = []
    if rep_id:
        blocks += _rep_home(paused=paused, leads=leads, today_count=today_count, cap=cap, now=now, tz=tz)
    if is_manager:
        blocks += [DividerBlock()] if blocks else []
        blocks += _team_home(queue=queue, paused_reps=paused_reps, reps=reps, cap=cap, now=now, tz=tz)
    if not blocks:
        blocks = [_header("pqlbot"), _section(_words("outsider")), _context(_words("how_to_join"))]
    return SlackView(type="home", blocks=blocks[:VIEW_BLOCKS_MAX]).to_dict()


def _rep_home(*, paused: bool, leads: list[HomeLead], today_count: int, cap: int, now: datetime,
              tz: tzinfo) -> list[Block]:
    switch = _button("Resume my assignments" if paused else "Pause my assignments", Action.PAUSE,
                     value="resume" if paused else "pause", style="primary" if paused else None)
    return [
        _header("Your PQLs"),
        _section(f"*{today_count} of {cap} new PQLs today*{' · ⏸ paused' if paused else ''}"),
        _section(_words("pause_explained", paused=paused, cap=cap), accessory=switch),
        DividerBlock(),
        _section(f"*Your open leads ({len(leads)})*"),
        *_lead_rows(leads, _words("no_open_leads"), now=now, tz=tz),
    ]


def _team_home(*, queue: list[HomeLead], paused_reps: list[str], reps: list[HomeRep], cap: int, now: datetime,
               tz: tzinfo) -> list[Block]:
    who_paused = ", ".join(f"<@{rep}>" for rep in paused_reps) or "nobody"
    blocks: list[Block] = [
        _header("Team"),
        _context(f"{len(queue)} waiting for a rep · paused: {who_paused}"),
        _section(f"*Queue ({len(queue)})*"),
        *_lead_rows(queue, _words("empty_queue"), now=now, tz=tz),
        _section("*Reps*"),
    ]
    if not reps:
        return [*blocks, _section(_words("no_reps"))]
    rows = []
    for rep in reps[: HOME_LIST_MAX]:
        name = f"*{esc(rep.name)}* <@{rep.rep_id}>" if rep.name else f"<@{rep.rep_id}>"
        status = "⏸ paused" if rep.paused else "taking leads"
        rows += [name, f"{status} · {rep.active_leads} active · {rep.new_today} of {cap} new today"]
    blocks += [_fields(*rows[i:i + 10]) for i in range(0, len(rows), 10)]  # a section holds 10 fields: 5 reps
    if len(reps) > HOME_LIST_MAX:
        blocks.append(_context(f"…and {len(reps) - HOME_LIST_MAX} more reps"))
    return blocks


def _lead_rows(leads: list[HomeLead], empty: str, *, now: datetime, tz: tzinfo) -> list[Block]:
    if not leads:
        return [_context(empty)]
    rows: list[Block] = [_lead_row(lead, now=now, tz=tz) for lead in leads[:HOME_LIST_MAX]]
    if len(leads) > HOME_LIST_MAX:
        rows.append(_context(f"…and {len(leads) - HOME_LIST_MAX} more"))
    return rows


def _lead_row(lead: HomeLead, *, now: datetime, tz: tzinfo) -> SectionBlock:
    company = f", {esc(lead.company)}" if lead.company else ""
    head = f"*{esc(lead.ref)}* · {TIER_LABELS.get(lead.tier, esc(lead.tier))} · {esc(lead.who)}{company}"
    facts = [_STATE_LABELS.get(lead.state, esc(str(lead.state)))]  # StrEnum keys match plain strings too
    if lead.touches == 0:
        facts.append(sla_text(lead.sla_due_at, now=now))
    facts.append(f"touches {lead.touches} of {MAX_TOUCHES}")
    if lead.touches >= MAX_TOUCHES:
        facts.append("set a disposition")
    elif due := lead.next_touch_due_at:
        when = clock(due, now=now, tz=tz)
        facts.append(f"next touch due {when}" if due >= now else f"next touch overdue since {when}")
    details = _button("Details", Action.DETAILS, pql_id=lead.pql_id)
    return _section(f"{head}\n{' · '.join(facts)}", accessory=details)
