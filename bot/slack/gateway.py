"""The only code of pqlbot's that calls Slack's Web API: a `WebClient` with retries, the few calls pqlbot
makes, Slack's rate limits, and posting a message exactly once (looking for it before posting it again). Bolt is
handed the same client (bot/slack/app.py), for the auth.test it makes itself on the first request.

The client retries on its own 500/503 and dropped connections, with a short exponential backoff. What still fails
after that surfaces to the caller as `slack_sdk.errors.SlackApiError` (Slack answered, not ok) or a connection
error (`OSError`, `http.client.HTTPException`): `FAILURES`. The outbox (bot/slack/delivery.py) turns those into a
later attempt.

Rate limits are scheduled, never slept: a 429 holds back what Slack limited (a channel, for `chat.postMessage`:
Slack allows about one post a second per channel; the method, for any other call) until its `Retry-After` has
passed, and the call raises `RateLimited` at once. Until then a call to what is held raises `RateLimited` without
reaching Slack, and every other call goes on. Whoever called decides when to try again: the outbox puts the notice
back until then, a click's private answer is queued in the outbox (bot/slack/errors.py). No thread ever waits out
a Retry-After, so one limited channel holds up no DM, no other channel and no click. The holds are this process's
memory: Slack counts per app, so another process learns of a limit from one 429 of its own (Slack did nothing
then), which is all the store could have saved it.

`post_once` is for a message that must appear once (an alert, a thread reply). It carries Slack message metadata
naming what it is, and goes through a sibling client that retries nothing: after a failure Slack may have acted on
(a dropped connection, a timeout, a 5xx) it reads the channel or thread first (`find_posted`), up to the client's
retry count with its backoff, and adopts a message carrying that metadata instead of posting again.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.client import HTTPException
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.clock import Clock, utc_now
from bot.settings import Settings

log = logging.getLogger(__name__)
#: Seconds a single HTTP request to Slack may take before it counts as a connection error.
TIMEOUT = 10
#: What a failed call raises once the client has stopped retrying.
FAILURES = (SlackClientError, OSError, HTTPException)
#: Slack's answers that mean a token will never work: waiting or retrying does not help.
BAD_TOKEN = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                       "not_allowed_token_type"})
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
    """Server errors and connection errors, `max_retries` times in all (the handlers share one count per request),
    each after `backoff` seconds, doubling per retry, plus jitter. Not rate limits: a 429 is held by the gateway
    (`Gateway.held`) and never slept out in the caller's thread."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=ProportionalJitter())
    return [
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


class RateLimited(SlackClientError):
    """Slack said 429 to `limited` (a channel's posts, or a method), now or within its Retry-After: nothing was
    done, and calls to it are held back for `retry_after` seconds more."""

    def __init__(self, limited: str, retry_after: float) -> None:
        super().__init__(f"rate limited: {limited} for {retry_after:.0f} s")
        self.limited, self.retry_after = limited, retry_after


def error_code(error: Exception) -> str:
    """Slack's error code (`ratelimited`, `channel_not_found`, ...), else the kind of failure: never text
    that might quote a message."""
    if isinstance(error, RateLimited):
        return "ratelimited"
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if isinstance(error.response.data, dict) else None
        if isinstance(code, str) and _CODE.fullmatch(code):
            return code
        return f"http_{error.response.status_code}"
    return type(error).__name__


def retry_after(headers: dict | None) -> float:
    """The seconds a 429's Retry-After header asks for (a second when it sent none, as slack_sdk assumes)."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0


def _unclear(error: Exception) -> bool:
    """Whether Slack may have acted on a request that failed: a dropped connection, a timeout or a 5xx.
    (A 429, or an answer with ok false, means it did nothing.)"""
    if isinstance(error, SlackApiError):
        return error.response.status_code >= 500
    return isinstance(error, OSError | HTTPException)


class _Careful:
    """A sibling of `client` that retries nothing, and how often and how long `client` retries."""

    def __init__(self, client: WebClient) -> None:
        self.original = client
        self.client = WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                                ssl=client.ssl, proxy=client.proxy, headers=dict(client.headers), retry_handlers=[])
        server = next((h for h in client.retry_handlers if isinstance(h, ServerErrorRetryHandler)), None)
        self.retries = server.max_retry_count if server else 0
        self.pause = server.interval_calculator.calculate_sleep_duration if server else (lambda attempt: 0.0)


class Gateway:
    """The Slack calls pqlbot makes, each a thin wrapper that returns just what callers keep, and each held back
    while Slack's rate limit on it lasts (see the module docstring). `clock` times the holds."""

    def __init__(self, client: WebClient, *, clock: Clock = utc_now) -> None:
        self.client, self.clock = client, clock
        self._careful: _Careful | None = None  # made on the first post_once, from `client`
        self._careful_lock = threading.Lock()
        self._channel_ids: dict[str, str] = {}  # channel ids Slack answered with, by the name posted to
        self._held_until: dict[str, datetime] = {}  # what Slack limited, and until when
        self._held_lock = threading.Lock()

    @classmethod
    def connect(cls, token: str | None, base_url: str, *, clock: Clock = utc_now, **kwargs: Any) -> Gateway:
        return cls(make_client(token, base_url, **kwargs), clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utc_now) -> Gateway:
        """SLACK_BOT_TOKEN at SLACK_API_URL. Without a token the gateway still exists (Slack is off), but
        every call fails with Slack's `not_authed`."""
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        return cls.connect(token, settings.slack_api_url, clock=clock)

    # -- rate limits ----------------------------------------------------------------------------------------------

    def posts_to(self, channel: str) -> str:
        """What Slack limits when pqlbot posts to `channel` (a name or an id): that channel's posts."""
        return f"chat.postMessage {self.channel_id(channel) or channel}"

    def held(self, limited: str) -> float:
        """Seconds until Slack's rate limit on `limited` (`posts_to(channel)`, or a method's name) has passed; 0
        when it is not held."""
        with self._held_lock:
            until = self._held_until.get(limited)
            if until is None:
                return 0.0
            left = (until - self.clock()).total_seconds()
            if left <= 0:
                del self._held_until[limited]
                return 0.0
            return left

    def _unless_held(self, limited: str) -> None:
        if (left := self.held(limited)) > 0:
            raise RateLimited(limited, left)

    def _call(self, limited: str, call: Callable[[], Any]) -> Any:
        """`call()`, unless `limited` is held; a 429 holds it for Retry-After. Either way: `RateLimited`."""
        self._unless_held(limited)
        try:
            return call()
        except SlackApiError as error:
            if error.response.status_code != 429:
                raise
            seconds = retry_after(error.response.headers)
            with self._held_lock:
                self._held_until[limited] = self.clock() + timedelta(seconds=seconds)
            log.warning("Slack rate-limited %s: held back for %d s", limited, math.ceil(seconds))
            raise RateLimited(limited, seconds) from error

    # -- the calls ------------------------------------------------------------------------------------------------

    def post(self, channel: str, text: str, blocks: list | None = None,
             thread_ts: str | None = None) -> tuple[str, str]:
        """A message in a channel (name or id), or in a thread of it; returns (channel id, ts)."""
        response = self._call(self.posts_to(channel), lambda: self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts, unfurl_links=False,
            unfurl_media=False))
        return response["channel"], response["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> None:
        """Edit a message pqlbot posted (channel must be the id Slack returned)."""
        self._call("chat.update", lambda: self.client.chat_update(
            channel=channel, ts=ts, text=text, blocks=blocks if blocks is not None else []))

    def ephemeral(self, channel: str, user: str, text: str, blocks: list | None = None) -> str:
        """A message only `user` sees, in `channel`; returns its message_ts."""
        response = self._call("chat.postEphemeral", lambda: self.client.chat_postEphemeral(
            channel=channel, user=user, text=text, blocks=blocks or None))
        return response.get("message_ts", "")

    def dm(self, user: str, text: str, blocks: list | None = None) -> tuple[str, str]:
        """A direct message from the bot to `user`; returns (DM channel id, ts)."""
        opened = self._call("conversations.open", lambda: self.client.conversations_open(users=user))
        return self.post(opened["channel"]["id"], text, blocks)

    def open_view(self, trigger_id: str, view: dict) -> dict:
        """Open a modal for an interaction; returns the view Slack made."""
        return self._call("views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=view))["view"]

    def publish_home(self, user: str, view: dict) -> dict:
        """Set `user`'s App Home tab."""
        return self._call("views.publish", lambda: self.client.views_publish(user_id=user, view=view))["view"]

    def upload_file(self, channel: str, path: str | Path, title: str, initial_comment: str | None = None) -> str:
        """Share a file (say the review's chart) in a channel (the id Slack returned); returns the file id.
        files_upload_v2 asks Slack for an upload URL, sends the bytes there, then completes the upload."""
        path = Path(path)
        response = self._call("files.upload", lambda: self.client.files_upload_v2(
            channel=channel, file=str(path), filename=path.name, title=title, initial_comment=initial_comment))
        files = response.get("files") or []
        return files[0].get("id", "") if files else ""

    # -- what `pqlbot doctor` asks ----------------------------------------------------------------------------------

    def whoami(self) -> tuple[str, str, frozenset[str]]:
        """auth.test: (the bot's user id, the workspace's name, the bot token's scopes from Slack's
        `x-oauth-scopes` answer header). Raises like any call: `invalid_auth` for a token Slack does not know."""
        response = self._call("auth.test", self.client.auth_test)
        header = next((v for k, v in (response.headers or {}).items() if k.lower() == "x-oauth-scopes"), "")
        header = header[0] if isinstance(header, list | tuple) else header
        scopes = frozenset(part.strip() for part in (header or "").split(",") if part.strip())
        return response.get("user_id") or "", response.get("team") or "", scopes

    def user(self, user: str) -> tuple[str, bool]:
        """users.info: (a Slack user's real name, whether they are deactivated); Slack answers `user_not_found`
        for an id no one in the workspace has."""
        found = self._call("users.info", lambda: self.client.users_info(user=user)).get("user") or {}
        name = found.get("real_name") or (found.get("profile") or {}).get("real_name") or found.get("name") or user
        return name, bool(found.get("deleted"))

    def can_read(self, channel: str) -> None:
        """Whether the bot is in `channel` (an id): reads one message of it (conversations.history, the scope
        pqlbot already has), which Slack answers `not_in_channel` or `channel_not_found` when it is not."""
        self._call("conversations.history", lambda: self.client.conversations_history(channel=channel, limit=1))

    def socket_url(self, app_token: str) -> str:
        """apps.connections.open with an app-level token: the URL Socket Mode would connect to (`invalid_auth` for
        a token Slack does not know)."""
        return self._call("apps.connections.open",
                          lambda: self.client.apps_connections_open(app_token=app_token)).get("url") or ""

    # -- posting exactly once -------------------------------------------------------------------------------------

    def post_once(self, channel: str, text: str, blocks: list | None, *, metadata: dict, look_in: str | None,
                  since: datetime, look_first: bool, thread_ts: str | None = None) -> tuple[str, str, dict | None]:
        """Post a message that must appear once, carrying `metadata` ({"event_type": ..., "event_payload": {...}}):
        (channel id, ts, None), or (channel id, ts, payload) of the message an earlier try left in Slack, found by
        `find_posted` in `look_in` (or its thread `thread_ts`) since `since`. It looks before posting when
        `look_first` (an earlier attempt failed), and after an unclear failure, up to the client's retry count
        (with its backoff); the last failure is raised for the caller to retry later. While the channel's posts
        are held it raises `RateLimited` before reading anything; a rate limit met after an unclear failure raises
        that failure instead, so the caller's next try looks first (a rate limit alone is not an attempt)."""
        self._unless_held(self.posts_to(channel))
        careful = self._careful_client()
        unclear: Exception | None = None  # a failure in this call that Slack may have acted on
        for attempt in range(careful.retries + 1):
            try:
                if look_first:
                    found = self.find_posted(look_in, metadata, since=since, thread_ts=thread_ts)
                    if found is not None:
                        return found
                response = self._call(self.posts_to(channel), lambda: careful.client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts, metadata=metadata,
                    unfurl_links=False, unfurl_media=False))
                return response["channel"], response["ts"], None
            except RateLimited:
                if unclear is not None:  # the caller must know Slack may have it: the next try looks first
                    raise unclear from None
                raise
            except FAILURES as error:
                if not _unclear(error) or attempt == careful.retries:
                    raise
                look_first, unclear = True, error
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
                    page = self._call("conversations.history", lambda: self.client.conversations_history(**params))
                else:
                    page = self._call("conversations.replies",
                                      lambda: self.client.conversations_replies(ts=thread_ts, **params))
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
            if _unclear(error):
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
