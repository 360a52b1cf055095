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
from bot.slack.blocks.parts import button, context, header, section
from bot.slack.ids import Action
from templates import esc


def blocks(review: Review, *, share: bool = False, tz: tzinfo | None = None,
           note: str | None = None) -> tuple[str, list[dict]]:
    """(notification text, blocks). With `share`, a Share button (for the private copy); `note` is an
    extra context line (mrkdwn, e.g. who shared it)."""
    m = review.metrics
    out: list[Block] = [header(f"📊 {review.title}"), context(esc(review.context(tz)))]
    for part in sections(review):
        lines = "\n".join(_line(row) for row in part["rows"])
        out.append(section(f"*{part['title']}*\n{lines}"))
    out.append(DividerBlock())
    items = "\n".join(f"• {esc(item)}" for item in review.actions)
    out.append(section(f"*{table('sections')['actions']}*\n{items}"))
    if note:
        out.append(context(note))
    if share:
        out.append(ActionsBlock(elements=[button(words("share_button"), Action.SHARE_REVIEW, value=review.key,
                                                  style="primary")]))
    fallback = words("fallback", label=m.period.label, pqls=m.pqls, acceptance=fmt(m.acceptance, "rate"),
                     sla=fmt(m.sla_compliance, "rate"))
    return fallback, [b.to_dict() for b in out]


def _line(row: dict[str, Any]) -> str:
    detail = f" ({esc(row['detail'])})" if row["detail"] else ""
    target = f" · target {esc(row['target'])}" if row["target"] else ""
    lead = "      " if row["indent"] else ""
    return f"{lead}{row['mark']} *{esc(row['label'])}*: {esc(row['value'])}{detail}{target}"
