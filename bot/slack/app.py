"""Build the Bolt app: one middleware puts the runtime in every listener's reach, and listeners are
registered per surface, each wrapped by bot.slack.errors.guarded. Over HTTP, `slack_route` checks each
request's signature, age and novelty (`SignedRequests`) before Bolt sees it."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import parse_qs

import sqlalchemy as sa
from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from sqlalchemy.dialects import postgresql
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.slack.listeners import actions, commands, home, manager
from bot.slack.runtime import Answering, Runtime
from bot.store.grouped import GroupWriter, Waiting
from bot.store.slack_requests import SEEN, forget_expired_requests

log = logging.getLogger(__name__)
#: Slack's own bound on a request's age (and on how far ahead of our clock it may be), in seconds.
WINDOW = 5 * 60
#: Slack's payloads are a few kilobytes; a modal's state stays well under this.
MAX_BODY = 1024 * 1024
#: What the route remembers of one process's recent requests, most. Slack sends a team far fewer than
#: this in five minutes; past it the route answers 503 (Slack retries) rather than forget a signature.
CAPACITY = 100_000
#: How long past the window a request stays recorded in the store, in seconds: hosts whose clocks disagree
#: by less than this never forget a request that another host's age check still accepts.
CLOCK_SKEW = 60
#: Every this many requests it records, a process also deletes the records past their time, so the table
#: stays small even where the scheduled sweeps (which delete them every minute) do not run.
TIDY_EVERY = 1_000
_SEEN = SEEN


class SignedRequests:
    """Which requests really come from Slack: signed with the signing secret (v0, HMAC-SHA256 over
    `v0:<timestamp>:<body>`), stamped within `WINDOW` of now, and not seen before.

    A replay is the very same signed request sent again: same body, timestamp and signature. Every
    accepted (timestamp, signature) pair is remembered until its timestamp leaves the window (after
    that the age check refuses it anyway), so each signed request is dispatched at most once.

    The memory is per process: bounded (`capacity` pairs; when full of live pairs a request is turned
    away rather than a pair forgotten), thread-safe, and lost on restart. It is always asked first.

    On a PostgreSQL store (`store`), where several `pqlbot serve` processes or hosts may share Slack's
    traffic, a pair new to this process is then recorded in the store too (`slack_requests_seen`, keyed
    by the pair): if another process recorded it already, the request is a replay sent to the wrong
    process and is refused here just the same. When the store cannot be reached the request is answered
    503 (Slack retries) and forgotten again, never dispatched unchecked. Records go once their timestamp
    is `CLOCK_SKEW` past the window: deleted by a scheduled sweep (bot/sweeps.py), and every `TIDY_EVERY`
    records by the process recording them, so the table cannot grow without bound.

    On SQLite the memory stays in the process alone: a SQLite store serves one process, and a write there
    would wait behind ingestion for SQLite's single write lock, on the path of every ack. A restart then
    forgets the last five minutes' pairs; a replay needs a captured request and a restart within them.

    Slack's retries are not replays. X-Slack-Request-Timestamp is when Slack sent the request, and the
    signature covers it; Slack retries an event up to three times over about five minutes (X-Slack-Retry-Num),
    which only works if each retry is stamped and signed afresh (the first stamp would fail the age check),
    so a retry is a new pair here and is dispatched like any request. Should a retry ever repeat a pair
    already seen, its first delivery was accepted and dispatched, so it is answered 200 without dispatching
    it again, with X-Slack-No-Retry.
    """

    def __init__(self, signing_secret: str | None, *, store: sa.Engine | None = None, window: int = WINDOW,
                 capacity: int = CAPACITY, clock: Callable[[], float] = time.time,
                 tidy_every: int = TIDY_EVERY) -> None:
        self._secret = signing_secret.encode() if signing_secret else None
        self.window, self.capacity, self.clock = window, capacity, clock
        shared = store is not None and store.dialect.name == "postgresql"
        self._store = _StoreRecord(store, clock, tidy_every=tidy_every) if shared else None
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[int, tuple[str, str]]] = []  # a heap: (when the pair may go, pair)
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether replays are refused across every process on the store (PostgreSQL), not this one's alone."""
        return self._store is not None

    @property
    def configured(self) -> bool:
        return self._secret is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def authentic(self, body: bytes, timestamp: str, signature: str) -> bool:
        """Signed with the secret and stamped within the window (either side of now)."""
        if self._secret is None or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        if abs(self.clock() - int(timestamp)) > self.window:
            return False
        expected = "v0=" + hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace"))

    def first_time(self, timestamp: str, signature: str) -> bool | None:
        """Remember the pair: True when new, False when seen before, None when the memory is full."""
        pair, now = (timestamp, signature), self.clock()
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                self._seen.discard(heapq.heappop(self._expiry)[1])
            if pair in self._seen:
                return False
            if len(self._seen) >= self.capacity:
                return None
            self._seen.add(pair)
            heapq.heappush(self._expiry, (int(timestamp) + self.window, pair))
            return True

    def first_time_in_store(self, timestamp: str, signature: str) -> Future[bool]:
        """Record a pair `first_time` found new in the store too (PostgreSQL; see the class). Resolves to True
        when no process recorded it before, False when one did, or to the store's error; on an error the pair
        is forgotten here as well, so that nothing remembers a request that was never served."""
        if self._store is None:
            done: Future[bool] = Future()
            done.set_result(True)
            return done
        pair = (timestamp, signature)
        recorded = self._store.submit(pair, datetime.fromtimestamp(int(timestamp) + self.window + CLOCK_SKEW, UTC))

        def forget_unless_recorded(future: Future[bool]) -> None:
            if future.cancelled() or future.exception() is not None:
                with self._lock:
                    self._seen.discard(pair)  # its heap entry goes in its time, discarding nothing then

        recorded.add_done_callback(forget_unless_recorded)
        return recorded


