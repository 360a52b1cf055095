"""Typed notices, rendered: the Block Kit of an outbox notice whose row says what to show as data.

A sweep queues a notice with its `text` and a `payload` naming a view and the values it needs; delivery
(bot/slack/delivery.py) calls `render_notice` when it sends the notice. The views:

- {"view": "manager_card", "pql_id": 4, "ref": "PQL-4", "who": ..., "company": ..., "tier": ..., "heading": ...,
  "holder": ..., "late": ..., "claimed": bool, "stale": bool, "note": str | None}: a `Card` to the manager.
- {"view": "reminder", "pql_id": 4, "ask_disposition": bool}: the notice's text and the next step's buttons.
- {"view": "note"}: the notice's text as a section.
"""

from __future__ import annotations

from bot.slack.blocks.manager import Card, card_blocks, note_blocks, reminder_blocks


def render_notice(payload: dict, text: str) -> list[dict]:
    """The blocks of a typed notice: its `payload` (see the module docstring) and its `text`."""
    fields = dict(payload)
    view = fields.pop("view", None)
    if view == "manager_card":
        return card_blocks(Card(**fields))
    if view == "reminder":
        return reminder_blocks(text, fields["pql_id"], ask_disposition=fields["ask_disposition"])
    if view == "note":
        return note_blocks(text)
    raise ValueError(f"unknown notice view {view!r}")
