"""The only code of pqlbot's that calls Slack's Web API: a `WebClient` with retries, the few calls pqlbot
makes, and posting a message exactly once (looking for it before posting it again). Bolt is handed the same
client (bot/slack/app.py), for the auth.test it makes itself on the first request.

The client retries on its own: a 429 after the `Retry-After` Slack sends, 500/503 and dropped connections
with a short exponential backoff. What still fails after that surfaces to the caller as
`slack_sdk.errors.SlackApiError` (Slack answered, not ok) or a connection error (`OSError`,
`http.client.HTTPException`): `FAILURES`. The outbox (bot/slack/delivery.py) turns those into a later attempt.

`post_once` is for a message that must appear once (an alert, a thread reply). It carries Slack message metadata
naming what it is, and goes through a sibling client that retries 429s only (Slack did nothing then): after a
failure Slack may have acted on (a dropped connection, a timeout, a 5xx) it reads the channel or thread first
(`find_posted`), up to the client's retry count with its backoff, and adopts a message carrying that metadata
instead of posting again.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from datetime import datetime
from http.client import HTTPException
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.settings import Settings

log = logging.getLogger(__name__)
#: Seconds a single HTTP request to Slack may take before it counts as a connection error.
TIMEOUT = 10
#: What a failed call raises once the client has stopped retrying.
FAILURES = (SlackClientError, OSError, HTTPException)
#: A look for an earlier post reads at most this many messages, in pages of LOOKUP_PAGE, before it gives up.
LOOKUP_PAGE, LOOKUP_MAX = 200, 1000
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")


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


def error_code(error: Exception) -> str:
    """Slack's error code (`ratelimited`, `channel_not_found`, ...), else the kind of failure: never text
    that might quote a message."""
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if isinstance(error.response.data, dict) else None
        if isinstance(code, str) and _CODE.fullmatch(code):
            return code
        return f"http_{error.response.status_code}"
    return type(error).__name__


def _unclear(error: Exception) -> bool:
    """Whether Slack may have acted on a request that failed: a dropped connection, a timeout or a 5xx.
    (A 429, or an answer with ok false, means it did nothing.)"""
    if isinstance(error, SlackApiError):
        return error.response.status_code >= 500
    return isinstance(error, OSError | HTTPException)


class _Careful:
    """A sibling of `client` that retries 429s only, and how often and how long `client` retries the rest."""

    def __init__(self, client: WebClient) -> None:
        self.original = client
        self.client = WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                                ssl=client.ssl, proxy=client.proxy, headers=dict(client.headers),
                                retry_handlers=[h for h in client.retry_handlers
                                                if isinstance(h, RateLimitErrorRetryHandler)])
        server = next((h for h in client.retry_handlers if isinstance(h, ServerErrorRetryHandler)), None)
        self.retries = server.max_retry_count if server else 0
        self.pause = server.interval_calculator.calculate_sleep_duration if server else (lambda attempt: 0.0)


class Gateway:
    """The Slack calls pqlbot makes, each a thin wrapper that returns just what callers keep."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._careful: _Careful | None = None  # made on the first post_once, from `client`
        self._careful_lock = threading.Lock()
        self._channel_ids: dict[str, str] = {}  # channel ids Slack answered with, by the name posted to

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

    # -- posting exactly once -------------------------------------------------------------------------------------

    def post_once(self, channel: str, text: str, blocks: list | None, *, metadata: dict, look_in: str | None,
                  since: datetime, look_first: bool, thread_ts: str | None = None) -> tuple[str, str, dict | None]:
        """Post a message that must appear once, carrying `metadata` ({"event_type": ..., "event_payload": {...}}):
        (channel id, ts, None), or (channel id, ts, payload) of the message an earlier try left in Slack, found by
        `find_posted` in `look_in` (or its thread `thread_ts`) since `since`. It looks before posting when
        `look_first` (an earlier attempt failed), and after an unclear failure, up to the client's retry count
        (with its backoff); the last failure is raised for the caller to retry later."""
        careful = self._careful_client()
        for attempt in range(careful.retries + 1):
            if look_first:
                found = self.find_posted(look_in, metadata, since=since, thread_ts=thread_ts)
                if found is not None:
                    return found
            try:
                response = careful.client.chat_postMessage(channel=channel, text=text, blocks=blocks or None,
                                                           thread_ts=thread_ts, metadata=metadata,
                                                           unfurl_links=False, unfurl_media=False)
                return response["channel"], response["ts"], None
            except FAILURES as error:
                if not _unclear(error) or attempt == careful.retries:
                    raise
                look_first = True
                time.sleep(careful.pause(attempt))
        raise AssertionError("unreachable")

    def find_posted(self, channel: str | None, metadata: dict, *, since: datetime,
                    thread_ts: str | None = None) -> tuple[str, str, dict] | None:
        """A message in `channel` (or in the thread `thread_ts` of it) since `since` that carries `metadata`'s
        event type and payload (its "version" aside): (channel, ts, its payload). Raises when Slack cannot be read
        just now (the caller retries later); None when it is not there, or cannot be looked for at all (no channel
        id, no scope: channels:history, groups:history for a private channel), and then it is to be posted."""
        if channel is None:
            log.warning("cannot look for an earlier %s post: the alerts channel's id is not known yet",
                        metadata["event_type"])
            return None
        params = {"channel": channel, "oldest": f"{since.timestamp():.6f}", "limit": LOOKUP_PAGE,
                  "include_all_metadata": True}
        read = 0
        try:
            while read < LOOKUP_MAX:
                if thread_ts is None:
                    page = self.client.conversations_history(**params)
                else:
                    page = self.client.conversations_replies(ts=thread_ts, **params)
                messages = page.get("messages") or []
                read += len(messages)
                for message in messages:
                    if thread_ts is not None and message.get("ts") == thread_ts:
                        continue  # a thread's parent is not one of its replies
                    posted = message.get("metadata") or {}
                    payload = posted.get("event_payload") or {}
                    if posted.get("event_type") == metadata["event_type"] and all(
                            payload.get(k) == v for k, v in metadata["event_payload"].items() if k != "version"):
                        return channel, message["ts"], payload
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    return None
                params["cursor"] = cursor
        except SlackApiError as error:
            if _unclear(error) or error.response.status_code == 429:
                raise
            log.warning("cannot look for an earlier %s post (%s); posting it", metadata["event_type"],
                        error_code(error))
            return None
        log.warning("no earlier %s post in the last %d messages; posting it", metadata["event_type"], read)
        return None

    def remember_channel(self, name: str, channel_id: str) -> None:
        """That a message posted to `name` (a #name) went to `channel_id`; an id needs no remembering."""
        if not _CHANNEL_ID.fullmatch(name):
            self._channel_ids[name] = channel_id

    def channel_id(self, name: str) -> str | None:
        """The id to read a channel by: `name` itself when it is one, else the id Slack answered with when this
        gateway last posted to it (`remember_channel`); None when not known."""
        if _CHANNEL_ID.fullmatch(name):
            return name
        return self._channel_ids.get(name)

    def _careful_client(self) -> _Careful:
        with self._careful_lock:
            if self._careful is None or self._careful.original is not self.client:
                self._careful = _Careful(self.client)
            return self._careful