class _StoreRecord:
    """The store's side of `SignedRequests`: one thread (a GroupWriter) records every pair that is waiting,
    in one statement.

    Why one thread: when each request recorded its own pair, each held a worker thread and a pooled connection
    while the store answered, and fifty clicks at once queued for both (bench/ack.py: the median ack went from
    55 to 130 ms). Here those fifty cost about a dozen statements on one connection. After every `tidy_every`
    records it also deletes the expired ones, before the next group."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float], *, tidy_every: int,
                 idle_seconds: float = 5.0) -> None:
        self.engine, self.clock, self.tidy_every = engine, clock, tidy_every
        self._writer: GroupWriter[tuple[tuple[str, str], datetime]] = GroupWriter(
            self._serve, name="pqlbot-slack-seen", idle_seconds=idle_seconds)
        self._since_tidy = 0

    def submit(self, pair: tuple[str, str], forget_after: datetime) -> Future[bool]:
        return self._writer.submit((pair, forget_after))

    def _serve(self, group: Waiting) -> None:
        if self._since_tidy >= self.tidy_every:  # before this group is answered, so no caller races the delete
            self._since_tidy = 0
            self._tidy()
        rows = [{"timestamp": timestamp, "signature": signature, "forget_after": forget_after}
                for ((timestamp, signature), forget_after), _ in group]
        try:
            with self.engine.begin() as connection:
                # Visible to every process at commit all the same; what it saves is the wait for the disk, on
                # the ack's path. A crash of the database server could lose the last moment's records.
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                inserted = connection.execute(postgresql.insert(_SEEN).values(rows).on_conflict_do_nothing()
                                              .returning(_SEEN.c.timestamp, _SEEN.c.signature))
                new = {(timestamp, signature) for timestamp, signature in inserted}
        except Exception as error:  # noqa: BLE001 (each waiting request gets it, and answers for itself)
            for _, future in group:
                future.set_exception(error)
            return
        self._since_tidy += len(new)
        for (pair, _), future in group:
            future.set_result(pair in new)

    def _tidy(self) -> None:
        try:
            with self.engine.begin() as connection:
                forget_expired_requests(connection, datetime.fromtimestamp(self.clock(), UTC))
        except sa.exc.SQLAlchemyError as error:  # the sweeps or the next tidy will do it
            log.warning("slack: could not delete expired request records: %s", type(error).__name__)


#: The signature checks of each app `build_app` made, for `slack_route` to find.
_SIGNED: weakref.WeakKeyDictionary[App, SignedRequests] = weakref.WeakKeyDictionary()


class _QuietVerification(logging.Filter):
    """Bolt logs a refused request's whole body at INFO: for a slash command or a modal that is what
    people typed (emails included). Keep the line, drop the body and signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid request signature detected"):
            record.msg, record.args = "Invalid request signature detected", ()
        return True


def _quiet_bolt_verification() -> None:
    bolt_logger = logging.getLogger("slack_bolt.RequestVerification")
    if not any(isinstance(f, _QuietVerification) for f in bolt_logger.filters):
        bolt_logger.addFilter(_QuietVerification())


def build_app(runtime: Runtime, *, listener_executor: Executor | None = None) -> App:
    """`listener_executor` runs listeners after their ack (Bolt's thread pool unless a test gives its own).

    Beside the app, a twin with the same listeners serves what slack_route acked already (clicks, events):
    it runs each listener in the thread that dispatches it, since its ack goes nowhere, so the size of
    slack_route's after-ack pool bounds how much of that work runs at once, and this app's pool stays free
    for the slash commands and modal submissions that are still waiting for their answer."""
    settings = runtime.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    executor = listener_executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="slack")
    app = _bolt(runtime, secret, executor, process_before_response=False)  # ack first, then the work
    _ACKED[app] = _bolt(runtime, secret, executor, process_before_response=True)
    _SIGNED[app] = SignedRequests(secret, store=runtime.pipeline.engine)
    _quiet_bolt_verification()  # slack_route refuses bad signatures first; this covers any other way in
    return app


