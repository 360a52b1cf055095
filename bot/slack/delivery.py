"""The outbox's sender (the outbox is bot/services/outbox.py): post what is due, retry what failed, keep alerts up
to date. It reaches Slack only through the Gateway's methods (bot/slack/gateway.py).

One pass (`deliver_due`) takes the pending notices that are due, oldest first. Each is *claimed* with a
conditional UPDATE (pending -> sending, naming this process's holder) committed before Slack is called, so two
workers (threads or processes) never send the same notice; the one whose UPDATE changes no row skips it. After
Slack answers, the outcome is saved in one transaction: the notice is sent (with its channel and ts) and, for an
alert, the lead learns where its alert is and moves from qualified to alerted. A failure (Slack said no, or the
connection failed, after the client's own retries) puts the notice back to pending with a growing delay; after
MAX_ATTEMPTS it is failed for good. Then `refresh_alerts` edits every alert whose lead changed since it was
rendered.

Who holds a notice while it is sent, and why no send is ever repeated by another process: a notice in "sending"
names its holder (bot/store/holders.py), the process that claimed it, which holds a lock of its own for as long as
it lives (PostgreSQL: a session-level advisory lock; SQLite: a file lock beside the database). At the start of
every pass, `release_stale` puts a notice back to pending when, and only when, its holder's lock is free. A free
lock means the holder is dead, so nothing is sending the notice; a held one means it lives, so its claim never
runs out, however long Slack takes to answer, and no other process can send the notice meanwhile. And the database
or the operating system lets go of a dead process's lock the moment it dies, so the notices of a process killed
mid-send are taken up by the first pass after it (a restart's, or another process's), not minutes later. Within a
process, a notice it holds but is no longer sending (its outcome could not be saved) is released by its next pass.
A notice claimed by a pqlbot from before holders has none, and goes back after LEASE, as it used to. The case this
leaves open: on PostgreSQL, a holder whose own session ends while its process lives (the server restarted, the
connection was killed) has its claims released, possibly mid-send; it claims nothing more until it holds its lock
again, and an alert or reply is looked for before it is posted again (below).

Rate limits are scheduled, not slept (bot/slack/gateway.py). A 429 is not a failed attempt (Slack did nothing): the
gateway holds back what Slack limited until its Retry-After has passed, and the notice goes back to pending, due
then, its attempts unchanged. The pass goes on with the rest: a notice for what is held is put back the same way
without calling Slack, and DMs, other channels and click answers go out. The Deliverer wakes when the earliest
notice is due, so a limited channel's notices follow, in order, once it opens.

A review notice (kind "review", text = the week, e.g. 2026-W45) is rendered when it is sent, like an alert,
by a `render_review` callable: the blocks are posted to its target channel, the channel and ts are saved
on the notice at once, and then the chart is uploaded. A failed upload is retried without posting the
blocks again. Without a `render_review` a review notice waits (it is not an attempt).

Where a post can be duplicated, and how alerts and replies are not: Slack may accept a message and the
answer never arrive (the connection drops after Slack acted, a 5xx after it acted, or pqlbot dies before the
commit that records it: its notice is released by the next pass). Posting again would post twice. So alerts and
thread replies are posted with Slack message metadata naming what they are (`{"event_type": "pql_alert",
"event_payload": {"pql_id": N, "version": V}}`, N being what the notice's key `alert:N` names; replies `pql_reply`
with the notice's key; a message of its own in the alerts channel, such as an escalation digest's `<!here>`,
`pql_post` with its key), and are never re-posted blind (`Gateway.post_once`): before any post that follows an
unclear failure (an earlier attempt of the notice, or a dropped connection or 5xx within this one) the channel
(`conversations.history`) or the thread (`conversations.replies`) is read from LOOKBACK before the notice was
queued, and a message carrying that metadata is adopted instead of posting again. LOOKBACK is wide because the
window is on Slack's clock (message ts) and the notice's time on ours: Slack's may be up to 5 minutes behind.
Their posts go through a client that retries nothing: the gateway retries unclear failures itself, looking
first. This needs the channels:history scope (groups:history for a private alerts channel) and the alerts
channel's id: PQL_ALERTS_CHANNEL as an id (C0123ABCD) is used as is; as a #name, the id Slack returned for the
latest alert is used (the gateway's memory, else the store's last sent alert), so only the very first alert,
before any was ever posted, cannot be looked for. Where a lookup cannot be made (no id yet, a missing scope, a
thread gone) the post is made anyway and logged: at least once, as before. DMs, posts in other channels, reviews and
private answers are at least once: a crash or lost answer in that window can still repeat one.

Nothing here logs or stores message contents: only notice ids, kinds and Slack's error codes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from bot import store
from bot.clock import Clock, utc_now
from bot.domain.lifecycle import PqlState
from bot.services import audit
from bot.services.tracking import INTEGRATIONS
from bot.slack.gateway import FAILURES, Gateway, RateLimited, error_code
from bot.store import holders
from bot.store.holders import Holder
from bot.store.models import Notice, Pql

if TYPE_CHECKING:
    from bot.slack.runtime import Runtime

log = logging.getLogger(__name__)

_NOTICES = Notice.__table__
#: A "dm" to this is posted in the channel instead (a team's `escalate_to`, bot/domain/teams.py).
_CHANNEL_TARGET = re.compile(r"#[^\s]+|[CG][A-Z0-9]{2,}")
_PQLS = Pql.__table__
#: The CRM's and the webhook's notices are not Slack's: their own sender takes them (bot/integrations/delivery.py),
#: so an outage there never holds up a Slack message, nor one here theirs.
_FOR_SLACK = _NOTICES.c.kind.not_in(INTEGRATIONS)

#: Renders a lead's alert from the store: (fallback text, Block Kit blocks).
RenderAlert = Callable[[Session, int], tuple[str, list | None]]
#: Renders a week's review from the store: (fallback text, blocks, chart PNG path or None). The PNG is a
#: temporary file: delivery removes it once uploaded.
RenderReview = Callable[[Session, str], tuple[str, list | None, Path | str | None]]

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=30)
#: The old lease, for notices left "sending" without a holder (by a pqlbot from before holders): they go back
#: after this long. A claim still writes it, so such a process, running beside this one during an upgrade,
#: leaves this one's claims alone as long as it used to.
LEASE = timedelta(minutes=10)
#: How often the Deliverer runs when nobody kicks it and nothing falls due sooner.
EVERY_SECONDS = 15.0
#: What a failed Slack call raises once the client has stopped retrying (the gateway's FAILURES).
DELIVERY_ERRORS = FAILURES
#: Slack answers that mean an alert can never be edited again: stop trying.
_UNEDITABLE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
#: Message metadata event types: what lets a retry find a post whose answer was lost.
ALERT_EVENT = "pql_alert"
REPLY_EVENT = "pql_reply"
POST_EVENT = "pql_post"  # a message of its own in the alerts channel (an escalation digest's <!here>)
#: How far Slack's clock may be behind ours: Slack refuses requests signed over 5 minutes off its own clock,
#: the skew it documents and tolerates.
SLACK_CLOCK_SKEW = timedelta(minutes=5)
#: A lookup reads Slack's messages from this long before the notice was queued (on our clock): Slack's skew, and
#: a minute more for our own processes' clocks (the notice may have been queued by another), at most
#: gateway.LOOKUP_MAX messages. The post itself comes after the notice was queued, however long it took.
LOOKBACK = SLACK_CLOCK_SKEW + timedelta(minutes=1)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0  # notices posted in this pass
    failed: int = 0  # attempts that failed in this pass (most are retried later)
    waiting: int = 0  # replies held back until their lead's alert is posted
    updated: int = 0  # alerts edited to match their lead
    held: int = 0  # notices put back until Slack's rate limit on their channel (or method) has passed
    next_due: datetime | None = None  # when the next pending notice falls due after `now` (a retry, a limit's end)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling with each one after it, at most 30 minutes."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)


def deliver_due(engine: sa.Engine, gateway: Gateway, *, render_alert: RenderAlert, alerts_channel: str,
                now: datetime, limit: int = 200, render_review: RenderReview | None = None,
                make_way: Callable[[], None] = lambda: None, holder: Holder | None = None) -> DeliveryReport:
    """One delivery pass as of `now`; see the module docstring. Safe to run from several workers at once.
    `make_way` is called before each notice and each edit (it may wait: see Runtime.answering). `holder` is
    this process's for the store unless a test plays another process."""
    report = DeliveryReport()
    holder = holder or holders.of(engine)
    if not holder.alive():
        log.warning("delivery waits: this process does not hold its lock on the store (the store is away?)")
        return report
    release_stale(engine, now=now, holder=holder)
    with engine.connect() as connection:
        due = connection.execute(
            sa.select(_NOTICES.c.id).where(_NOTICES.c.state == "pending", _NOTICES.c.next_attempt_at <= now,
                                           _FOR_SLACK).order_by(_NOTICES.c.id).limit(limit)
        ).scalars().all()
    for notice_id in due:
        make_way()
        try:
            outcome = _deliver(engine, gateway, holder, notice_id, render_alert=render_alert,
                               alerts_channel=alerts_channel, now=now, render_review=render_review)
        except Exception:  # a bug in one notice (say its rendering) must not hold up the rest
            log.exception("delivering notice %s failed unexpectedly", notice_id)
            outcome = "failed"
        if outcome == "sent":
            report.sent += 1
        elif outcome == "failed":
            report.failed += 1
        elif outcome == "waiting":
            report.waiting += 1
        elif outcome == "held":
            report.held += 1
    report.updated = refresh_alerts(engine, gateway, render_alert, now, make_way=make_way)
    with engine.connect() as connection:  # (what is due already and still pending waits for something else)
        report.next_due = connection.scalar(sa.select(sa.func.min(_NOTICES.c.next_attempt_at)).where(
            _NOTICES.c.state == "pending", _NOTICES.c.next_attempt_at > now, _FOR_SLACK))
    return report


