"""The lead's modals: Details (seed 004's handoff package and the three outreach emails of the kit), Log touch and
Set disposition, and reading what people submitted in them."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from functools import cache

from slack_sdk.models.blocks import Block, CheckboxesElement, DividerBlock, Option

from bot.domain.kit import DISPOSITION_LABELS, EMAIL_LABELS, MAX_TOUCHES, TOUCH_CHANNELS
from bot.services.lead_view import CONTACTS_MAX, LeadView
from bot.slack.blocks.alert import LINE_MAX, acv_line, band_line, fired_words, rep_lines, what_fired
from bot.slack.blocks.alert import title as lead_title
from bot.slack.blocks.parts import (
    TIER_LABELS,
    bullets,
    clock,
    context,
    header,
    input_block,
    lead_name,
    modal,
    section,
    select,
    text_input,
    words,
)
from bot.slack.ids import Input, View
from templates import ENV, clip, esc


def details_modal(view: LeadView, *, now: datetime, tz: tzinfo) -> dict:
    """The handoff package (seed 004) and the three outreach emails of the kit."""
    touched = " · ".join(rep_lines(view, now=now, tz=tz) + [f"{len(view.touches)} of {MAX_TOUCHES} touches"])
    account = f"{band_line(view)} · {acv_line(view)} · " if view.band is not None else ""
    blocks: list[Block] = [
        header(f"{view.ref} · {lead_title(view)}"),
        context(f"{TIER_LABELS.get(view.tier, esc(view.tier))} · {view.score}/{view.max_score} · {account}{touched}"),
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
        blocks.append(section(f"{title}\n*Subject:* {esc(email.subject)}\n\n{esc(email.body)}"))
    if not view.emails:
        blocks.append(section("*Outreach emails*\nnone"))
    return modal(View.DETAILS, f"{view.ref} details", blocks, view.pql_id, close="Close")


def _handoff(view: LeadView) -> list[Block]:
    package = view.handoff
    if package is None:
        return [section("*Handoff package*\nnone yet")]
    return [
        *what_fired(view, nurture=True),
        section(f"*Usage summary*\n{bullets(package.usage_summary, 'none')}"),
        section(f"*Company profile*\n{bullets(package.company_profile, 'none')}"),
        *_contact_map(package.contact_map),
        section(f"*Recommended opening*\n{esc(package.recommended_opening) or 'none'}"),
        section(f"*Upgrade blockers*\n{bullets(package.upgrade_blockers, 'none')}"),
    ]


def _contact_map(lines: list[str]) -> list[Block]:
    """Seed 004's contact map: every user up to CONTACTS_MAX, ten to a section (each clipped to fit one), then how
    many more there are."""
    if not lines:
        return [section("*Contact map*\nnone")]
    shown = [f"• {clip(esc(line), LINE_MAX)}" for line in lines[:CONTACTS_MAX]]
    if len(lines) > CONTACTS_MAX:
        shown.append(fired_words("more", count=len(lines) - CONTACTS_MAX))
    title = f"*Contact map* ({len(lines)})" if len(lines) > 1 else "*Contact map*"
    return [section("\n".join(([title] if start == 0 else []) + shown[start:start + 10]))
            for start in range(0, len(shown), 10)]


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
    return f"*{esc(view.ref)}* · {esc(lead_name(view))}{company}"


def touch_modal(view: LeadView) -> dict:
    number = min(len(view.touches) + 1, MAX_TOUCHES)
    next_email = list(EMAIL_LABELS)[min(number, len(EMAIL_LABELS)) - 1]
    blocks = [
        section(f"{_lead_line(view)}\n{len(view.touches)} of {MAX_TOUCHES} touches so far"),
        input_block(Input.TOUCH_CHANNEL, "Channel",
                     select(Input.TOUCH_CHANNEL, "Email, call or LinkedIn", TOUCH_CHANNELS)),
        input_block(Input.TOUCH_EMAIL, "Which email", select(Input.TOUCH_EMAIL, "Email of the kit", EMAIL_LABELS,
                                                                next_email),
                     optional=True, hint=words("email_hint")),
        input_block(Input.TOUCH_NOTE, "Note", text_input(Input.TOUCH_NOTE, "A line or two"), optional=True),
        input_block(Input.TOUCH_REPLIED, "Reply", CheckboxesElement(
            action_id=Input.TOUCH_REPLIED,
            options=[Option(value="replied", label="They replied (counts toward the reply rate)")]), optional=True),
    ]
    return modal(View.LOG_TOUCH, f"Log touch {number} of {MAX_TOUCHES}", blocks, view.pql_id, submit="Log touch")


def disposition_modal(view: LeadView) -> dict:
    blocks = [
        section(f"{_lead_line(view)}\n{len(view.touches)} of {MAX_TOUCHES} touches"),
        context(words("disposition_help")),
        input_block(Input.DISPOSITION, "Disposition",
                     select(Input.DISPOSITION, "Pick a disposition", DISPOSITION_LABELS, view.disposition)),
        input_block(Input.DISPOSITION_REASON, "Reason", text_input(Input.DISPOSITION_REASON), optional=True,
                     hint=words("reason_hint")),
    ]
    return modal(View.SET_DISPOSITION, "Set disposition", blocks, view.pql_id, submit="Save")


def handoff_modal(view: LeadView) -> dict:
    """Hand the lead to another team: which one (those that take hand-offs) and a note for the receiving rep."""
    blocks = [
        section(f"{_lead_line(view)}\n{len(view.touches)} of {MAX_TOUCHES} touches"),
        context(words("handoff_help")),
        input_block(Input.TEAM, "Hand to", select(Input.TEAM, "Pick a team", view.handoff_teams)),
        input_block(Input.HANDOFF_NOTE, "Note for them", text_input(Input.HANDOFF_NOTE), optional=True),
    ]
    return modal(View.HAND_OFF, "Hand off", blocks, view.pql_id, submit="Hand off")


def parse_handoff(state_values: dict) -> dict[str, str | None]:
    """A hand-off modal's `view.state.values` -> {"team", "note"}; missing is None."""
    return {"team": _selected(state_values, Input.TEAM), "note": _typed(state_values, Input.HANDOFF_NOTE)}


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


