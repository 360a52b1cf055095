"""The one way events enter pqlbot: store them, then rescore the users they touched.

The command line, the HTTP endpoints and the demo all go through `Pipeline`, so they cannot drift.

New leads are routed (bot/services/routing.py, `Router.route_all`) in the transaction that recorded them, except
those of a rescore on SQLite (`rescore_all`, `rescore_users`): SQLite has one writer, and a rescore that routed
the thousands of leads a backfill raises in its own transaction held off claims, clicks and ingestion meanwhile.
There the scoring commits first and the leads are routed as a set in a transaction of their own right after
(`_route_after`); their alerts wait for it, so each goes out once, to its team's channel, saying who has it. Should
the process die between the two commits, the queue sweep routes them a minute later (`route_owed`); should the
routing fail, the rescore says so (`RoutingLeftToSweep`), and the queue sweep routes them all the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from bot import store
from bot.clock import Clock, utc_now
from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import PqlState
from bot.services import account_leads, accounts, holds, identity, leads, nurture, tracking
from bot.services.rescore import Rescored, default_processes, rescore, rescore_added
from bot.services.routing import Router
from bot.settings import Settings
from bot.store import tallies
from bot.store.events import Stored, store_events
from bot.store.models import Notice, Pql, SweepRun
from bot.store.queries import in_chunks, rows_for
from scoring import DEFAULT_RULES, Event, Rules, load_rules
from scoring.tally import VERSION as TALLY_VERSION

RESCORE_SWEEP = "rescore"
#: Product events that stop an open lead's sequence (seed 002, section 2 guardrails): a completed checkout is a
#: conversion too (seed 001: a checkout holds a lead until it completes).
STOPPING_EVENTS = frozenset({"trial_converted", "checkout_completed", "sales_opt_out"})
#: Product events that act on a user's lead (a conversion, a stop, a hold): only a user with a lead is looked at.
LEAD_EVENTS = STOPPING_EVENTS | holds.HOLD_EVENTS
_PQLS = Pql.__tablename__
_NOTICES = Notice.__table__
#: A rescore's leads whose routing is owed (`_route_after`): a `sweep_runs` row named this and the first lead's id,
#: its fingerprint the first and last ids ("41-97"), written with the leads and deleted with their routing.
ROUTING_OWED = "routing-owed:"
#: How long a rescore's own routing may take before the queue sweep routes its leads instead (`route_owed`); its
#: alerts wait twice as long at most, so they go out even with no sweep running.
ROUTING_GRACE = timedelta(minutes=1)


def fingerprint(path: Path | None) -> str:
    """What identifies the rules in force: the file's content, not its name or modification time."""
    source = DEFAULT_RULES if path is None else path
    return hashlib.sha256(source.read_bytes()).hexdigest()


class RoutingLeftToSweep(Exception):
    """A rescore on SQLite saved its scoring, but routing its new leads in their own transaction failed: `owed` leads
    wait for the queue sweep to route them (`route_owed`), and `report` is what the rescore found."""

    def __init__(self, report: Rescored, owed: int, reason: BaseException) -> None:
        self.report, self.owed = report, owed
        self.reason = _first_line(reason)
        super().__init__(f"scoring saved; routing {owed} new lead{'s' if owed != 1 else ''} failed: {self.reason}")


class RoutingUndid(Exception):
    """A rescore on PostgreSQL could not route its new leads in its own transaction, so nothing of it was saved:
    the store is as it was, and the rescore can simply be run again (`reason`: what failed, in one line)."""

    def __init__(self, leads: int, reason: BaseException) -> None:
        self.leads, self.reason = leads, _first_line(reason)
        super().__init__(f"routing {leads} new lead{'s' if leads != 1 else ''} failed, nothing saved: {self.reason}")


def _first_line(error: BaseException) -> str:
    """The first line of what failed: a database error's own words, without the statement it ran."""
    return (str(getattr(error, "orig", None) or error) or type(error).__name__).splitlines()[0]


@dataclass(slots=True)
class Ingested:
    stored: Stored
    rescored: Rescored