def release_stale(engine: sa.Engine, *, now: datetime, holder: Holder | None = None) -> int:
    """Notices whose sender is gone go back to pending, counting the interrupted try as an attempt: those of a
    holder whose lock is free (it died), this holder's own that it is no longer sending, and those without a holder
    past LEASE (see the module docstring). The dead sender may have posted before it died: an alert or reply is
    looked for in Slack before it is posted again; a DM or channel post may be repeated."""
    holder = holder or holders.of(engine)
    sending = _NOTICES.c.state == "sending"
    with engine.connect() as connection:
        named = connection.execute(sa.select(_NOTICES.c.holder).where(sending).distinct()).scalars().all()
    released = 0
    for other in named:
        if other is None:
            with engine.begin() as connection:
                released += _interrupted(connection, sa.and_(sending, _NOTICES.c.holder.is_(None),
                                                             _NOTICES.c.next_attempt_at <= now), now)
        elif other == holder.id:
            with holder.claiming() as in_flight, engine.begin() as connection:
                released += _interrupted(connection, sa.and_(sending, _NOTICES.c.holder == other,
                                                             _NOTICES.c.id.not_in(list(in_flight))), now)
        else:
            with engine.begin() as connection:  # (on PostgreSQL the gone holder's lock is ours till this commits)
                if holder.gone(connection, other):
                    released += _interrupted(connection, sa.and_(sending, _NOTICES.c.holder == other), now)
    if released:
        log.warning("%d notice(s) were left sending by an interrupted delivery; retrying them", released)
    return released


