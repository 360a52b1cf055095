"""The weekly review as Slack shows it: a header, the agenda's sections of figures, the action items and, on the
private copy, a Share button.

Pure, like the rest of this package: it lays out a `Review` (bot/review) it is given. Texts are escaped for
mrkdwn and clipped to the package's limits.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock

from bot.review import Review, fmt, sections, words
from bot.review.wording import table
from bot.slack.blocks import _button, _context, _header, _section
from bot.slack.ids import Action
from templates import esc


def blocks(review: Review, *, share: bool = False, tz: tzinfo | None = None,
           note: str | None = None) -> tuple[str, list[dict]]:
    """(notification text, blocks). With `share`, a Share button (for the private copy); `note` is an
    extra context line (mrkdwn, e.g. who shared it)."""
    m = review.metrics
    out: list[Block] = [_header(f"📊 {review.title}"), _context(esc(review.context(tz)))]
    for section in sections(review):
        lines = "\n".join(_line(row) for row in section["rows"])
        out.append(_section(f"*{section['title']}*\n{lines}"))
    out.append(DividerBlock())
    items = "\n".join(f"• {esc(item)}" for item in review.actions)
    out.append(_section(f"*{table('sections')['actions']}*\n{items}"))
    if note:
        out.append(_context(note))
    if share:
        out.append(ActionsBlock(elements=[_button(words("share_button"), Action.SHARE_REVIEW, value=review.key,
                                                  style="primary")]))
    fallback = words("fallback", label=m.period.label, pqls=m.pqls, acceptance=fmt(m.acceptance, "rate"),
                     sla=fmt(m.sla_compliance, "rate"))
    return fallback, [b.to_dict() for b in out]


def _line(row: dict[str, Any]) -> str:
    detail = f" ({esc(row['detail'])})" if row["detail"] else ""
    target = f" · target {esc(row['target'])}" if row["target"] else ""
    lead = "      " if row["indent"] else ""
    return f"{lead}{row['mark']} *{esc(row['label'])}*: {esc(row['value'])}{detail}{target}"
