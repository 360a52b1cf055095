"""The short sentences pqlbot says in Slack, from templates/slack/messages.j2 (one macro per message)."""

from __future__ import annotations

from typing import Any

from bot.outreach import ENV

_MESSAGES = ENV.get_template("slack/messages.j2")


def say(message: str, **values: Any) -> str:
    """Render one message: say("already_claimed", ref="PQL-4", by="U123")."""
    return " ".join(str(getattr(_MESSAGES.module, message)(**values)).split())
