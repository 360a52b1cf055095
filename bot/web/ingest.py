"""HTTP ingestion, Segment's tracking API: `POST /v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`,
`/v1/group`, `/v1/alias`, `/v1/batch` (and `/v1/import`, its alias), and `GET /healthz` (whether the store can be
written: 503 with the reason when it cannot).

- Auth is the shared INGEST_TOKEN, as `Authorization: Bearer <token>` or the way Segment's and RudderStack's
  libraries send a write key, `Basic base64(<token>:)`; or, for Segment's Webhook destination, an `X-Signature`
  header: the hex HMAC-SHA1 of the body as sent with SEGMENT_SHARED_SECRET. A request that carries a signature
  is judged by it when the secret is set. With neither configured ingestion answers 503: an open endpoint would
  let anyone invent PQLs.
- A body may be gzipped (`Content-Encoding: gzip`, as the libraries send it): 1 MiB at most as sent and as
  unpacked (bot/web/body.py). Reading calls out of a body, and what the store can keep: bot/web/calls.py.
- A single-call endpoint stores a call of its own type unless the body names another (the Webhook destination
  posts every type to one URL). A batch may mix every type.
- A batch is not all-or-nothing. Its valid calls are stored and scored in one transaction even when
  others are rejected; the answer is then 400 listing each rejected call by index with its reason (and the
  `code` and `message` Segment's and RudderStack's libraries read, so they drop the batch rather than retry it).
  Segment does not retry a 400, so those calls are dropped upstream; resending the fixed batch is
  safe because stored calls come back as duplicates (messageId is the idempotency key).
- A store failure answers 503 so the sender (Segment) retries; bad input never becomes a 500, nor a 503:
  a call the store could not keep is rejected as bad input, or Segment would retry it, and the batch around
  it, forever.
- Calls arriving together are stored and scored together, by one writer (bot/web/intake.py), yet each is
  answered with its own counts and PQLs.
- Logs carry counts only: event contents hold emails, and the token must never reach a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.services.pipeline import Pipeline
from bot.store import store_errors
from bot.store.health import WriteProbe
from bot.web.body import TooLarge, Unreadable, read_body, unpack
from bot.web.calls import batch_calls, one_call
from bot.web.intake import GATHER_SECONDS, Intake, Outcome
from scoring.events import CALL_TYPES, Event, EventError, Naming

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
#: Reads a body as sent (its bytes, its Content-Encoding) into storable events and rejected calls.
Parser = Callable[[bytes, str, Naming, datetime], tuple[list[Event], list[dict]]]


def _reply(path: str, status: int, payload: dict, headers: dict | None = None, **counts: int) -> JSONResponse:
    log.info("%s -> %d %s", path, status, " ".join(f"{k}={v}" for k, v in counts.items()))
    return JSONResponse(payload, status, headers)


def _refusal(path: str, status: int, error: str, code: str, headers: dict | None = None) -> JSONResponse:
    """An answer Segment's and RudderStack's libraries read as final: with `code` and `message` (RudderStack's
    retries a 4xx without them, holding up every call queued behind it)."""
    return _reply(path, status, {"error": error, "code": code, "message": error}, headers)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request may present: the token (Bearer or Basic) or a signature of its body. Empty is unset (an
    empty token must not let `Basic base64(":")` in)."""

    token: bytes | None
    shared_secret: bytes | None

    @classmethod
    def of(cls, token: str | None, shared_secret: str | None) -> Credentials:
        return cls(token.encode() if token else None, shared_secret.encode() if shared_secret else None)

    @property
    def off(self) -> bool:
        return self.token is None and self.shared_secret is None

    def judges_by_signature(self, request: Request) -> bool:
        return self.shared_secret is not None and "x-signature" in request.headers

    def token_refusal(self, request: Request) -> str | None:
        """Why the request's Authorization does not let it in, or None when it does."""
        presented = _presented(request.headers.get("authorization", ""))
        if self.token is not None and presented is not None and hmac.compare_digest(presented, self.token):
            return None
        reason = "missing credentials" if "authorization" not in request.headers else "invalid credentials"
        if "x-signature" in request.headers:  # and no secret to check it with
            reason += " (X-Signature is not checked: SEGMENT_SHARED_SECRET is not set)"
        return f"{reason}: {self.how}"

    def signed(self, body: bytes, request: Request) -> bool:
        """Whether X-Signature is the hex HMAC-SHA1 of the body as sent, compared in constant time."""
        expected = hmac.new(self.shared_secret, body, hashlib.sha1).hexdigest().encode()
        return hmac.compare_digest(expected, request.headers["x-signature"].strip().lower().encode("latin-1"))

    @property
    def how(self) -> str:
        ways = ["Authorization: Bearer <INGEST_TOKEN>"] if self.token else []
        if self.shared_secret:
            ways.append("X-Signature: the hex HMAC-SHA1 of the body with SEGMENT_SHARED_SECRET")
        return "send " + " or ".join(ways)


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


