"""The integrations' sender: the webhook's and HubSpot's notices from the outbox, each sent once, in order per lead,
beside Slack's deliverer and never holding it up (Slack's deliverer leaves these kinds alone, and this one runs in
its own thread).

One pass (`deliver_integrations`) takes the due notices of the configured kinds, oldest first, leaving out any with
an earlier notice of the same kind and lead still pending or sending: a lead's changes reach the CRM in the order
they were made (its task exists before its owner changes; a disposition comes after the touches). Each is claimed
(pending -> sending, naming this process: bot/store/holders.py, as Slack's deliverer does), so two processes never
send it together and a process killed mid-send has it taken up by the next pass. Then:

- sent: marked sent; an integration that was down is up again;
- rate limited (429): back to pending until Retry-After has passed, not an attempt; the kind waits for the rest of
  the pass (the limit is the service's, not one notice's);
- may work later (5xx, connection, timeout): back to pending after Retry-After if given, else 30 s doubling to
  30 minutes; the kind waits for the rest of the pass, so an outage costs one call a pass, not one per change.
  Given up (failed) only when the notice is GIVE_UP_AFTER old: a day-long outage loses nothing;
- won't heal (401, 403, 404, 410, a missing property, another 4xx): failed at once, not retried; the manager is
  told once per outage (the sweep_runs row `integration:<kind>` remembers what was said until a send succeeds).
  `pqlbot crm retry` queues the failed ones again once it is fixed.

Exactly once: the webhook's receiver de-duplicates on the stable messageId (a send interrupted after the receiver
took it is sent again, same body, same id); HubSpot's changes are idempotent (an update sets the same values) or
look before they create (bot/integrations/hubspot.py keeps the ids it made in crm_records, and searches when an
earlier attempt may have made the object).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot import store
from bot.clock import Clock, utc_now
from bot.integrations.errors import TryLater, WontHeal
from bot.services import outbox
from bot.services.tracking import INTEGRATIONS
from bot.slack.delivery import Passes, claim, release_stale, retry_delay
from bot.store import holders
from bot.store.holders import Holder
from bot.store.models import Notice, SweepRun
from templates import sentences

log = logging.getLogger(__name__)
words = sentences("crm/words.j2")

_NOTICES = Notice.__table__
_RUNS = SweepRun.__table__
#: A notice still failing this long after it was queued is given up (and the manager told).
GIVE_UP_AFTER = timedelta(days=3)
EVERY_SECONDS = 15.0

#: Sends one notice; raises TryLater or WontHeal (bot/integrations/errors.py) when it could not.
Sender = Callable[[sa.Engine, Notice, datetime], None]


@dataclass(slots=True)
class IntegrationReport:
    sent: int = 0
    failed: int = 0  # attempts that failed (most are retried later)
    gave_up: int = 0  # failed for good: won't heal, or too old
    held: int = 0  # rate limited: due again after Retry-After
    next_due: datetime | None = None


def deliver_integrations(engine: sa.Engine, senders: dict[str, Sender], *, now: datetime,
                         manager: str | None = None, limit: int = 200,
                         holder: Holder | None = None) -> IntegrationReport:
    """One pass as of `now`; see the module docstring."""
    report = IntegrationReport()
    kinds = sorted(set(senders) & set(INTEGRATIONS))
    holder = holder or holders.of(engine)
    if not kinds or not holder.alive():
        return report
    release_stale(engine, now=now, holder=holder)
    earlier = _NOTICES.alias("earlier")
    ahead = sa.exists().where(earlier.c.kind == _NOTICES.c.kind, earlier.c.pql_id == _NOTICES.c.pql_id,
                              earlier.c.id < _NOTICES.c.id, earlier.c.state.in_(("pending", "sending")))
    waiting: set[str] = set()  # kinds that wait for the rest of this pass (down, or limited)
    tried: set[int] = set()
    while len(tried) < limit:  # rounds: each takes the next change of every lead, once the one before it is sent
        with engine.connect() as connection:
            due = [(notice_id, kind) for notice_id, kind in connection.execute(
                sa.select(_NOTICES.c.id, _NOTICES.c.kind)
                .where(_NOTICES.c.state == "pending", _NOTICES.c.next_attempt_at <= now,
                       _NOTICES.c.kind.in_(sorted(set(kinds) - waiting)), sa.or_(_NOTICES.c.pql_id.is_(None), ~ahead))
                .order_by(_NOTICES.c.id).limit(limit)) if notice_id not in tried]
        if not due:
            break
        for notice_id, kind in due[: limit - len(tried)]:
            tried.add(notice_id)
            if kind not in waiting:
                _one(engine, senders[kind], holder, notice_id, kind, now=now, manager=manager, report=report,
                     waiting=waiting)
    with engine.connect() as connection:
        report.next_due = connection.scalar(sa.select(sa.func.min(_NOTICES.c.next_attempt_at)).where(
            _NOTICES.c.state == "pending", _NOTICES.c.next_attempt_at > now, _NOTICES.c.kind.in_(kinds)))
    return report


def _one(engine: sa.Engine, send: Sender, holder: Holder, notice_id: int, kind: str, *, now: datetime,
         manager: str | None, report: IntegrationReport, waiting: set[str]) -> None:
    """Send one notice and count what came of it; a kind that failed or is limited waits for the next pass."""
    outcome = _deliver(engine, send, holder, notice_id, now=now, manager=manager)
    if outcome == "sent":
        report.sent += 1
    elif outcome in ("held", "failed"):
        setattr(report, outcome, getattr(report, outcome) + 1)
        waiting.add(kind)
    elif outcome == "gave_up":
        report.gave_up += 1


def _deliver(engine: sa.Engine, send: Sender, holder: Holder, notice_id: int, *, now: datetime,
             manager: str | None) -> str:
    with store.session(engine) as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.state != "pending":
            return "skipped"
    if not claim(engine, holder, notice_id, now):
        return "skipped"
    try:
        try:
            send(engine, notice, now)
        except TryLater as later:
            return _later(engine, notice, later, now, manager)
        except WontHeal as refused:
            _finish(engine, notice, state="failed", error=refused.code, now=now)
            log.error("notice %s (%s) was refused (%s); not retrying it", notice.id, notice.kind, refused.code)
            _down(engine, notice.kind, refused.code, now, manager, words(f"down_{notice.kind}", code=refused.code))
            return "gave_up"
        except Exception as error:  # a bug in one notice must not stop the rest: retried like an outage
            log.exception("sending notice %s (%s) failed unexpectedly", notice.id, notice.kind)
            return _later(engine, notice, TryLater(type(error).__name__), now, manager)
        _finish(engine, notice, state="sent", error=None, now=now)
        _up(engine, notice.kind)
        return "sent"
    finally:
        holder.done(notice_id)


def _later(engine: sa.Engine, notice: Notice, later: TryLater, now: datetime, manager: str | None) -> str:
    if later.limited:
        wait = timedelta(seconds=later.retry_after if later.retry_after is not None else 10)
        _finish(engine, notice, state="pending", error=later.code, now=now, next_at=now + wait)
        log.info("notice %s (%s) waits %s for the rate limit", notice.id, notice.kind, wait)
        return "held"
    attempts = notice.attempts + 1
    if now - notice.created_at >= GIVE_UP_AFTER:
        _finish(engine, notice, state="failed", error=later.code, now=now, attempts=attempts)
        log.error("notice %s (%s) failed for good after %s (%s)", notice.id, notice.kind, GIVE_UP_AFTER, later.code)
        _down(engine, notice.kind, "gave_up", now, manager,
              words("gave_up", kind=notice.kind, hours=int(GIVE_UP_AFTER.total_seconds() // 3600)))
        return "gave_up"
    wait = retry_delay(min(attempts, 8))  # 30 s doubling, 30 minutes from the 7th on
    if later.retry_after is not None:
        wait = timedelta(seconds=later.retry_after)
    _finish(engine, notice, state="pending", error=later.code, now=now, next_at=now + wait, attempts=attempts)
    log.warning("notice %s (%s) failed (attempt %d, %s); retrying in %s", notice.id, notice.kind, attempts,
                later.code, wait)
    return "failed"


def _finish(engine: sa.Engine, notice: Notice, *, state: str, error: str | None, now: datetime,
            next_at: datetime | None = None, attempts: int | None = None) -> None:
    values = {"state": state, "last_error": error, "holder": None, "next_attempt_at": next_at or now}
    if attempts is not None:
        values["attempts"] = attempts
    if state == "sent":
        values["sent_at"] = now
    with engine.begin() as connection:
        # "pending" too: released meanwhile (its holder looked dead), it is done all the same.
        connection.execute(sa.update(_NOTICES).where(_NOTICES.c.id == notice.id,
                                                     _NOTICES.c.state.in_(("sending", "pending"))).values(**values))


def _down(engine: sa.Engine, kind: str, code: str, now: datetime, manager: str | None, text: str) -> None:
    """Tell the manager an integration is down, once per outage and cause, whichever process notices first."""
    name = f"integration:{kind}"
    with store.session(engine) as session, session.begin():
        connection = session.connection()
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(module.insert(_RUNS).values(name=name, last_run_at=now, fingerprint=None)
                           .on_conflict_do_nothing(index_elements=["name"]))
        changed = connection.execute(sa.update(_RUNS).where(
            _RUNS.c.name == name, sa.or_(_RUNS.c.fingerprint.is_(None), _RUNS.c.fingerprint != code))
            .values(fingerprint=code, last_run_at=now)).rowcount
        if changed and manager:
            outbox.dm(session, manager, f"integration-down:{kind}:{code}:{now.isoformat()}", text, now=now)


def _up(engine: sa.Engine, kind: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(_RUNS).where(_RUNS.c.name == f"integration:{kind}",
                                                  _RUNS.c.fingerprint.is_not(None)).values(fingerprint=None))


def retry_failed(engine: sa.Engine, *, now: datetime, kinds: tuple[str, ...] = INTEGRATIONS) -> int:
    """Queue the integrations' failed notices again (after the token, scopes or URL were fixed); how many."""
    with engine.begin() as connection:
        return connection.execute(sa.update(_NOTICES).where(_NOTICES.c.state == "failed", _NOTICES.c.kind.in_(kinds))
                                  .values(state="pending", attempts=0, next_attempt_at=now, created_at=now,
                                          last_error=None)).rowcount


class IntegrationDeliverer(Passes):
    """`pqlbot serve`'s thread for the integrations (`Passes`): its own thread, so a slow CRM never delays a Slack
    message."""

    what = "integrations"

    def __init__(self, engine: sa.Engine, senders: dict[str, Sender], *, manager: str | None,
                 clock: Clock = utc_now, every: float = EVERY_SECONDS) -> None:
        super().__init__(clock=clock, every=every)
        self.engine, self.senders, self.manager = engine, senders, manager
        self.last_report: IntegrationReport | None = None

    def run_pass(self) -> IntegrationReport:
        return deliver_integrations(self.engine, self.senders, now=self.clock(), manager=self.manager)


def webhook_sender(webhook) -> Sender:  # noqa: ANN001 (a bot.integrations.webhook.Webhook)
    """The webhook's notices: the body as queued, signed at `now`."""

    def send(engine: sa.Engine, notice: Notice, now: datetime) -> None:
        webhook.send(notice.text or "{}", timestamp=int(now.timestamp()))

    return send
