"""The parts every Block Kit builder of pqlbot's uses: Slack's limits, the tier labels, the small block makers
(section, fields, context, header, button, modal and form inputs), and times and lists as Slack shows them.

Pure: plain values in, slack_sdk models out (their `to_dict()` checks most of Slack's limits; text is clipped to
the rest here). Text from the store is escaped for mrkdwn by the callers (`templates.esc`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
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

from bot.domain.lifecycle import PqlState
from bot.domain.sla import FIRST_TOUCH
from bot.services.lead_view import LeadView
from bot.slack.ids import Action, Input, LeadRef, View
from templates import clip, esc, sentences, span

TIER_LABELS = {"fast_lane": "⚡ Fast lane", "high": "🔥 High", "medium": "Medium"}
# Slack's limits (https://docs.slack.dev/reference/block-kit): slack_sdk checks most of them in to_dict(),
# but not the ones marked *, so clipping keeps every text inside them.
SECTION_MAX, FIELD_MAX, HEADER_MAX, BUTTON_MAX, TITLE_MAX = 3000, 2000, 150, 75, 24  # FIELD_MAX*
MESSAGE_BLOCKS_MAX, VIEW_BLOCKS_MAX = 50, 100  # MESSAGE_BLOCKS_MAX*
FALLBACK_MAX, NOTE_MAX = 3000, 1000
HOME_LIST_MAX = 20  # rows per App Home list; the rest are counted

STATE_LABELS = {
    PqlState.QUALIFIED: "new", PqlState.ALERTED: "new", PqlState.QUEUED: "queued for a rep",
    PqlState.ASSIGNED: "assigned, not claimed yet", PqlState.CLAIMED: "claimed", PqlState.WORKING: "working",
}
#: The longer sentences of templates/slack/blocks_words.j2; the SLA hours they quote come from bot/domain/sla.py.
words = sentences("slack/blocks_words.j2", one_line=False,
                  context={"first_touch_hours": {tier: due / timedelta(hours=1) for tier, due in FIRST_TOUCH.items()}})


# Text --------------------------------------------------------------------------------------------------------

def bullets(lines: list[str], empty: str) -> str:
    return "\n".join(f"• {esc(line)}" for line in lines) if lines else empty


def lead_name(view: LeadView) -> str:
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

def section(text: str, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_MAX)), accessory=accessory)


def fields(*texts: str) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=clip(t, FIELD_MAX)) for t in texts])


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(t, FIELD_MAX)) for t in texts if t])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_MAX), emoji=True))


def button(text: str, action: Action, *, pql_id: int | None = None, value: str | None = None,
            style: str | None = None) -> ButtonElement:
    value = value if value is not None else LeadRef(pql_id=pql_id).encode()
    return ButtonElement(text=clip(text, BUTTON_MAX), action_id=str(action), value=value, style=style)


def options(labels: dict[str, str]) -> list[Option]:
    return [Option(value=key, text=label) for key, label in labels.items()]


def modal(callback: View, title: str, blocks: list[Block], pql_id: int, *, submit: str | None = None,
           close: str = "Cancel") -> dict:
    return SlackView(type="modal", callback_id=str(callback), title=clip(title, TITLE_MAX), submit=submit,
                     close=close, blocks=blocks[:VIEW_BLOCKS_MAX],
                     private_metadata=LeadRef(pql_id=pql_id).encode()).to_dict()


def ephemeral(text: str) -> list[dict]:
    """One section for an ephemeral reply; `text` is mrkdwn already (mentions stay mentions)."""
    return [section(text).to_dict()]


def select(input_id: Input, placeholder: str, labels: dict[str, str],
            initial: str | None = None) -> StaticSelectElement:
    chosen = Option(value=initial, text=labels[initial]) if initial in labels else None
    return StaticSelectElement(action_id=str(input_id), placeholder=placeholder, options=options(labels),
                               initial_option=chosen)


def text_input(input_id: Input, placeholder: str | None = None) -> PlainTextInputElement:
    return PlainTextInputElement(action_id=str(input_id), multiline=True, max_length=NOTE_MAX, placeholder=placeholder)


def input_block(input_id: Input, label: str, element: Any, *, optional: bool = False,
                 hint: str | None = None) -> InputBlock:
    """block id == action id, so parsing reads values[id][id]."""
    return InputBlock(block_id=str(input_id), label=label, element=element, optional=optional, hint=hint)