class Pipeline:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        tz: tzinfo,
        rules_path: Path | None = None,
        clock: Clock = utc_now,
        router: Router | None = None,
        processes: int | None = None,
        rules: Rules | None = None,
    ) -> None:
        """`processes`: how many may judge a full rescore of a big store (None or 0: one per CPU, up to 4).
        `rules`: those of `rules_path`, when the caller has loaded them already."""
        self.engine, self.tz, self.rules_path, self.clock, self.router = engine, tz, rules_path, clock, router
        self.processes = processes or default_processes()
        # Called after a transaction that may owe Slack something (serve wakes its deliverer with it).
        self.on_new_work: Callable[[], None] = lambda: None
        self.rules: Rules = rules if rules is not None else load_rules(rules_path)
        self.rules_fingerprint = fingerprint(rules_path)
        self.basis = self._basis()

    def _basis(self) -> str:
        """What users' running tallies are made under: these rules, in this time zone."""
        return tallies.basis(self.rules.model_dump_json(), str(self.tz), TALLY_VERSION)

    def session(self) -> Session:
        return store.session(self.engine)

    def ingest(self, events: Sequence[Event], *, at: datetime | None = None, score: bool = True) -> Ingested:
        """Store new events and rescore their users at once, in one transaction, new leads routed in it too on
        either store: a group raises a few, its alerts are owed within a second of the commit, and each must go out
        saying who has the lead (a rescore's thousands are routed after it, on SQLite: see the module's docstring)."""
        at = at or self.clock()
        with self.session() as session, session.begin():
            connection = session.connection()
            received = self.clock()  # when it really arrived
            resolved = identity.resolve(connection, events, now=received)
            events = resolved.events
            stored = store_events(connection, events, now=received)
            fresh = [event for event in events if event.message_id in stored.fresh]  # a replay adds nothing
            tallies.drop(connection, resolved.moved_away)
            rescored = Rescored()
            if not score:
                tallies.drop(connection, stored.users)  # stored and not added: built again from the history later
            else:
                added: dict[str, list[Event]] = {}
                for event in fresh:
                    added.setdefault(event.user_id, []).append(event)
                changed_accounts = accounts.record_groups(connection, fresh, now=received)
                rescored = rescore_added(session, self.rules, at=at, tz=self.tz, added=added,
                                         rebuild=resolved.merged, rejudge=tallies.members(connection, changed_accounts),
                                         basis=self.basis)
                self._route(session, rescored, at)
            stored.users |= resolved.merged
            led = _with_leads(session, events)  # each step below finds nothing to do for a user without a lead
            # ... or their account has one: a member's ticket or checkout holds it, their conversion is the company's,
            # their opt-out news for its rep
            led |= account_leads.members_of_led_accounts(
                session, {event.user_id for event in fresh if event.name in LEAD_EVENTS} - led, closed_too=True)
            for event in fresh:  # before the stop: the lead is read as it was when the user converted
                if event.name == "trial_converted" and event.user_id in led:
                    leads.record_conversion(session, event.user_id, at=event.at, now=at, props=event.props)
            stopped = [leads.stop_for_product_event(session, event.user_id, event.name, at=event.at, now=at)
                       for event in events  # only an open lead of that trial stops
                       if event.name in STOPPING_EVENTS and event.user_id in led]
            grace = timedelta(hours=self.rules.do_not_touch.checkout_grace_hours)
            held = [holds.apply(session, event, now=at, calendar_of=self._calendar_of, checkout_grace=grace)
                    for event in sorted(fresh, key=lambda event: event.at)  # not a replay
                    if event.name in holds.HOLD_EVENTS and event.user_id in led]
        if rescored.triggered or rescored.upgraded or rescored.accounts or rescored.absorbed or any(stopped) \
                or any(held):
            # After the commit: an alert (or its edit) is owed within a second, not at the next poll. Only
            # then: at 1,000 events a second a pass after every commit cost a tenth of the server's CPU.
            self.on_new_work()
        return Ingested(stored, rescored)

    def rescore_users(self, user_ids: Iterable[str], *, at: datetime | None = None) -> Rescored:
        """Some users, as of `at`: for a backfill, once all their events are in (a big one is judged by up to
        `processes` processes, as `rescore_all` is)."""
        at = at or self.clock()
        with self.session() as session, session.begin():
            report = rescore(session, self.rules, at=at, tz=self.tz, user_ids=user_ids, processes=self.processes,
                             basis=self.basis)
            owed = self._route_or_undo(session, report, at)
        self._route_or_leave(report, owed, at)
        return report

    def rescore_all(self, *, at: datetime | None = None) -> Rescored:
        """Everyone, as of `at`: holds expire, windows close and trial clocks move."""
        at = at or self.clock()
        with self.session() as session, session.begin():
            report = rescore(session, self.rules, at=at, tz=self.tz, processes=self.processes, basis=self.basis)
            owed = self._route_or_undo(session, report, at)
            session.merge(SweepRun(name=RESCORE_SWEEP, last_run_at=at, fingerprint=self.rules_fingerprint))
        self._route_or_leave(report, owed, at)
        return report

    def _route(self, session: Session, report: Rescored, at: datetime, *, after: bool = False) -> list[int]:
        """In the transaction that recorded them: a nurtured lead lifted a tier goes back to its owner's attention
        (bot/services/nurture.py: a few DMs, never lost to a crash), and new leads go to a rep (or the queue), or
        with `after` on SQLite are owed to a transaction of their own (`_route_after`). Returns the leads owed."""
        if report.upgraded:
            nurture.reraise(session, report.upgraded, now=at, manager=self.router.manager if self.router else None)
        if self.router is None:
            return []
        if after and report.triggered and self.engine.dialect.name == "sqlite":
            _owe(session, report.triggered, since=self.clock())
            return report.triggered
        self.router.route_all(session, report.triggered, now=at, verdicts=report.results)
        return []

    def _route_or_undo(self, session: Session, report: Rescored, at: datetime) -> list[int]:
        """A rescore's `_route` (`after`): where that routes in the rescore's own transaction (PostgreSQL), its
        failure raised as `RoutingUndid`, the transaction undone on the way out."""
        try:
            return self._route(session, report, at, after=True)
        except Exception as error:
            raise RoutingUndid(len(report.triggered), error) from error

    def _calendar_of(self, pql: Pql) -> BusinessCalendar | None:
        """The calendar a lead's clocks run on: its team's (with no router, none: time held counts in full)."""
        return self.router.teams.team(pql.team).calendar if self.router else None

    def _route_or_leave(self, report: Rescored, owed: list[int], at: datetime) -> None:
        """`_route_after`, its failure raised as `RoutingLeftToSweep`: the scoring stands, and the leads are still owed
        to the queue sweep."""
        try:
            self._route_after(owed, at)
        except Exception as error:
            raise RoutingLeftToSweep(report, len(owed), error) from error

    def _route_after(self, owed: list[int], at: datetime) -> None:
        """Route a rescore's new leads (`owed`, in the order they qualified) once its scoring is committed, as a set
        in a transaction of their own, on the counts as they are then (a claim made meanwhile counts against its
        rep's cap), and let their alerts go. PostgreSQL routes in the rescore's transaction: its row locks hold
        off nobody else, so nothing would be gained."""
        if not owed:
            return
        with self.session() as session, session.begin():
            self.router.route_all(session, owed, now=at)
            _settle(session, owed, now=at)

    def route_owed(self, *, now: datetime) -> dict[int, str | None]:
        """What a rescore owed and never routed (its process died between its two commits), routed now: its open
        leads that nobody has and that do not wait in the queue, in id order, once the rescore is `ROUTING_GRACE`
        old (its own routing may be under way until then), and their alerts let go. `route_all` leaves a lead
        given, queued or closed alone, and the debt is settled with the routing, so running it again changes
        nothing. Who got each lead (None: queued); nothing without a router, whose leads nobody routes."""
        if self.router is None:
            return {}
        with self.session() as session, session.begin():
            runs = list(session.exec(select(SweepRun).where(SweepRun.name.startswith(ROUTING_OWED),
                                                            SweepRun.last_run_at <= now - ROUTING_GRACE)))
            if not runs:
                return {}
            spans = [tuple(int(end) for end in run.fingerprint.split("-")) for run in runs]
            waiting = [PqlState.QUALIFIED, PqlState.ALERTED]
            ids = sorted(session.exec(select(Pql.id).where(
                sa.or_(*(Pql.id.between(first, last) for first, last in spans)),
                Pql.state.in_(waiting), Pql.rep_id.is_(None))))
            routed = self.router.route_all(session, ids, now=now)
            _alerts_due(session.connection(), ids, now)
            for run in runs:
                session.delete(run)
        return routed

    def rescore_if_due(self, *, at: datetime | None = None, every_hours: float = 24) -> Rescored | None:
        """The periodic sweep: runs when the last one is older than `every_hours` or used other rules.

        A changed rules file is reloaded first, so editing it is enough to recalibrate everyone.
        """
        at = at or self.clock()
        current = fingerprint(self.rules_path)
        if current != self.rules_fingerprint:
            self.rules, self.rules_fingerprint = load_rules(self.rules_path), current
            self.basis = self._basis()
        with self.session() as session:
            last = session.get(SweepRun, RESCORE_SWEEP)
        if last and last.fingerprint == current and (at - last.last_run_at).total_seconds() < every_hours * 3600:
            return None
        return self.rescore_all(at=at)


