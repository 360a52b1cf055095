"""A local stand-in for Slack's Web API, so tests drive the real slack_sdk over real HTTP on loopback.

    with SlackStandIn() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url)
        ...
        assert len(slack.posted("C0ALERTS")) == 1

It answers the methods pqlbot uses the way Slack does (ids, ts, `ok`/`error`, message `metadata`,
`conversations.history`/`conversations.replies` with `oldest` and paging), records every request as a
`Call` in `.calls` (failed attempts too), keeps what was posted per channel in `.history(channel)`, and
injects faults on demand: `.fail_next(...)` for the next requests to a method and `.fail_ratio(...)` for a
deterministic share of all requests. It only ever listens on 127.0.0.1.

A dropped connection comes in the two kinds real Slack has: dropped before Slack acted (nothing happened,
`fail_next(..., drop=True)`) and dropped after it acted (the message is posted, the answer is lost,
`fail_next(..., drop=True, after=True)`). `fail_ratio` mixes both with 429s and 500s.

Slack's rate limits as Slack applies them: `limit(channel_or_method, seconds)` answers 429 to every post to that
channel (or call to that method) until `seconds` have passed on the stand-in's clock, each with the Retry-After
left. `skew` sets Slack's clock off ours (message ts), and `before_acting` lets a test hold a request before Slack
acts on it.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ALERTS_CHANNEL_ID = "C0ALERTS"
BOT_USER = "UBOT"
BOT_ID = "B0PQLBOT"
TEAM = "T0PQLBOT"
#: Form fields Slack takes as JSON strings (slack_sdk sends them form-encoded for non-chat methods).
_JSON_FIELDS = {"blocks", "attachments", "view", "files", "metadata"}
#: The Web API methods the stand-in answers; anything else is {"ok": false, "error": "unknown_method"}.
METHODS = frozenset({
    "auth.test", "chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.push",
    "views.update", "views.publish", "conversations.open", "users.info", "files.getUploadURLExternal",
    "files.completeUploadExternal", "conversations.history", "conversations.replies", "apps.connections.open",
})
#: The bot scopes auth.test reports by default (Slack's `x-oauth-scopes` header): what manifest.yml asks for.
MANIFEST_SCOPES = frozenset({"channels:history", "chat:write", "commands", "files:write", "groups:history",
                             "im:write", "users:read"})
DROP = 0  # the status a Call records when the connection was closed without an answer


@dataclass(slots=True)
class Call:
    """One request as received; unpacks as (method, params, headers)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200  # what the stand-in answered; DROP (0) when it closed the socket instead
    response: dict | None = None  # for a drop after processing: the answer the caller never got
    processed: bool = False  # Slack acted on it (answered 200, or acted and then dropped the connection)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def token(self) -> str | None:
        auth = next((v for k, v in self.headers.items() if k.lower() == "authorization"), "")
        return auth.removeprefix("Bearer ").strip() or self.params.get("token")

    def __iter__(self) -> Iterator[Any]:
        return iter((self.method, self.params, self.headers))


@dataclass(slots=True, frozen=True)
class Fault:
    status: int = 429  # 429 answers with Retry-After; any other status answers with that status
    retry_after: int = 1
    drop: bool = False  # close the socket without answering
    after: bool = False  # with drop: act on the request first (post the message), then drop
    error: str | None = None  # answer 200 {"ok": false, "error": error} instead (say "missing_scope")


@dataclass
class Message:
    channel: str
    ts: str
    text: str | None
    blocks: list | None
    thread_ts: str | None = None
    user: str | None = None  # set for ephemeral messages: who sees it
    edits: list[dict] = field(default_factory=list)  # earlier (text, blocks) pairs, oldest first
    metadata: dict | None = None  # {"event_type": ..., "event_payload": {...}} as posted

    def as_slack(self, *, metadata: bool = True) -> dict:
        message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": self.ts, "text": self.text or ""}
        if self.blocks:
            message["blocks"] = self.blocks
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.metadata and metadata:
            message["metadata"] = self.metadata
        return message