def _interrupted(connection: sa.Connection, which: sa.ColumnElement[bool], now: datetime) -> int:
    return connection.execute(
        sa.update(_NOTICES).where(which).values(
            # The integrations' notices give up by age, not attempts (bot/integrations/delivery.py).
            state=sa.case((sa.and_(_NOTICES.c.attempts + 1 >= MAX_ATTEMPTS, _FOR_SLACK), "failed"), else_="pending"),
            attempts=_NOTICES.c.attempts + 1, last_error="interrupted", next_attempt_at=now, holder=None,
        )
    ).rowcount


def claim(engine: sa.Engine, holder: Holder, notice_id: int, now: datetime) -> bool:
    """pending -> sending by `holder` (see `_claim`): for the integrations' sender."""
    return _claim(engine, holder, notice_id, now)


def _claim(engine: sa.Engine, holder: Holder, notice_id: int, now: datetime) -> bool:
    """pending -> sending by `holder`, committed at once; False when another worker got there first."""
    with holder.claiming() as in_flight, engine.begin() as connection:
        claimed = connection.execute(
            sa.update(_NOTICES).where(_NOTICES.c.id == notice_id, _NOTICES.c.state == "pending",
                                      _NOTICES.c.next_attempt_at <= now)
            .values(state="sending", holder=holder.id, next_attempt_at=now + LEASE)
        ).rowcount == 1
        if claimed:
            in_flight.add(notice_id)
        return claimed