def _with_leads(session: Session, events: Sequence[Event]) -> set[str]:
    """The users of `events` who have a lead (of any trial, in any state), among those with a lead event: one
    statement a group, where asking each event's user on its own cost a statement per event (a backfill has
    thousands of tickets and checkouts, most of them of users no rep was ever given)."""
    users = {event.user_id for event in events if event.name in LEAD_EVENTS}
    if not users:
        return set()
    session.flush()  # the leads this transaction recorded are read too
    return {user for (user,) in rows_for(session.connection(), f"SELECT DISTINCT user_id FROM {_PQLS}", users)}


def _owe(session: Session, pql_ids: list[int], *, since: datetime) -> None:
    """In the scoring transaction: these leads' routing is owed (a `ROUTING_OWED` row, from `since`), and their
    alerts wait for it, for twice `ROUTING_GRACE` at most."""
    first, last = min(pql_ids), max(pql_ids)
    session.add(SweepRun(name=f"{ROUTING_OWED}{first}", last_run_at=since, fingerprint=f"{first}-{last}"))
    _alerts_due(session.connection(), pql_ids, since + 2 * ROUTING_GRACE)


def _settle(session: Session, pql_ids: list[int], *, now: datetime) -> None:
    """The leads are routed: their alerts go now, and nothing is owed for them."""
    connection = session.connection()
    _alerts_due(connection, pql_ids, now)
    connection.execute(sa.delete(SweepRun.__table__).where(SweepRun.name == f"{ROUTING_OWED}{min(pql_ids)}"))


def _alerts_due(connection: sa.Connection, pql_ids: list[int], at: datetime) -> None:
    """The leads' alerts, not yet sent, due at `at`: a few statements for a set."""
    for keys in in_chunks([f"alert:{pql_id}" for pql_id in pql_ids]):
        connection.execute(sa.update(_NOTICES).where(_NOTICES.c.key.in_(keys), _NOTICES.c.state == "pending")
                           .values(next_attempt_at=at))


def for_team(engine: sa.Engine, settings: Settings, *, clock: Clock = utc_now, rules: Rules | None = None) -> Pipeline:
    """The pipeline every long-lived command uses: scoring with the team's rules (`rules`, when the caller has
    loaded PQL_RULES_FILE already) and timezone, and new leads routed to the roster (synced from PQL_REPS here, so
    routing never sees a stale one)."""
    tracking.configure(settings.sinks)  # the CRM and the webhook, fed by the outbox when configured
    router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=settings.pql_manager,
                    fast_lane=settings.fast_lane, teams=settings.teams)
    pipeline = Pipeline(engine, tz=settings.tz, rules_path=settings.pql_rules_file, clock=clock, router=router,
                        processes=settings.rescore_processes, rules=rules)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, settings.roster, now=clock())
    return pipeline
