"""HTTP ingestion, Segment-compatible: `POST /v1/track`, `POST /v1/batch`, and `GET /healthz`.

- Auth is the shared INGEST_TOKEN, as `Authorization: Bearer <token>` or the way Segment sends a
  write key, `Basic base64(<token>:)`. With no token configured ingestion answers 503: an open
  endpoint would let anyone invent PQLs.
- A batch is not all-or-nothing. Its valid calls are stored and scored in one transaction even when
  others are rejected; the answer is then 400 listing each rejected call by index with its reason.
  Segment does not retry a 400, so those calls are dropped upstream; resending the fixed batch is
  safe because stored calls come back as duplicates (messageId is the idempotency key).
- A store failure answers 503 so the sender (Segment) retries; bad input never becomes a 500.
- Logs carry counts only: event contents hold emails, and the token must never reach a log.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.pipeline import Pipeline
from scoring.events import EventError, parse_event

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
Handler = Callable[[Pipeline, bytes], tuple[dict, dict]]


class Rejected(Exception):
    """A request that cannot be served: answered `{"error": reason}` with `status`."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def _reply(path: str, status: int, payload: dict, headers: dict | None = None, **counts: int) -> JSONResponse:
    log.info("%s -> %d %s", path, status, " ".join(f"{k}={v}" for k, v in counts.items()))
    return JSONResponse(payload, status, headers)


def _presented(header: str) -> bytes | None:
    """The secret a request presents, from Bearer or Basic (token as username, password ignored)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip().encode()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).partition(b":")[0]
        except (binascii.Error, ValueError):
            return None
    return None


async def _read_body(request: Request) -> bytes:
    # Content-Length refuses honest big bodies unread; counting while streaming catches chunked or lying ones.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Rejected(f"body is over {MAX_BODY} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Rejected(f"body is over {MAX_BODY} bytes", 413)
    return bytes(body)


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)  # orjson also bounds nesting depth, so no RecursionError on hostile input
    except orjson.JSONDecodeError:
        raise Rejected("body is not valid JSON") from None


def _track(pipeline: Pipeline, body: bytes) -> tuple[dict, dict]:
    call = _json(body)
    if not isinstance(call, dict):
        raise Rejected("body must be a JSON object: one Segment track or page call")
    try:
        event = parse_event(call, pipeline.rules)
    except EventError as exc:
        raise Rejected(str(exc)) from None
    done = pipeline.ingest([event])
    answer = {"accepted": done.stored.accepted, "duplicates": done.stored.duplicates, "pqls": done.rescored.triggered}
    return answer, {**answer, "pqls": len(answer["pqls"])}


def _batch(pipeline: Pipeline, body: bytes) -> tuple[dict, dict]:
    payload = _json(body)
    # Other top-level keys (context, integrations, sentAt, ...) are what Segment's libraries add: ignored.
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise Rejected('body must be a JSON object like {"batch": [call, ...]}')
    if not payload["batch"]:
        raise Rejected("batch: must hold at least one call")
    events, rejected = [], []
    for index, item in enumerate(payload["batch"]):
        try:
            if not isinstance(item, dict):  # parse_event would read a string as JSON text
                raise EventError("a call must be a JSON object")
            events.append(parse_event(item, pipeline.rules))
        except EventError as exc:
            rejected.append({"index": index, "reason": str(exc)})
    answer = {"accepted": 0, "duplicates": 0, "rejected": rejected, "pqls": []}
    if events:  # an all-rejected batch must not turn into a 503 (and retries) when the store is down
        done = pipeline.ingest(events)
        answer.update(accepted=done.stored.accepted, duplicates=done.stored.duplicates, pqls=done.rescored.triggered)
    return answer, {**answer, "rejected": len(rejected), "pqls": len(answer["pqls"])}


def _serve(path: str, handler: Handler, pipeline: Pipeline, body: bytes) -> JSONResponse:
    """The blocking part of a request (parsing and the store), run in Starlette's threadpool."""
    try:
        payload, counts = handler(pipeline, body)
    except Rejected as exc:
        return _reply(path, exc.status, {"error": exc.reason})
    except SQLAlchemyError as exc:
        # The class name only: a DBAPI error's text quotes the statement's parameters, i.e. event contents.
        log.warning("%s -> 503 store unavailable (%s)", path, type(exc).__name__)
        return JSONResponse({"error": "store unavailable, retry"}, 503)
    return _reply(path, 400 if counts.get("rejected") else 200, payload, **counts)


def _ingest_endpoint(pipeline: Pipeline, token: str | None, path: str, handler: Handler):
    secret = token.encode() if token else None  # an empty token must not let `Basic base64(":")` in

    # Async only to read the body without blocking; parsing and the store run in the threadpool.
    async def endpoint(request: Request) -> Response:
        if secret is None:
            return _reply(path, 503, {"error": "ingestion is off: set INGEST_TOKEN"})
        presented = _presented(request.headers.get("authorization", ""))
        if presented is None or not hmac.compare_digest(presented, secret):
            reason = "missing credentials" if "authorization" not in request.headers else "invalid credentials"
            error = f"{reason}: send Authorization: Bearer <INGEST_TOKEN>"
            return _reply(path, 401, {"error": error}, {"WWW-Authenticate": "Bearer"})
        try:
            body = await _read_body(request)
        except Rejected as exc:
            return _reply(path, exc.status, {"error": exc.reason})
        except ClientDisconnect:  # nobody reads this answer; it only keeps the traceback out of the log
            return _reply(path, 400, {"error": "client disconnected"})
        return await run_in_threadpool(_serve, path, handler, pipeline, body)

    return endpoint


def ingest_routes(pipeline: Pipeline, token: str | None) -> list[Route]:
    """/healthz, /v1/track and /v1/batch, to mount beside other apps (e.g. Slack's) in one Starlette."""

    def healthz(request: Request) -> JSONResponse:  # sync: Starlette runs it in the threadpool
        try:
            with pipeline.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("/healthz -> 503 database unreachable (%s)", type(exc).__name__)
            reason = f"database unreachable ({type(exc).__name__})"
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})  # not logged: load balancers poll it every few seconds

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/track", _ingest_endpoint(pipeline, token, "/v1/track", _track), methods=["POST"]),
        Route("/v1/batch", _ingest_endpoint(pipeline, token, "/v1/batch", _batch), methods=["POST"]),
    ]


def create_app(pipeline: Pipeline, token: str | None) -> Starlette:
    return Starlette(routes=ingest_routes(pipeline, token))
