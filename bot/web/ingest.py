"""HTTP ingestion, Segment-compatible: `POST /v1/track`, `POST /v1/batch`, and `GET /healthz`.

- Auth is the shared INGEST_TOKEN, as `Authorization: Bearer <token>` or the way Segment sends a
  write key, `Basic base64(<token>:)`. With no token configured ingestion answers 503: an open
  endpoint would let anyone invent PQLs.
- A batch is not all-or-nothing. Its valid calls are stored and scored in one transaction even when
  others are rejected; the answer is then 400 listing each rejected call by index with its reason.
  Segment does not retry a 400, so those calls are dropped upstream; resending the fixed batch is
  safe because stored calls come back as duplicates (messageId is the idempotency key).
- A store failure answers 503 so the sender (Segment) retries; bad input never becomes a 500, nor a 503:
  a call the store could not keep (a NUL character, a value longer than its column, a time near the
  calendar's ends) is rejected as bad input, or Segment would retry it, and the batch around it, forever.
- Calls arriving together are stored and scored together, by one writer (bot/web/intake.py), yet each is
  answered with its own counts and PQLs.
- Logs carry counts only: event contents hold emails, and the token must never reach a log.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.services.pipeline import Pipeline
from bot.store import store_errors
from bot.store.models import EventRecord, TrialUser
from bot.web.body import TooLarge, read_body
from bot.web.intake import GATHER_SECONDS, Intake, Outcome
from scoring.events import SIGNUP, Event, EventError, parse_event

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
Parser = Callable[[Pipeline, bytes], tuple[list[Event], list[dict]]]


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


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)  # orjson also bounds nesting depth, so no RecursionError on hostile input
    except orjson.JSONDecodeError:
        raise Rejected("body is not valid JSON") from None


#: Times the scorer can move a few days either way from without leaving the calendar (year 1 to 9999).
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
#: Text columns a call's values land in, and their lengths (a longer value is a DataError on PostgreSQL).
_LIMITS = {"userId": EventRecord.__table__.c.user_id.type.length, "event": EventRecord.__table__.c.name.type.length}
_EMAIL_MAX, _DOMAIN_MAX = TrialUser.__table__.c.email.type.length, TrialUser.__table__.c.domain.type.length
_INT_MAX = 2**31 - 1  # trial_users.company_size is an INTEGER


_NUL = b"\\u0000"  # how JSON text carries a NUL character (a raw one is invalid JSON)


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):  # an Event is a tuple too
        return any(_has_nul(v) for v in value)
    return False


def _event(call: dict, pipeline: Pipeline, *, nul_possible: bool = True) -> Event:
    """One call as an Event the store can keep, else EventError with the reason. `nul_possible`: False
    when the JSON text it came from holds no escaped NUL (JSON has no other way to carry one)."""
    try:
        event = parse_event(call, pipeline.rules)
    except OverflowError:  # an offset that pushes a time past year 1 or 9999 when converted to UTC
        raise EventError("timestamp: is out of range") from None
    if nul_possible and _has_nul(event):
        raise EventError("contains a NUL character (\\u0000), which the store cannot keep")
    for field, value in (("userId", event.user_id), ("event", event.name)):
        if len(value) > _LIMITS[field]:
            raise EventError(f"{field}: is longer than {_LIMITS[field]} characters")
    if not EARLIEST <= event.at < LATEST:
        raise EventError(f"timestamp: must be between {EARLIEST.year} and {LATEST.year}")
    if event.name == SIGNUP:
        props = event.props
        if len(props["email"]) > _EMAIL_MAX or len(props["email"].rsplit("@", 1)[-1]) > _DOMAIN_MAX:
            raise EventError(f"properties.email: is longer than {_EMAIL_MAX} characters (or its domain than "
                             f"{_DOMAIN_MAX})")
        if props.get("company_size") is not None and props["company_size"] > _INT_MAX:
            raise EventError(f"properties.company_size: must be at most {_INT_MAX}")
        if ends := props.get("trial_ends_at"):
            try:
                in_range = EARLIEST <= datetime.fromisoformat(ends) < LATEST
            except (ValueError, OverflowError):
                in_range = False
            if not in_range:
                raise EventError(f"properties.trial_ends_at: must be between {EARLIEST.year} and {LATEST.year}")
    return event


def _track(pipeline: Pipeline, body: bytes) -> tuple[list[Event], list[dict]]:
    call = _json(body)
    if not isinstance(call, dict):
        raise Rejected("body must be a JSON object: one Segment track or page call")
    try:
        return [_event(call, pipeline, nul_possible=_NUL in body)], []
    except EventError as exc:
        raise Rejected(str(exc)) from None


def _batch(pipeline: Pipeline, body: bytes) -> tuple[list[Event], list[dict]]:
    payload = _json(body)
    # Other top-level keys (context, integrations, sentAt, ...) are what Segment's libraries add: ignored.
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise Rejected('body must be a JSON object like {"batch": [call, ...]}')
    if not payload["batch"]:
        raise Rejected("batch: must hold at least one call")
    events, rejected, nul_possible = [], [], _NUL in body
    for index, item in enumerate(payload["batch"]):
        try:
            if not isinstance(item, dict):  # parse_event would read a string as JSON text
                raise EventError("a call must be a JSON object")
            events.append(_event(item, pipeline, nul_possible=nul_possible))
        except EventError as exc:
            rejected.append({"index": index, "reason": str(exc)})
    return events, rejected


def _ingest_endpoint(pipeline: Pipeline, intake: Intake, token: str | None, path: str, parse: Parser):
    secret = token.encode() if token else None  # an empty token must not let `Basic base64(":")` in
    # One call's parsing is cheaper than a hop to the threadpool; a batch's could hold up the event loop.
    inline = parse is _track
    failed = store_errors(pipeline.engine)

    async def endpoint(request: Request) -> Response:
        if secret is None:
            return _reply(path, 503, {"error": "ingestion is off: set INGEST_TOKEN"})
        presented = _presented(request.headers.get("authorization", ""))
        if presented is None or not hmac.compare_digest(presented, secret):
            reason = "missing credentials" if "authorization" not in request.headers else "invalid credentials"
            error = f"{reason}: send Authorization: Bearer <INGEST_TOKEN>"
            return _reply(path, 401, {"error": error}, {"WWW-Authenticate": "Bearer"})
        try:
            body = await read_body(request, MAX_BODY)
            events, rejected = parse(pipeline, body) if inline else await run_in_threadpool(parse, pipeline, body)
        except TooLarge:
            return _reply(path, 413, {"error": f"body is over {MAX_BODY} bytes"})
        except Rejected as exc:
            return _reply(path, exc.status, {"error": exc.reason})
        except ClientDisconnect:  # nobody reads this answer; it only keeps the traceback out of the log
            return _reply(path, 400, {"error": "client disconnected"})
        outcome = Outcome()
        if events:  # an all-rejected batch must not turn into a 503 (and retries) when the store is down
            try:
                outcome = await intake.ingest(events)
            except failed as exc:
                # The class name only: a DBAPI error's text quotes the statement's parameters, i.e. event contents.
                log.warning("%s -> 503 store unavailable (%s)", path, type(exc).__name__)
                return JSONResponse({"error": "store unavailable, retry"}, 503)
        answer = {"accepted": outcome.accepted, "duplicates": outcome.duplicates, "pqls": outcome.pqls}
        counts = {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
        if parse is _batch:
            answer = {**answer, "rejected": rejected}
            counts["rejected"] = len(rejected)
        return _reply(path, 400 if rejected else 200, answer, **counts, pqls=len(outcome.pqls))

    return endpoint


def ingest_routes(pipeline: Pipeline, token: str | None, *, gather_seconds: float = GATHER_SECONDS) -> list[Route]:
    """/healthz, /v1/track and /v1/batch, to mount beside other apps (e.g. Slack's) in one Starlette.
    `gather_seconds`: how long ingestion waits for a group to fill under a stream of calls (bot/web/intake.py)."""
    intake = Intake(pipeline, gather_seconds=gather_seconds)

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
        Route("/v1/track", _ingest_endpoint(pipeline, intake, token, "/v1/track", _track), methods=["POST"]),
        Route("/v1/batch", _ingest_endpoint(pipeline, intake, token, "/v1/batch", _batch), methods=["POST"]),
    ]


def create_app(pipeline: Pipeline, token: str | None, *, gather_seconds: float = GATHER_SECONDS) -> Starlette:
    return Starlette(routes=ingest_routes(pipeline, token, gather_seconds=gather_seconds))