def _deliver(engine: sa.Engine, gateway: Gateway, holder: Holder, notice_id: int, *, render_alert: RenderAlert,
             alerts_channel: str, now: datetime, render_review: RenderReview | None = None) -> str:
    """Send one notice: "sent", "failed", "held" (Slack's rate limit), "waiting" (a reply before its alert, a
    review with no renderer) or "skipped"."""
    with store.session(engine) as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.state != "pending":
            return "skipped"
        if notice.kind == "reply":
            pql = session.get(Pql, notice.pql_id) if notice.pql_id is not None else None
            if pql is None or pql.alert_ts is None:
                return "waiting"  # not an attempt: it goes once the alert is up
        if notice.kind == "review" and render_review is None:
            log.warning("review notice %s waits: this deliverer has no render_review", notice_id)
            return "waiting"
    if not _claim(engine, holder, notice_id, now):
        return "skipped"
    try:
        return _send_claimed(engine, gateway, notice, render_alert=render_alert, alerts_channel=alerts_channel,
                             now=now, render_review=render_review)
    finally:
        holder.done(notice_id)


def _send_claimed(engine: sa.Engine, gateway: Gateway, notice: Notice, *, render_alert: RenderAlert,
                  alerts_channel: str, now: datetime, render_review: RenderReview | None) -> str:
    try:
        if notice.kind == "alert":
            _send_alert(engine, gateway, notice, render_alert=render_alert, alerts_channel=alerts_channel, now=now)
            return "sent"
        if notice.kind == "reply":
            channel, ts = _send_reply(engine, gateway, notice)
        elif notice.kind == "review":
            channel, ts = _send_review(engine, gateway, notice, render_review)
        elif notice.kind == "channel" and notice.target == alerts_channel:
            channel, ts = _send_to_alerts_channel(engine, gateway, notice, alerts_channel)
        else:
            channel, ts = _send(engine, gateway, notice)
    except RateLimited as limited:
        _held_back(engine, notice, limited, now)
        return "held"
    except DELIVERY_ERRORS as error:
        _failed(engine, notice, error_code(error), now)
        return "failed"
    except Exception as error:
        _failed(engine, notice, type(error).__name__, now)
        raise
    with engine.begin() as connection:
        _mark_sent(connection, notice.id, channel, ts, now)
    return "sent"


def _send(engine: sa.Engine, gateway: Gateway, notice: Notice) -> tuple[str, str]:
    text, blocks = notice.text or "", notice.blocks
    if blocks is None and notice.payload is not None:  # a typed notice: its Block Kit is built now
        from bot.slack.blocks.notices import render_notice

        blocks = render_notice(notice.payload, text)
    if notice.kind == "dm":
        if _CHANNEL_TARGET.fullmatch(notice.target or ""):  # a team whose escalations go to a channel, not a person
            return gateway.post(notice.target, text, blocks)
        return gateway.dm(notice.target, text, blocks)
    if notice.kind == "channel":
        return gateway.post(notice.target, text, blocks)
    if notice.kind == "ephemeral":
        return notice.channel, gateway.ephemeral(notice.channel, notice.target, text, blocks)
    raise ValueError(f"unknown notice kind {notice.kind!r}")


def _send_review(engine: sa.Engine, gateway: Gateway, notice: Notice,
                 render_review: RenderReview) -> tuple[str, str]:
    """Post the review's blocks (unless an earlier attempt did), then upload its chart."""
    from bot.review import words

    with store.session(engine) as session:
        text, blocks, chart = render_review(session, notice.text or "")
    try:
        if notice.ts is None:
            channel, ts = gateway.post(notice.target, text, blocks)
            with engine.begin() as connection:  # saved before the upload: a retry must not post it twice
                connection.execute(sa.update(_NOTICES).where(_NOTICES.c.id == notice.id).values(channel=channel, ts=ts))
        else:
            channel, ts = notice.channel, notice.ts
        if chart is not None:
            label = (notice.text or "").replace("|", " · ")  # "2026-W45|ae": a team's review
            gateway.upload_file(channel, chart, title=words("title", label=label),
                                initial_comment=words("chart_comment", label=label))
    finally:
        if chart is not None:
            Path(chart).unlink(missing_ok=True)
    return channel, ts