class SlackStandIn:
    """A Slack-compatible Web API on http://127.0.0.1:<free port>/api/, served from a daemon thread.

    Also takes what listeners send to a `response_url` under /respond/ (see `respond_url`).
    """

    def __init__(self, *, channels: dict[str, str] | None = None) -> None:
        #: Channel names (with #) and the ids they resolve to; other #names get a made-up stable id.
        self.channels = {"#pql-alerts": ALERTS_CHANNEL_ID, **(channels or {})}
        #: Real names users.info answers with, by user id (others get "User <id>").
        self.users: dict[str, str] = {}
        #: Tokens Slack no longer knows (revoked, or never issued): every call with one answers `invalid_auth`.
        self.invalid_tokens: set[str] = set()
        #: The bot token's scopes, as auth.test reports them in its `x-oauth-scopes` header.
        self.scopes: set[str] = set(MANIFEST_SCOPES)
        #: User ids users.info answers `user_not_found` for (every other id is a real user).
        self.missing_users: set[str] = set()
        #: Channel ids (or #names) the bot has not been invited to: reading them answers `not_in_channel`.
        self.not_in: set[str] = set()
        #: Seconds each API answer takes (widens race windows in concurrency tests).
        self.latency = 0.0
        #: Where message ts come from: None for a counter from 1700000000 (stable ids), or a function
        #: returning epoch seconds (a test's clock), so `oldest`/`latest` filters mean what they say.
        self.clock: Callable[[], float] | None = None
        #: Seconds Slack's clock is off the stand-in's `clock` (negative: behind), in the ts it gives messages.
        self.skew = 0.0
        #: Called with each request Slack has acted on, after acting and before answering, outside the lock:
        #: a test can block in it to hold the answer back (say, to kill the caller while it waits).
        self.on_answer: Callable[[Call], None] | None = None
        #: Called with each request before Slack acts on it (after injected faults and rate limits), outside the
        #: lock: a test can block in it to hold a send back before anything is posted.
        self.before_acting: Callable[[Call], None] | None = None
        self._limits: dict[str, float] = {}  # a channel id or a method, and when Slack's limit on it ends
        self.calls: list[Call] = []
        self.responses: list[dict] = []  # what handlers said through response_url (at /respond/...)
        self.messages: dict[str, list[Message]] = defaultdict(list)
        self.files: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._chaos: tuple[float, random.Random, int] | None = None
        self._ts = itertools.count(1)
        self._last_ts = Decimal(0)
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slack-standin", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.root = f"http://{host}:{port}/"
        self.url = f"{self.root}api/"

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection -------------------------------------------------------------------------------

    def fail_next(self, method: str, times: int = 1, status: int = 429, retry_after: int = 1, *,
                  drop: bool = False, after: bool = False, error: str | None = None) -> None:
        """The next `times` requests to `method` ("*" for any) fail: 429 + Retry-After, another status
        (500, 503...), with `drop=True` a connection closed without an answer (with `after=True` too, once
        Slack has acted on the request: the message is posted, the answer lost), or with `error` Slack's
        refusal (200, ok false)."""
        with self._lock:
            self._faults[method].extend([Fault(status, retry_after, drop, after, error)] * times)

    def fail_ratio(self, ratio: float, seed: int = 0, *, retry_after: int = 0) -> None:
        """From now on a deterministic `ratio` of requests (same seed, same sequence) fails with an even mix
        of 429s (Retry-After drawn from 0..`retry_after`), 500s, connections dropped before Slack acts and
        connections dropped after it acted. `fail_ratio(0)` turns it off."""
        with self._lock:
            self._chaos = (ratio, random.Random(seed), retry_after) if ratio > 0 else None

    def heal(self) -> None:
        """No more injected faults."""
        with self._lock:
            self._faults.clear()
            self._chaos = None

    def limit(self, what: str, seconds: float) -> None:
        """Slack rate-limits `what` (a channel's posts, by name or id, a method, or "respond": every response_url)
        for `seconds` from now: each request to it meanwhile is answered 429 with the Retry-After left, as Slack
        does."""
        key = what if "." in what or what == "respond" else self.channel_id(what)
        with self._lock:
            self._limits[key] = self.now() + seconds

    def now(self) -> float:
        """The stand-in's clock: the test's when it set one, else the real one."""
        return self.clock() if self.clock is not None else time.time()

    def _retry_after(self, method: str, params: dict) -> int | None:
        """The Retry-After to answer a request under a rate limit with; None when it is not limited."""
        keys = [method]
        if method == "chat.postMessage" and params.get("channel"):
            keys.append(self.channel_id(params["channel"]))
        with self._lock:
            ends = max((self._limits.get(key, 0.0) for key in keys), default=0.0)
        left = ends - self.now()
        return max(int(left + 0.999), 1) if left > 0 else None

    def _fault_for(self, method: str) -> Fault | None:
        with self._lock:
            for key in (method, "*"):
                if self._faults[key]:
                    return self._faults[key].popleft()
            if self._chaos is not None:
                ratio, rng, retry_after = self._chaos
                if rng.random() < ratio:
                    return rng.choice([Fault(429, rng.randint(0, retry_after)), Fault(500), Fault(drop=True),
                                       Fault(drop=True, after=True)])
        return None

    # -- what happened -----------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Every request to `method`, answered or not, in arrival order."""
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def posted(self, channel: str | None = None) -> list[Call]:
        """chat.postMessage requests that posted a message (failed attempts left out), optionally to
        one channel (by the name or id it was sent to, or the id it resolved to)."""
        return [call for call in self.calls_to("chat.postMessage") if call.ok and (
            channel is None or channel in (call.params.get("channel"), call.response["channel"]))]

    def history(self, channel: str) -> list[Message]:
        """The messages in a channel (name or id), thread replies included, oldest first."""
        with self._lock:
            return list(self.messages.get(self.channel_id(channel), []))

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.history(channel) if m.thread_ts == ts]

    # -- Slack's behaviour -------------------------------------------------------------------------------

    def channel_id(self, channel: str) -> str:
        if channel in self.channels:
            return self.channels[channel]
        if channel.startswith("#"):
            return "C" + re.sub(r"[^A-Z0-9]", "", channel.upper())[:10]
        if channel[:1] in ("U", "W"):
            return "D" + channel  # posting to a user id posts in the DM with them
        return channel

    def _next_ts(self) -> str:
        if self.clock is None:
            n = next(self._ts) * 100
            return f"{1_700_000_000 + n // 1_000_000}.{n % 1_000_000:06d}"
        # Unique and increasing, as Slack's are within a channel, even when the clock stands still.
        self._last_ts = max(Decimal(f"{self.clock() + self.skew:.6f}"), self._last_ts + Decimal("0.000100"))
        return f"{self._last_ts:.6f}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages.get(channel, []) if m.ts == ts), None)

    def answer(self, method: str, p: dict[str, Any], token: str | None) -> dict:
        """Slack's answer to `method` with params `p` (called under the lock)."""
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xox") or token in self.invalid_tokens:
            return {"ok": False, "error": "invalid_auth"}
        if method not in METHODS:
            return {"ok": False, "error": "unknown_method"}
        return getattr(self, "_" + method.replace(".", "_"))(p)

    def _auth_test(self, p: dict) -> dict:
        return {"ok": True, "url": "https://pqlbot-test.slack.com/", "team": "pqlbot test", "user": "pqlbot",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}

    def _apps_connections_open(self, p: dict) -> dict:
        # Socket Mode's first call, with the app-level token: no socket is served here, so a token the stand-in
        # accepts gets a URL nothing listens on (the client then keeps reconnecting, as after a drop).
        return {"ok": True, "url": "ws://127.0.0.1:9/link"}

    def _chat_postMessage(self, p: dict) -> dict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        channel = self.channel_id(p["channel"])
        metadata = p.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and metadata.get("event_type")
                                         and isinstance(metadata.get("event_payload"), dict)):
            return {"ok": False, "error": "invalid_metadata_format"}
        message = Message(channel, self._next_ts(), p.get("text"), p.get("blocks"), p.get("thread_ts") or None,
                          metadata=metadata)
        self.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.as_slack()}

    @staticmethod
    def _stamp(p: dict, name: str) -> Decimal | None:
        value = p.get(name)
        if value in (None, ""):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return Decimal(-1)

    def _page(self, found: list[Message], p: dict) -> dict:
        """Slack's reading of oldest/latest/inclusive/limit/cursor/include_all_metadata over `found`."""
        oldest, latest = self._stamp(p, "oldest"), self._stamp(p, "latest")
        if Decimal(-1) in (oldest, latest):
            return {"ok": False, "error": "invalid_ts_oldest" if oldest == Decimal(-1) else "invalid_ts_latest"}
        inclusive = str(p.get("inclusive", "")).lower() in ("1", "true")

        def within(message: Message) -> bool:
            ts = Decimal(message.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        found = [m for m in found if within(m)]
        limit = min(max(int(p.get("limit") or 100), 1), 999)
        cursor = str(p.get("cursor") or "")
        start = int(cursor.removeprefix("next:")) if cursor.startswith("next:") else 0
        page = found[start:start + limit]
        more = start + limit < len(found)
        metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        return {"ok": True, "messages": [m.as_slack(metadata=metadata) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""}}

    def _conversations_history(self, p: dict) -> dict:
        """Top-level messages of a channel, newest first. Like Slack, it takes channel ids only."""
        channel = p.get("channel") or ""
        if not channel or channel.startswith("#"):
            return {"ok": False, "error": "channel_not_found"}
        if channel in {self.channel_id(c) for c in self.not_in}:
            return {"ok": False, "error": "not_in_channel"}
        top = [m for m in self.messages.get(channel, []) if m.thread_ts is None and m.user is None]
        return self._page(sorted(top, key=lambda m: Decimal(m.ts), reverse=True), p)

    def _conversations_replies(self, p: dict) -> dict:
        """A thread, its parent first, then the replies oldest first."""
        channel = p.get("channel") or ""
        if not channel or channel.startswith("#"):
            return {"ok": False, "error": "channel_not_found"}
        parent = self._find(channel, p.get("ts") or "")
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        replies = sorted((m for m in self.messages.get(channel, []) if m.thread_ts == parent.ts and m.user is None),
                         key=lambda m: Decimal(m.ts))
        answer = self._page(replies, p)
        if answer["ok"]:
            metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
            answer["messages"].insert(0, parent.as_slack(metadata=metadata))
        return answer

    def _chat_update(self, p: dict) -> dict:
        channel = self.channel_id(p.get("channel") or "")
        message = self._find(channel, p.get("ts") or "")
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.edits.append({"text": message.text, "blocks": message.blocks})
        message.text = p.get("text", message.text)
        if "blocks" in p:
            message.blocks = p["blocks"] or None
        return {"ok": True, "channel": channel, "ts": message.ts, "text": message.text or "",
                "message": message.as_slack()}

    def _chat_postEphemeral(self, p: dict) -> dict:
        if not p.get("channel") or not p.get("user"):
            return {"ok": False, "error": "channel_not_found" if not p.get("channel") else "user_not_in_channel"}
        ts = self._next_ts()
        channel = self.channel_id(p["channel"])
        self.messages[channel].append(Message(channel, ts, p.get("text"), p.get("blocks"), user=p["user"]))
        return {"ok": True, "message_ts": ts}

    def _view(self, p: dict, *required: str) -> dict:
        missing = [name for name in required if not p.get(name)]
        if missing:
            return {"ok": False, "error": f"invalid_arguments: missing {missing[0]}"}
        view = p.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = p.get("view_id") or self._next_id("V")
        return {"ok": True, "view": {**view, "id": view_id, "team_id": TEAM, "hash": f"{view_id}.h"}}

    def _views_open(self, p: dict) -> dict:
        return self._view(p, "trigger_id")

    def _views_push(self, p: dict) -> dict:
        return self._view(p, "trigger_id")

    def _views_update(self, p: dict) -> dict:
        if not p.get("view_id") and not p.get("external_id"):
            return {"ok": False, "error": "not_found"}
        return self._view(p)

    def _views_publish(self, p: dict) -> dict:
        return self._view(p, "user_id")

    def _conversations_open(self, p: dict) -> dict:
        users = p.get("users") or ""
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0].strip()}}

    def _users_info(self, p: dict) -> dict:
        user = p.get("user") or ""
        if not user or user in self.missing_users:
            return {"ok": False, "error": "user_not_found"}
        name = self.users.get(user, f"User {user}")
        return {"ok": True, "user": {"id": user, "team_id": TEAM, "name": user.lower(), "real_name": name,
                                     "tz": "America/New_York", "is_bot": False,
                                     "profile": {"real_name": name, "display_name": name.split()[0]}}}

    def _files_getUploadURLExternal(self, p: dict) -> dict:
        if not p.get("filename") or not p.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        self.files[file_id] = {"id": file_id, "name": p["filename"], "length": int(p["length"]), "content": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.root}upload/{file_id}"}

    def _files_completeUploadExternal(self, p: dict) -> dict:
        described = p.get("files") or []
        if not described or any(self.files.get(f.get("id"), {}).get("content") is None for f in described):
            return {"ok": False, "error": "file_not_found"}
        shared = []
        for item in described:
            file = self.files[item["id"]]
            file.update(title=item.get("title") or file["name"], channel=p.get("channel_id"),
                        initial_comment=p.get("initial_comment"), thread_ts=p.get("thread_ts"))
            shared.append({"id": file["id"], "name": file["name"], "title": file["title"],
                           "size": len(file["content"])})
        if p.get("channel_id"):
            channel = self.channel_id(p["channel_id"])
            text = p.get("initial_comment") or ""
            self.messages[channel].append(Message(channel, self._next_ts(), text, None, p.get("thread_ts")))
        return {"ok": True, "files": shared}

    def upload(self, file_id: str, content: bytes) -> bool:
        with self._lock:
            file = self.files.get(file_id)
            if file is None:
                return False
            file["content"] = content
            return True