def _single(kind: str) -> Parser:
    def parse(raw: bytes, encoding: str, rules: Naming, received: datetime) -> tuple[list[Event], list[dict]]:
        return [one_call(unpack(raw, encoding, MAX_BODY), kind, rules, received)], []

    return parse


def _batch(raw: bytes, encoding: str, rules: Naming, received: datetime) -> tuple[list[Event], list[dict]]:
    return batch_calls(unpack(raw, encoding, MAX_BODY), rules, received)


def _ingest_endpoint(pipeline: Pipeline, intake: Intake, credentials: Credentials, path: str, parse: Parser):
    batch = parse is _batch
    failed = store_errors(pipeline.engine)

    async def endpoint(request: Request) -> Response:
        if credentials.off:
            return _reply(path, 503, {"error": "ingestion is off: set INGEST_TOKEN"})
        by_signature = credentials.judges_by_signature(request)
        if not by_signature and (refusal := credentials.token_refusal(request)):
            return _refusal(path, 401, refusal, "unauthorized", {"WWW-Authenticate": "Bearer"})
        encoding = request.headers.get("content-encoding", "")
        try:
            raw = await read_body(request, MAX_BODY)
            if by_signature and not credentials.signed(raw, request):
                error = f"invalid signature: {credentials.how}"
                return _refusal(path, 401, error, "unauthorized", {"WWW-Authenticate": "Bearer"})
            # One call's parsing is cheaper than a hop to the threadpool; a batch's (or unpacking) could hold
            # up the event loop.
            work = partial(parse, raw, encoding, pipeline.rules, pipeline.clock())  # a call with no time: this one
            events, rejected = await run_in_threadpool(work) if batch or encoding else work()
        except TooLarge:
            return _refusal(path, 413, f"body is over {MAX_BODY} bytes", "payload_too_large")
        except Unreadable as exc:
            if exc.status == 415:
                return _refusal(path, 415, exc.reason, "unsupported_encoding")
            return _reply(path, exc.status, {"error": exc.reason})
        except EventError as exc:  # a single call's own fault
            return _reply(path, 400, {"error": str(exc)})
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
        if batch:
            answer["rejected"] = rejected
            counts["rejected"] = len(rejected)
        if rejected:
            message = f"{len(rejected)} of {len(rejected) + len(events)} calls rejected (see rejected); the rest stored"
            answer |= {"code": "rejected_calls", "message": message}
        return _reply(path, 400 if rejected else 200, answer, **counts, pqls=len(outcome.pqls))

    return endpoint


def ingest_routes(pipeline: Pipeline, token: str | None, *, shared_secret: str | None = None,
                  gather_seconds: float = GATHER_SECONDS, health: WriteProbe | None = None) -> list[Route]:
    """/healthz and the tracking API's endpoints, to mount beside other apps (e.g. Slack's) in one Starlette.
    `token`: INGEST_TOKEN; `shared_secret`: SEGMENT_SHARED_SECRET, which X-Signature is checked with.
    `gather_seconds`: how long ingestion waits for a group to fill under a stream of calls (bot/web/intake.py).
    `health`: what /healthz asks (a write probe of the pipeline's store unless a test gives its own)."""
    intake = Intake(pipeline, gather_seconds=gather_seconds)
    credentials = Credentials.of(token, shared_secret)
    health = health or WriteProbe(pipeline.engine)

    def route(path: str, parse: Parser) -> Route:
        return Route(path, _ingest_endpoint(pipeline, intake, credentials, path, parse), methods=["POST"])

    def healthz(request: Request) -> JSONResponse:  # sync: Starlette runs it in the threadpool
        """200 while the store can be written (bot/store/health.py), else 503 with the reason: a load balancer
        then stops sending events that ingestion could only answer 503. Not logged: load balancers poll it
        every few seconds (the probe logs when the answer changes)."""
        verdict = health.check()
        if not verdict.ok:
            return JSONResponse({"status": "unavailable", "reason": verdict.reason}, 503)
        return JSONResponse({"status": "ok"})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        *(route(f"/v1/{kind}", _single(kind)) for kind in CALL_TYPES),
        route("/v1/batch", _batch),
        route("/v1/import", _batch),  # Segment's name for a batch of historical calls: the same
    ]


def create_app(pipeline: Pipeline, token: str | None, *, shared_secret: str | None = None,
               gather_seconds: float = GATHER_SECONDS, health: WriteProbe | None = None) -> Starlette:
    return Starlette(routes=ingest_routes(pipeline, token, shared_secret=shared_secret,
                                          gather_seconds=gather_seconds, health=health))
