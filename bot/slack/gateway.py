"""The one module that calls Slack's Web API: a `WebClient` with retries, and the few calls pqlbot makes.

The client retries on its own: a 429 after the `Retry-After` Slack sends, 500/503 and dropped connections
with a short exponential backoff. What still fails after that surfaces to the caller as
`slack_sdk.errors.SlackApiError` (Slack answered, not ok) or a connection error (`OSError`,
`http.client.HTTPException`); the outbox (bot/slack/delivery.py) turns those into a later attempt.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.settings import Settings

#: Seconds a single HTTP request to Slack may take before it counts as a connection error.
TIMEOUT = 10


class ProportionalJitter(Jitter):
    """Up to half the interval again, at random (slack_sdk's default adds up to a whole second, which
    would swamp a short backoff)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


def retry_handlers(max_retries: int = 3, *, backoff: float = 0.5) -> list[RetryHandler]:
    """Rate limits (waits for Retry-After), server errors and connection errors, `max_retries` times in all
    (the handlers share one count per request). Server and connection errors wait `backoff` seconds, doubling
    per retry, plus jitter; a 429 waits what Retry-After says (plus up to a second, slack_sdk's own jitter)."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=ProportionalJitter())
    return [
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
        ConnectionErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
    ]


def make_client(token: str | None, base_url: str, *, max_retries: int = 3, backoff: float = 0.5,
                timeout: int = TIMEOUT) -> WebClient:
    """A WebClient for `base_url` (https://slack.com/api/ in production; a local stand-in in tests)."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(token=token, base_url=base_url, timeout=timeout,
                     retry_handlers=retry_handlers(max_retries, backoff=backoff))


class Gateway:
    """The Slack calls pqlbot makes, each a thin wrapper that returns just what callers keep."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, token: str | None, base_url: str, **kwargs: Any) -> Gateway:
        return cls(make_client(token, base_url, **kwargs))

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        """SLACK_BOT_TOKEN at SLACK_API_URL. Without a token the gateway still exists (Slack is off), but
        every call fails with Slack's `not_authed`."""
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        return cls.connect(token, settings.slack_api_url)

    def post(self, channel: str, text: str, blocks: list | None = None,
             thread_ts: str | None = None) -> tuple[str, str]:
        """A message in a channel (name or id), or in a thread of it; returns (channel id, ts)."""
        response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks or None,
                                                thread_ts=thread_ts, unfurl_links=False, unfurl_media=False)
        return response["channel"], response["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> None:
        """Edit a message pqlbot posted (channel must be the id Slack returned)."""
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks if blocks is not None else [])

    def ephemeral(self, channel: str, user: str, text: str, blocks: list | None = None) -> str:
        """A message only `user` sees, in `channel`; returns its message_ts."""
        response = self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks or None)
        return response.get("message_ts", "")

    def dm(self, user: str, text: str, blocks: list | None = None) -> tuple[str, str]:
        """A direct message from the bot to `user`; returns (DM channel id, ts)."""
        opened = self.client.conversations_open(users=user)
        return self.post(opened["channel"]["id"], text, blocks)

    def open_view(self, trigger_id: str, view: dict) -> dict:
        """Open a modal for an interaction; returns the view Slack made."""
        return self.client.views_open(trigger_id=trigger_id, view=view)["view"]

    def publish_home(self, user: str, view: dict) -> dict:
        """Set `user`'s App Home tab."""
        return self.client.views_publish(user_id=user, view=view)["view"]

    def upload_file(self, channel: str, path: str | Path, title: str, initial_comment: str | None = None) -> str:
        """Share a file (say the review's chart) in a channel (the id Slack returned); returns the file id.
        files_upload_v2 asks Slack for an upload URL, sends the bytes there, then completes the upload."""
        path = Path(path)
        response = self.client.files_upload_v2(channel=channel, file=str(path), filename=path.name, title=title,
                                               initial_comment=initial_comment)
        files = response.get("files") or []
        return files[0].get("id", "") if files else ""