def _mark_sent(connection: sa.Connection, notice_id: int, channel: str, ts: str, now: datetime) -> None:
    # "pending" too: if this send outlived its lease and was released, it is done all the same.
    connection.execute(
        sa.update(_NOTICES).where(_NOTICES.c.id == notice_id, _NOTICES.c.state.in_(("sending", "pending")))
        .values(state="sent", channel=channel, ts=ts, sent_at=now, last_error=None, holder=None)
    )


def _send_alert(engine: sa.Engine, gateway: Gateway, notice: Notice, *, render_alert: RenderAlert,
                alerts_channel: str, now: datetime) -> None:
    with store.session(engine) as session:
        pql = session.get(Pql, notice.pql_id)
        if pql is None:
            raise LookupError("the notice's lead is gone")
        if pql.alert_ts is not None:  # posted already, by a send that outlived its lease
            channel, ts = pql.alert_channel, pql.alert_ts
            with engine.begin() as connection:
                _mark_sent(connection, notice.id, channel, ts, now)
            return
        version = pql.version
        text, blocks = render_alert(session, pql.id)
        if notice.channel and notice.channel != alerts_channel:  # its team's channel (bot/services/routing.py)
            alerts_channel = notice.channel
            look_in = gateway.channel_id(alerts_channel)  # the store's last alert may be in another team's channel
        else:
            look_in = _alerts_channel_id(session, gateway, alerts_channel)
    metadata = {"event_type": ALERT_EVENT, "event_payload": {"pql_id": pql.id, "version": version}}
    channel, ts, found = gateway.post_once(alerts_channel, text, blocks, metadata=metadata, look_in=look_in,
                                           since=notice.created_at - LOOKBACK, look_first=notice.attempts > 0)
    if found is not None:  # an earlier try reached Slack: its message stands, edited later if stale
        log.warning("lead %s's alert was already in Slack (notice %s); keeping it", pql.id, notice.id)
        seen = found.get("version")
        version = seen if isinstance(seen, int) and 0 <= seen <= version else 0
    else:
        gateway.remember_channel(alerts_channel, channel)
    with store.session(engine) as session, session.begin():
        connection = session.connection()
        _mark_sent(connection, notice.id, channel, ts, now)
        placed = connection.execute(
            sa.update(_PQLS).where(_PQLS.c.id == pql.id, _PQLS.c.alert_ts.is_(None))
            .values(alert_channel=channel, alert_ts=ts, posted_version=version)
        ).rowcount
        if not placed:
            log.warning("lead %s's alert was posted twice; keeping the first (notice %s)", pql.id, notice.id)
            return
        alerted = connection.execute(
            sa.update(_PQLS).where(_PQLS.c.id == pql.id, _PQLS.c.state == PqlState.QUALIFIED)
            .values(state=PqlState.ALERTED, updated_at=now)
        ).rowcount
        if alerted:
            audit.record(session, "pql_alerted", at=now, pql_id=pql.id, user_id=pql.user_id, channel=channel, ts=ts)


def _send_reply(engine: sa.Engine, gateway: Gateway, notice: Notice) -> tuple[str, str]:
    """A message in the alert's thread, posted once (see the module docstring)."""
    with store.session(engine) as session:
        pql = session.get(Pql, notice.pql_id)
        channel, thread_ts = pql.alert_channel, pql.alert_ts
    metadata = {"event_type": REPLY_EVENT, "event_payload": {"key": notice.key}}
    channel, ts, found = gateway.post_once(channel, notice.text or "", notice.blocks, metadata=metadata,
                                           look_in=channel, thread_ts=thread_ts, since=notice.created_at - LOOKBACK,
                                           look_first=notice.attempts > 0)
    if found is not None:
        log.warning("notice %s's reply was already in its thread; keeping it", notice.id)
    return channel, ts


