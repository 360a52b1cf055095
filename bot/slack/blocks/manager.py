"""The Block Kit of the SLA clock's messages (bot/sweeps): the manager's card about one lead, a rep's
follow-up reminder, a plain note, and the rep-picking modal behind the card's Reassign and Claim-for buttons.

Pure, like the rest of bot/slack/blocks: each builder gets plain values (texts already mrkdwn and escaped)
and returns plain dicts. The sweeps never call these: they queue a typed notice, and bot/slack/blocks/notices.py
renders it with them when it is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.slack.blocks.parts import (
    TIER_LABELS,
    button,
    context,
    fields,
    input_block,
    modal,
    section,
    select,
)
from bot.slack.ids import Action, Input, View
from templates import esc, sentences

_words = sentences("slack/escalations.j2")


@dataclass(slots=True, frozen=True)
class Card:
    """One DM to the manager about one lead, as of when it was queued. Texts are mrkdwn, already escaped.
    A "manager_card" notice's payload holds these fields (bot/sweeps/common.py, `manager_card`)."""

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


_LABELS = {Action.REASSIGN: "Reassign", Action.CLAIM_FOR: "Claim for someone", Action.RELEASE: "Release",
           Action.DETAILS: "Details", Action.LOG_TOUCH: "Log touch", Action.SET_DISPOSITION: "Set disposition"}


def _buttons(pql_id: int, actions: tuple[Action, ...]) -> ActionsBlock:
    return ActionsBlock(elements=[button(_LABELS[action], action, pql_id=pql_id, style="primary" if n == 0 else None)
                                  for n, action in enumerate(actions)])


def card_blocks(card: Card) -> list[dict]:
    """The manager's DM: the lead, who has it, how late, what to do, and the buttons to do it."""
    company = f"\n{card.company}" if card.company else ""
    if card.stale:
        next_step = _words("stale_what_now")
    else:
        next_step = _words("what_now", claimed=card.claimed)
    blocks: list[Block] = [
        section(f"*{esc(card.heading)}*"),
        fields(f"*Lead*\n{esc(card.ref)} · {card.who}{company}\n{TIER_LABELS.get(card.tier, esc(card.tier))}",
                f"*Who has it*\n{card.holder}", f"*How late*\n{esc(card.late)}"),
        context(*(t for t in (card.note, next_step) if t)),
        _buttons(card.pql_id, card.actions),
    ]
    return [block.to_dict() for block in blocks]


def reminder_blocks(text: str, pql_id: int, *, ask_disposition: bool) -> list[dict]:
    """A follow-up reminder to the rep: the sentence, and the button that does the next step."""
    actions = (Action.SET_DISPOSITION, Action.DETAILS) if ask_disposition else \
        (Action.LOG_TOUCH, Action.SET_DISPOSITION, Action.DETAILS)
    return [section(text).to_dict(), _buttons(pql_id, actions).to_dict()]


def note_blocks(text: str) -> list[dict]:
    return [section(text).to_dict()]


def rep_modal(callback: View, *, pql_id: int, title: str, intro: str, reps: dict[str, str], submit: str) -> dict:
    """A modal with one choice: a rep of the roster (`reps`: user id -> label)."""
    blocks = [
        section(intro),
        input_block(Input.REP, "Rep", select(Input.REP, "Pick a rep", reps)),
    ]
    return modal(callback, title, blocks, pql_id, submit=submit)


def chosen_rep(state_values: dict) -> str | None:
    """The rep picked in a rep modal's `view.state.values`, else None (also for a state not shaped like Slack's)."""
    try:
        picked = ((state_values.get(str(Input.REP)) or {}).get(str(Input.REP)) or {})
        rep = (picked.get("selected_option") or {}).get("value") or picked.get("selected_user")
    except (AttributeError, TypeError):
        return None
    return rep if isinstance(rep, str) and "\x00" not in rep else None