def _parse(content_type: str, body: bytes) -> dict[str, Any]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if kind == "application/json":
        return json.loads(body)
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            params[name] = payload if part.get_filename() else payload.decode()
        return params
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for name in _JSON_FIELDS & params.keys():
        if isinstance(params[name], str):
            try:
                params[name] = json.loads(params[name])
            except ValueError:
                pass
    return params


def _handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: dict | None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode() if payload is not None else b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the caller is gone (killed, or timed out): nobody reads this answer
                self.close_connection = True

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            body = self._body()
            if split.path.startswith("/upload/"):
                ok = standin.upload(split.path.removeprefix("/upload/"), body)
                self._send(200 if ok else 404, {"ok": ok})
                return
            if split.path.startswith("/respond/"):
                # A slash command's or button's response_url: Slack answers a bare "ok" (or 429, while
                # `limit("respond", ...)` lasts).
                retry_after = standin._retry_after("respond", {})
                if retry_after is not None:
                    self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
                    return
                with standin._lock:
                    standin.responses.append(json.loads(body) if body else {})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            if not split.path.startswith("/api/"):
                self._send(404, {"ok": False, "error": "not_found"})
                return
            method = split.path.removeprefix("/api/")
            if standin.latency:
                time.sleep(standin.latency)
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            try:
                params.update(_parse(self.headers.get("Content-Type", ""), body))
            except ValueError:
                self._send(200, {"ok": False, "error": "invalid_json"})
                return
            call = Call(method, _decode_json_fields(params), dict(self.headers.items()))
            fault = standin._fault_for(method)
            if fault is not None and fault.drop:
                call.status = DROP
                with standin._lock:
                    if fault.after:  # Slack acted; the answer is lost on the way back
                        call.response = standin.answer(method, call.params, call.token)
                        call.processed = True
                    standin.calls.append(call)
                self._drop()
                return
            if fault is not None and fault.error:
                call.response = {"ok": False, "error": fault.error}
                with standin._lock:
                    standin.calls.append(call)
                self._send(200, call.response)
                return
            if fault is not None:
                call.status = fault.status
                call.response = {"ok": False, "error": "ratelimited" if fault.status == 429 else "internal_error"}
                headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
                with standin._lock:
                    standin.calls.append(call)
                self._send(fault.status, call.response, headers)
                return
            retry_after = standin._retry_after(method, call.params)
            if retry_after is not None:
                call.status, call.response = 429, {"ok": False, "error": "ratelimited"}
                with standin._lock:
                    standin.calls.append(call)
                self._send(429, call.response, {"Retry-After": str(retry_after)})
                return
            if standin.before_acting is not None:
                standin.before_acting(call)
            with standin._lock:
                call.response = standin.answer(method, call.params, call.token)
                call.processed = True
                standin.calls.append(call)
            if standin.on_answer is not None:
                standin.on_answer(call)
            scopes = {"x-oauth-scopes": ",".join(sorted(standin.scopes))} if method == "auth.test" else None
            self._send(200, call.response, scopes)

        do_POST = do_PUT = do_GET = _serve

    return Handler
