"""Which HTTP requests really come from Slack, each once: the signature (slack_sdk's SignatureVerifier), the age,
and the replay memory (this process's, and the store's)."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime

import sqlalchemy as sa
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy.dialects import postgresql, sqlite

from bot.store import make_engine
from bot.store.grouped import GroupWriter, Waiting
from bot.store.slack_requests import SEEN, forget_expired_requests

log = logging.getLogger(__name__)
#: Slack's own bound on a request's age (and on how far ahead of our clock it may be), in seconds. It is the
#: bound slack_sdk's SignatureVerifier checks (`abs(now - timestamp) > 300` is refused); the memory keeps a
#: pair this long past its timestamp.
WINDOW = 5 * 60
#: What the route remembers of one process's recent requests, most. Slack sends a team far fewer than
#: this in five minutes; past it the route answers 503 (Slack retries) rather than forget a signature.
CAPACITY = 100_000
#: How long past the window a request stays recorded in the store, in seconds: hosts whose clocks disagree
#: by less than this never forget a request that another host's age check still accepts.
CLOCK_SKEW = 60
#: Every this many requests it records, a process also deletes the records past their time, so the table
#: stays small even where the scheduled sweeps (which delete them every minute) do not run.
TIDY_EVERY = 1_000
#: The most requests recorded by one statement (three values each: far under SQLite's and PostgreSQL's
#: limits on a statement's parameters); a bigger crowd is recorded by several, one after the other.
RECORDS_PER_STATEMENT = 1_000
#: How long, in seconds, recording a request on SQLite may wait for the store's single write lock (its turn:
#: bot/store/turns.py) before the request is answered 503. Slack stops waiting for an answer after 3 s, so a
#: request that waited longer behind a long write (a full rescore of a big store) is better refused, and
#: retried by Slack or clicked again, than dispatched after Slack has shown the person an error.
RECORD_WAIT = 2.0
#: The longest timestamp read as one (seconds since 1970 have 10 digits until the year 2286).
_STAMP_DIGITS = 12


class _CallableClock(Clock):
    """SignatureVerifier reads the time from a `Clock` object; ours is a callable (a test's own, or time.time)."""

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read

    def now(self) -> float:
        return self._read()


class _Verifier(SignatureVerifier):
    """SignatureVerifier signs a bytes body decoded as UTF-8, and raises on one that is not. Slack signs the
    bytes it sent, and a correctly signed body that is not UTF-8 must still be told apart from a forgery (the
    route answers it 400, not 401): such a body alone is signed here byte for byte."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                message = b"v0:" + timestamp.encode() + b":" + body
                return "v0=" + hmac.new(self.signing_secret.encode(), message, hashlib.sha256).hexdigest()
        return super().generate_signature(timestamp=timestamp, body=body)


class SignedRequests:
    """Which requests really come from Slack: signed with the signing secret (v0, HMAC-SHA256 over
    `v0:<timestamp>:<body>`), stamped within `WINDOW` of now, and not seen before. The signature and the
    age are slack_sdk's SignatureVerifier's to check; what it is given is well formed first.

    A replay is the very same signed request sent again: same body, timestamp and signature. Every
    accepted (timestamp, signature) pair is remembered until its timestamp leaves the window (after
    that the age check refuses it anyway), so each signed request is dispatched at most once.

    The process's own memory is bounded (`capacity` pairs; when full of live pairs a request is turned
    away rather than a pair forgotten), thread-safe, and lost on restart. It is always asked first, so a
    replay to the same process is refused without asking the store.

    With a `store` (as `pqlbot serve` runs, on SQLite and PostgreSQL alike), a pair new to this process is
    then recorded in the store (`slack_requests_seen`, keyed by the pair) before the request is dispatched:
    if the store has it already, the request was served before this process started (a replay after a
    restart) or by another process on the store, and is refused just the same. When the store cannot
    record it (unreachable, read-only, full, or on SQLite busy for over `RECORD_WAIT`) the request is
    answered 503 (Slack retries) and forgotten again, never dispatched unchecked. Records go once their
    timestamp is `CLOCK_SKEW` past the window: deleted by a scheduled sweep (bot/sweeps/runner.py), and
    every `TIDY_EVERY` records by the process recording them, so the table cannot grow without bound.

    The record is one small write on the path of every request's answer. On SQLite it waits for the single
    write lock only while the transaction under way ends (an ingestion group, a claim), not behind the
    writers queued after it, and at most `RECORD_WAIT`.

    Slack's retries are not replays. X-Slack-Request-Timestamp is when Slack sent the request, and the
    signature covers it; Slack retries an event up to three times over about five minutes (X-Slack-Retry-Num),
    which only works if each retry is stamped and signed afresh (the first stamp would fail the age check),
    so a retry is a new pair here and is dispatched like any request. Should a retry ever repeat a pair
    already seen, its first delivery was accepted and dispatched, so it is answered 200 without dispatching
    it again, with X-Slack-No-Retry.
    """

    def __init__(self, signing_secret: str | None, *, store: sa.Engine | None = None, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.time, tidy_every: int = TIDY_EVERY) -> None:
        self._verifier = _Verifier(signing_secret, _CallableClock(clock)) if signing_secret else None
        self.window, self.capacity, self.clock = WINDOW, capacity, clock
        self._store = _StoreRecord(store, clock, tidy_every=tidy_every) if store is not None else None
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[int, tuple[str, str]]] = []  # a heap: (when the pair may go, pair)
        self._lock = threading.Lock()

    @property
    def recorded(self) -> bool:
        """Whether requests are recorded in the store, so a replay is refused after a restart and by every
        process on the store, not by this process's memory alone."""
        return self._store is not None

    @property
    def configured(self) -> bool:
        return self._verifier is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def authentic(self, body: bytes, timestamp: str, signature: str) -> bool:
        """Signed with the secret and stamped within the window (either side of now). The timestamp must be
        at most 12 ASCII digits; a signature that is not ASCII (the expected one is) is refused unread."""
        return self.refusal(body, timestamp, signature) is None

    def refusal(self, body: bytes, timestamp: str, signature: str) -> str | None:
        """Why the request is not authentic, in words an operator can act on (never quoting the secret, the
        signature or the body); None when it is (see `authentic`)."""
        if self._verifier is None:
            return "SLACK_SIGNING_SECRET is not set"
        if not timestamp or not signature:
            return "no X-Slack-Request-Timestamp or X-Slack-Signature header: not sent by Slack"
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _STAMP_DIGITS:
            return "X-Slack-Request-Timestamp is not a time"
        skew = int(timestamp) - self.clock()
        if abs(skew) > self.window:
            side = "ahead of" if skew > 0 else "behind"
            return (f"stale timestamp: {abs(skew):.0f} s {side} this server's clock (Slack allows {self.window} s): "
                    "is this server's clock right (NTP), or is something replaying old requests?")
        if not signature.isascii() or not self._verifier.is_valid(body, timestamp, signature):
            return ("bad signature: SLACK_SIGNING_SECRET is not the Signing Secret of the app that sent it "
                    "(Basic Information at api.slack.com/apps), or the request is forged")
        return None

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
        """Record a pair `first_time` found new in the store too (see the class). Resolves to True when no
        process recorded it before, False when one did (or this one, before a restart), or to the store's
        error; on an error the pair is forgotten here as well, so that nothing remembers a request that was
        never served."""
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


