"""The short sentences pqlbot says in Slack, from templates/slack/messages.j2 (one macro per message)."""

from __future__ import annotations

from typing import Any

from bot.outreach import ENV

_MESSAGES = ENV.get_template("slack/messages.j2")


def say(message: str, **values: Any) -> str:
    """Render one message: say("already_claimed", ref="PQL-4", by="U123")."""
    return " ".join(str(getattr(_MESSAGES.module, message)(**values)).split())


def escaped(text: str | None) -> str | None:
    """Text people typed (notes, reasons, names from product events), made inert for Slack: `<!channel>`
    in a note must not ping the channel, nor `<@U123>` mention anyone."""
    if text is None:
        return None
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
