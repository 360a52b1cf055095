"""Slack's requests over HTTP, served by the same server as ingestion (uvicorn), not Bolt's dev server: one route,
whose endpoint reads the body, checks the request is authentic and new (bot/slack/verify.py), then dispatches it,
acked at once or answered by Bolt."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from urllib.parse import parse_qs

import sqlalchemy as sa
from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.slack.app import acked_twin, signature_check
from bot.slack.runtime import Answering
from bot.slack.verify import RefusalLog, SignedRequests
from bot.web.body import TooLarge, read_body

log = logging.getLogger(__name__)
#: Slack's payloads are a few kilobytes; a modal's state stays well under this.
MAX_BODY = 1024 * 1024
#: Payload types whose ack Slack reads nothing from: acked by slack_route before Bolt runs.
ACKED_AT_ONCE = frozenset({"block_actions", "event_callback"})
#: Where those requests are dispatched after their ack, unless slack_route's caller gives its own.
_AFTER_ACK = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-after-ack")


def slack_route(app: App, path: str = "/slack/events", *, signed: SignedRequests | None = None,
                answering: Answering | None = None, after_ack: Executor | None = None) -> Route:
    """Slack's requests over HTTP, for an app made by build_app (bot/slack/app.py).

    Before Bolt parses anything, the request must be authentic and new (see `SignedRequests`): a forged,
    stale or replayed request is answered 401 and never dispatched, and junk that is not even signed
    cannot reach Bolt's parser (which would answer 500 on a body it cannot read). "New" means new to the
    store: to every process on it, and to this one before it restarted; when the store cannot tell, the
    answer is 503.

    Button clicks and events are acked here, before Bolt runs: Slack reads nothing from their ack (only a
    modal submission's or a slash command's answer carries anything), so they are answered 200 at once
    and dispatched on `after_ack`. Fifty reps clicking together then wait on nothing but this check, not
    on each other's claims. Answers are counted in `answering`, so background work can let a burst pass."""
    answering = answering or Answering()
    refusals = RefusalLog(log)
    after_ack, acked = after_ack or _AFTER_ACK, acked_twin(app)
    signed = signature_check(app) if signed is None else signed  # (not `or`: an empty memory is falsy)
    if signed is None:
        raise ValueError("slack_route needs an app made by build_app, or `signed`")
    if not signed.configured:
        log.warning("SLACK_SIGNING_SECRET is not set: every request to %s is refused (401)", path)

    async def endpoint(request: Request) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        if _ssl_check(raw):  # Slack's certificate probe for slash commands is not signed; Bolt answers it so
            return Response(status_code=200)
        refused = await _unless_authentic_and_new(signed, raw, request.headers, refusals)
        if refused is not None:
            return refused
        bolt_request = _bolt_request(raw, request)
        if isinstance(bolt_request, Response):
            return bolt_request
        return await _dispatch(bolt_request, app=app, acked=acked, after_ack=after_ack, answering=answering)

    return Route(path, endpoint, methods=["POST"])


# The endpoint's steps, in order ------------------------------------------------------------------------------------

async def _body(request: Request) -> bytes | Response:
    """The body, or the answer to a request whose body is over MAX_BODY or never came."""
    try:
        return await read_body(request, MAX_BODY)
    except ClientDisconnect:
        return _refused(400, "client disconnected")
    except TooLarge:
        return _refused(413, f"body is over {MAX_BODY} bytes")


def _ssl_check(raw: bytes) -> bool:
    if b"ssl_check=" not in raw:  # the common case, without unquoting a whole payload
        return False
    try:
        return parse_qs(raw.decode("ascii")).get("ssl_check") == ["1"]
    except (UnicodeDecodeError, ValueError):
        return False


async def _unless_authentic_and_new(signed: SignedRequests, raw: bytes, headers: Headers,
                                    refusals: RefusalLog) -> Response | None:
    """None for a request signed by Slack, within the window and seen nowhere before; else the answer: 401 (forged,
    stale or replayed), 503 (the memory is full, or the store cannot say), or 200 without dispatching for Slack's
    retry of a request already served. Each 401 is logged at WARNING with its reason (`RefusalLog`: a few lines a
    minute per reason, however many come), never with the body, the signature or the secret."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    reason = signed.refusal(raw, timestamp, signature)
    if reason is not None:
        refusals.refused(reason.split(":")[0], f"a request (401): {reason}")
        return _refused(401, "invalid request")
    seen = signed.first_time(timestamp, signature)
    if seen is None:
        log.warning("slack: too many requests in %d s to remember; answering 503", signed.window)
        return _refused(503, "busy, retry")
    if seen and signed.recorded:
        try:
            seen = await asyncio.wrap_future(signed.first_time_in_store(timestamp, signature))
        except sa.exc.SQLAlchemyError as error:
            log.warning("slack: the store could not say whether a request was seen before (%s); answering 503",
                        type(error).__name__)
            return _refused(503, "store unavailable, retry")
    if seen:
        return None
    if "x-slack-retry-num" in headers:  # already served once: stop Slack retrying
        return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})
    refusals.refused("replay", f"a replayed request (timestamp {timestamp}): the very same signed request was "
                     "served before (401)")
    return _refused(401, "replayed request")


def _bolt_request(raw: bytes, request: Request) -> BoltRequest | Response:
    """The request as Bolt reads it, or 400 for a signed one that is not Slack's shape."""
    try:
        return BoltRequest(body=raw.decode("utf-8"), query=request.url.query, headers=dict(request.headers))
    except Exception:  # noqa: BLE001 (signed, so from Slack, yet unreadable: not a 500)
        log.warning("slack: a signed request could not be read as one of Slack's")
        return _refused(400, "not a Slack request")


async def _dispatch(bolt_request: BoltRequest, *, app: App, acked: App, after_ack: Executor,
                    answering: Answering) -> Response:
    """Acked at once (a click or an event: 200 now, `acked` runs it on `after_ack`), or answered by Bolt (a slash
    command or a modal submission, whose answer Slack reads). Bolt's listeners are synchronous (the store is):
    they run off the event loop."""
    with answering:
        if bolt_request.body.get("type") in ACKED_AT_ONCE:
            after_ack.submit(acked.dispatch, bolt_request).add_done_callback(_log_failed_dispatch)
            return Response(status_code=200)
        bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, bolt_request)
    return Response(bolt_response.body, status_code=bolt_response.status,
                    headers={k: v[0] for k, v in bolt_response.headers.items() if v})


def _log_failed_dispatch(done: Future) -> None:
    if (error := done.exception()) is not None:  # listeners are guarded; this is Bolt itself failing
        log.error("slack: dispatching a request after its ack failed: %s", type(error).__name__, exc_info=error)


def _refused(status: int, error: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status, headers)