def _send_to_alerts_channel(engine: sa.Engine, gateway: Gateway, notice: Notice,
                            alerts_channel: str) -> tuple[str, str]:
    """A message of its own in the alerts channel (an escalation digest with its `<!here>`), posted once like a
    reply: carrying its key as metadata, looked for in the channel before it is posted again."""
    text, blocks = notice.text or "", notice.blocks
    if blocks is None and notice.payload is not None:
        from bot.slack.blocks.notices import render_notice

        blocks = render_notice(notice.payload, text)
    with store.session(engine) as session:
        look_in = _alerts_channel_id(session, gateway, alerts_channel)
    metadata = {"event_type": POST_EVENT, "event_payload": {"key": notice.key}}
    channel, ts, found = gateway.post_once(notice.target, text, blocks, metadata=metadata, look_in=look_in,
                                           since=notice.created_at - LOOKBACK, look_first=notice.attempts > 0)
    if found is not None:
        log.warning("notice %s was already in the alerts channel; keeping it", notice.id)
    return channel, ts


def _alerts_channel_id(session: Session, gateway: Gateway, alerts_channel: str) -> str | None:
    """The id to read the alerts channel by: PQL_ALERTS_CHANNEL itself when it is one, else the id Slack
    answered with for the latest alert (this process's gateway remembers it, else the store's last sent alert);
    None before any alert was posted."""
    known = gateway.channel_id(alerts_channel)
    if known:
        return known
    return session.connection().execute(
        sa.select(_NOTICES.c.channel).where(_NOTICES.c.kind == "alert", _NOTICES.c.state == "sent",
                                            _NOTICES.c.channel.is_not(None))
        .order_by(_NOTICES.c.sent_at.desc(), _NOTICES.c.id.desc()).limit(1)
    ).scalar()


def _failed(engine: sa.Engine, notice: Notice, code: str, now: datetime) -> None:
    attempts = notice.attempts + 1
    gave_up = attempts >= MAX_ATTEMPTS
    with engine.begin() as connection:
        connection.execute(
            sa.update(_NOTICES).where(_NOTICES.c.id == notice.id, _NOTICES.c.state == "sending").values(
                state="failed" if gave_up else "pending", attempts=attempts, last_error=code,
                next_attempt_at=now if gave_up else now + retry_delay(attempts), holder=None,
            )
        )
    if gave_up:
        log.error("notice %s (%s) failed for good after %d attempts: %s", notice.id, notice.kind, attempts, code)
    else:
        log.warning("notice %s (%s) failed (attempt %d, %s); retrying in %s", notice.id, notice.kind, attempts,
                    code, retry_delay(attempts))