def _bolt(runtime: Runtime, secret: str | None, executor: Executor, *, process_before_response: bool) -> App:
    app = App(
        listener_executor=executor,
        signing_secret=secret,
        client=runtime.gateway.client,
        token_verification_enabled=False,  # no auth.test round trip at start-up; a bad token shows on first call
        process_before_response=process_before_response,
    )

    @app.middleware
    def with_runtime(context, next):  # noqa: A002 (Bolt's name)
        context["runtime"] = runtime
        next()

    commands.register(app)
    actions.register(app)
    home.register(app)
    manager.register(app)
    return app


#: The twin of each app build_app made, for requests slack_route has acked already.
_ACKED: weakref.WeakKeyDictionary[App, App] = weakref.WeakKeyDictionary()
#: Payload types whose ack Slack reads nothing from: acked by slack_route before Bolt runs.
ACKED_AT_ONCE = frozenset({"block_actions", "event_callback"})
#: Where those requests are dispatched after their ack, unless build_app's caller gives its own.
_AFTER_ACK = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-after-ack")


def _log_failed_dispatch(done: Future) -> None:
    if (error := done.exception()) is not None:  # listeners are guarded; this is Bolt itself failing
        log.error("slack: dispatching a request after its ack failed: %s", type(error).__name__, exc_info=error)


def _refused(status: int, error: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status, headers)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY (counted while streaming: chunked bodies too)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _ssl_check(raw: bytes) -> bool:
    if b"ssl_check=" not in raw:  # the common case, without unquoting a whole payload
        return False
    try:
        return parse_qs(raw.decode("ascii")).get("ssl_check") == ["1"]
    except (UnicodeDecodeError, ValueError):
        return False


def slack_route(app: App, path: str = "/slack/events", *, signed: SignedRequests | None = None,
                answering: Answering | None = None, after_ack: Executor | None = None) -> Route:
    """Slack's requests over HTTP, served by the same server as ingestion (uvicorn), not Bolt's dev server.

    Before Bolt parses anything, the request must be authentic and new (see `SignedRequests`): a forged,
    stale or replayed request is answered 401 and never dispatched, and junk that is not even signed
    cannot reach Bolt's parser (which would answer 500 on a body it cannot read). On PostgreSQL, "new"
    means new to every process on the store; when the store cannot tell, the answer is 503.

    Button clicks and events are acked here, before Bolt runs: Slack reads nothing from their ack (only a
    modal submission's or a slash command's answer carries anything), so they are answered 200 at once
    and dispatched on `after_ack`. Fifty reps clicking together then wait on nothing but this check, not
    on each other's claims. Answers are counted in `answering`, so background work can let a burst pass."""
    answering = answering or Answering()
    after_ack, acked = after_ack or _AFTER_ACK, _ACKED.get(app, app)
    signed = _SIGNED.get(app) if signed is None else signed  # (not `or`: an empty memory is falsy)
    if signed is None:
        raise ValueError("slack_route needs an app made by build_app, or `signed`")
    if not signed.configured:
        log.warning("SLACK_SIGNING_SECRET is not set: every request to %s is refused (401)", path)

    async def endpoint(request: Request) -> Response:
        try:
            raw = await _read_body(request)
        except ClientDisconnect:
            return _refused(400, "client disconnected")
        if raw is None:
            return _refused(413, f"body is over {MAX_BODY} bytes")
        if _ssl_check(raw):  # Slack's certificate probe for slash commands is not signed; Bolt answers it so
            return Response(status_code=200)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not signed.authentic(raw, timestamp, signature):
            return _refused(401, "invalid request")
        seen = signed.first_time(timestamp, signature)
        if seen is None:
            log.warning("slack: too many requests in %d s to remember; answering 503", signed.window)
            return _refused(503, "busy, retry")
        if seen and signed.shared:
            try:
                seen = await asyncio.wrap_future(signed.first_time_in_store(timestamp, signature))
            except sa.exc.SQLAlchemyError as error:
                log.warning("slack: the store could not say whether a request was seen before (%s); answering 503",
                            type(error).__name__)
                return _refused(503, "store unavailable, retry")
        if not seen:
            if "x-slack-retry-num" in request.headers:  # already served once: stop Slack retrying
                return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})
            log.warning("slack: refused a replayed request (timestamp %s)", timestamp)
            return _refused(401, "replayed request")
        try:
            bolt_request = BoltRequest(body=raw.decode("utf-8"), query=request.url.query,
                                       headers=dict(request.headers))
        except Exception:  # noqa: BLE001 (signed, so from Slack, yet unreadable: not a 500)
            log.warning("slack: a signed request could not be read as one of Slack's")
            return _refused(400, "not a Slack request")
        with answering:
            if bolt_request.body.get("type") in ACKED_AT_ONCE:
                after_ack.submit(acked.dispatch, bolt_request).add_done_callback(_log_failed_dispatch)
                return Response(status_code=200)
            # Bolt's listeners are synchronous (the store is): run them off the event loop.
            bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, bolt_request)
        return Response(bolt_response.body, status_code=bolt_response.status,
                        headers={k: v[0] for k, v in bolt_response.headers.items() if v})

    return Route(path, endpoint, methods=["POST"])