class RefusalLog:
    """Refused requests logged at WARNING, each with its reason, at most `per_reason` lines per kind of reason
    every `every` seconds: a flood of forged requests writes a few lines a minute, and the next line after a quiet
    spell says how many were left out."""

    def __init__(self, logger: logging.Logger | None = None, *, every: float = 60.0, per_reason: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.every, self.per_reason, self.clock = logger or log, every, per_reason, clock
        self._lock = threading.Lock()
        self._spells: dict[str, tuple[float, int, int]] = {}  # kind -> (spell start, lines written, left out)

    def refused(self, kind: str, what: str) -> bool:
        """Log "slack: refused `what`" unless `kind` has had its lines this spell; True when it was logged."""
        now = self.clock()
        with self._lock:
            start, written, left_out = self._spells.get(kind, (now, 0, 0))
            if now - start >= self.every:
                start, written = now, 0
            if written >= self.per_reason:
                self._spells[kind] = (start, written, left_out + 1)
                return False
            self._spells[kind] = (start, written + 1, 0)
        more = f" ({left_out} more like it not logged)" if left_out else ""
        self.log.warning("slack: refused %s%s", what, more)
        return True


class _StoreRecord:
    """The store's side of `SignedRequests`: one thread (a GroupWriter) records every pair that is waiting,
    in one statement.

    Why one thread: when each request recorded its own pair, each held a worker thread and a pooled connection
    while the store answered, and fifty clicks at once queued for both (bench/ack.py: the median ack went from
    55 to 130 ms). Here those fifty cost about a dozen statements on one connection, and on SQLite a dozen
    turns at the write lock, not fifty. After every `tidy_every` records it also deletes the expired ones,
    before the next group.

    On a SQLite file the thread writes through an engine of its own, whose connection goes first among the
    writers waiting for their turn and waits at most `RECORD_WAIT` for it (the store's other connections
    wait in line, up to 30 s)."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float], *, tidy_every: int,
                 idle_seconds: float = 5.0) -> None:
        self.engine, self.clock, self.tidy_every = _recording_engine(engine), clock, tidy_every
        self._postgresql = engine.dialect.name == "postgresql"
        self._writer: GroupWriter[tuple[tuple[str, str], datetime]] = GroupWriter(
            self._serve, name="pqlbot-slack-seen", idle_seconds=idle_seconds, max_weight=RECORDS_PER_STATEMENT)
        self._since_tidy = 0

    def submit(self, pair: tuple[str, str], forget_after: datetime) -> Future[bool]:
        return self._writer.submit((pair, forget_after))

    def _serve(self, group: Waiting) -> None:
        if self._since_tidy >= self.tidy_every:  # before this group is answered, so no caller races the delete
            self._since_tidy = 0
            self._tidy()
        rows = [{"timestamp": timestamp, "signature": signature, "forget_after": forget_after}
                for ((timestamp, signature), forget_after), _ in group]
        dialect = postgresql if self._postgresql else sqlite
        try:
            with self.engine.begin() as connection:
                if self._postgresql:
                    # Visible to every process at commit all the same; what it saves is the wait for the disk,
                    # on the ack's path. A crash of the database server could lose the last moment's records.
                    # (SQLite's commit reaches the WAL file before it returns, so a restarted process reads it.)
                    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                inserted = connection.execute(dialect.insert(SEEN).values(rows).on_conflict_do_nothing()
                                              .returning(SEEN.c.timestamp, SEEN.c.signature))
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


def _recording_engine(store: sa.Engine) -> sa.Engine:
    """The engine that records requests: the store's own, except on a SQLite file, where it is a second engine on
    the same file whose connection goes first among the writers waiting for the write lock (an ack waits on it;
    the claims queued behind do not) and gives up waiting after `RECORD_WAIT`. (An in-memory SQLite database
    cannot be opened twice, so it keeps the store's.)"""
    database = store.url.database
    if store.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return store
    return make_engine(store.url.render_as_string(hide_password=False), timeout=RECORD_WAIT, first_in_line=True)