def _held_back(engine: sa.Engine, notice: Notice, limited: RateLimited, now: datetime) -> None:
    """Slack's rate limit on where the notice goes: back to pending until it has passed. Not an attempt (Slack
    did nothing), so it is never given up for being limited."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(_NOTICES).where(_NOTICES.c.id == notice.id, _NOTICES.c.state == "sending").values(
                state="pending", last_error="ratelimited", holder=None,
                next_attempt_at=now + timedelta(seconds=limited.retry_after),
            )
        )
    log.info("notice %s (%s) waits %.0f s for Slack's rate limit on %s", notice.id, notice.kind,
             limited.retry_after, limited.limited)


def refresh_alerts(engine: sa.Engine, gateway: Gateway, render_alert: RenderAlert, now: datetime,
                   *, limit: int = 200, make_way: Callable[[], None] = lambda: None) -> int:
    """Edit the alerts of leads that changed since their alert was rendered (version > posted_version);
    returns how many were edited. `posted_version` is raised only to the version rendered, so a change
    made meanwhile is picked up by the next pass. A failed edit is simply tried again next pass."""
    with engine.connect() as connection:
        stale = connection.execute(
            sa.select(_PQLS.c.id).where(_PQLS.c.alert_ts.is_not(None), _PQLS.c.version > _PQLS.c.posted_version)
            .order_by(_PQLS.c.id).limit(limit)
        ).scalars().all()
    updated = 0
    for pql_id in stale:
        make_way()
        try:
            with store.session(engine) as session:
                pql = session.get(Pql, pql_id)
                version, channel, ts = pql.version, pql.alert_channel, pql.alert_ts
                text, blocks = render_alert(session, pql_id)
            try:
                gateway.update(channel, ts, text, blocks)
            except RateLimited:
                log.info("editing alerts waits for Slack's rate limit on chat.update; the next pass goes on")
                break
            except DELIVERY_ERRORS as error:
                code = error_code(error)
                if code not in _UNEDITABLE:
                    log.warning("editing lead %s's alert failed (%s); retrying next pass", pql_id, code)
                    continue
                log.error("lead %s's alert can no longer be edited (%s); leaving it as it is", pql_id, code)
            with engine.begin() as connection:
                connection.execute(
                    sa.update(_PQLS).where(_PQLS.c.id == pql_id, _PQLS.c.posted_version < version)
                    .values(posted_version=version)
                )
            updated += 1
        except Exception:
            log.exception("refreshing lead %s's alert failed unexpectedly (at %s)", pql_id, now.isoformat())
    return updated


class Passes:
    """A thread of delivery passes: one at start, whenever `kick()` is called (say, right after a claim queued a
    reply), when the earliest pending notice falls due (a retry, the end of a rate limit), and at least every
    `every` seconds. A failing pass is logged; the thread lives on. Slack's deliverer and the integrations' each
    run one (`run_pass` is theirs)."""

    what = "delivery"  # in the thread's name and the log line of a failing pass

    def __init__(self, *, clock: Clock, every: float) -> None:
        self.clock, self.every = clock, every
        self.last_report = None
        self.passes = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pqlbot-{self.what}", daemon=True)

    def run_pass(self):  # noqa: ANN201 - a report with `next_due`
        raise NotImplementedError

    def is_full(self, report) -> bool:  # noqa: ANN001
        """True when the pass stopped at its limit: the next one starts at once."""
        return False

    def start(self) -> Passes:
        self._thread.start()
        return self

    def kick(self) -> None:
        """Run a pass now (or right after the one under way)."""
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: a kick during it earns another one
            full, wait = False, self.every
            try:
                report = self.last_report = self.run_pass()
                full = self.is_full(report)
                if report.next_due is not None:
                    wait = min(wait, max((report.next_due - self.clock()).total_seconds(), 0.05))
            except Exception:
                log.exception("%s pass failed", self.what)
            self.passes += 1
            if not full:
                self._wake.wait(wait)


class Deliverer(Passes):
    """`pqlbot serve`'s Slack delivery thread (`Passes`). Its first pass takes up at once whatever a dead process
    left sending (`release_stale`)."""

    def __init__(self, engine: sa.Engine, gateway: Gateway, *, render_alert: RenderAlert, alerts_channel: str,
                 clock: Clock = utc_now, every: float = EVERY_SECONDS, limit: int = 200,
                 render_review: RenderReview | None = None, make_way: Callable[[], None] = lambda: None) -> None:
        super().__init__(clock=clock, every=every)
        self.make_way = make_way  # called before each message of a pass: serve lets a burst of acks go first
        self.engine, self.gateway, self.render_alert, self.render_review = engine, gateway, render_alert, render_review
        self.alerts_channel, self.limit = alerts_channel, limit
        self.last_report: DeliveryReport | None = None

    @classmethod
    def of(cls, runtime: Runtime, alerts_channel: str, *, make_way: Callable[[], None] = lambda: None) -> Deliverer:
        """The deliverer of a running app (bot/slack/runtime.py): its store, gateway, renderers and clock."""
        return cls(runtime.pipeline.engine, runtime.gateway, render_review=runtime.render_review,
                   render_alert=runtime.render_alert, alerts_channel=alerts_channel, clock=runtime.now,
                   make_way=make_way)

    def run_pass(self) -> DeliveryReport:
        return deliver_due(self.engine, self.gateway, render_alert=self.render_alert,
                           alerts_channel=self.alerts_channel, now=self.clock(), limit=self.limit,
                           render_review=self.render_review, make_way=self.make_way)

    def is_full(self, report: DeliveryReport) -> bool:
        return report.sent + report.failed + report.held >= self.limit

