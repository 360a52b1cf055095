"""The one way events enter pqlbot: store them, then rescore the users they touched.

The command line, the HTTP endpoints and the demo all go through `Pipeline`, so they cannot drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bot import store
from bot.clock import Clock, utc_now
from bot.services import accounts, holds, identity, leads, nurture, tracking
from bot.services.rescore import Rescored, default_processes, rescore, rescore_added
from bot.services.routing import Router
from bot.settings import Settings
from bot.store import tallies
from bot.store.events import Stored, store_events
from bot.store.models import Pql, SweepRun
from bot.store.queries import rows_for
from scoring import DEFAULT_RULES, Event, Rules, load_rules
from scoring.tally import VERSION as TALLY_VERSION

RESCORE_SWEEP = "rescore"
#: Product events that stop an open lead's sequence (seed 002, section 2 guardrails): a completed checkout is a
#: conversion too (seed 001: a checkout holds a lead until it completes).
STOPPING_EVENTS = frozenset({"trial_converted", "checkout_completed", "sales_opt_out"})
#: Product events that act on a user's lead (a conversion, a stop, a hold): only a user with a lead is looked at.
LEAD_EVENTS = STOPPING_EVENTS | holds.HOLD_EVENTS
_PQLS = Pql.__tablename__


def fingerprint(path: Path | None) -> str:
    """What identifies the rules in force: the file's content, not its name or modification time."""
    source = DEFAULT_RULES if path is None else path
    return hashlib.sha256(source.read_bytes()).hexdigest()


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
    ) -> None:
        """`processes`: how many may judge a full rescore of a big store (None or 0: one per CPU, up to 4)."""
        self.engine, self.tz, self.rules_path, self.clock, self.router = engine, tz, rules_path, clock, router
        self.processes = processes or default_processes()
        # Called after a transaction that may owe Slack something (serve wakes its deliverer with it).
        self.on_new_work: Callable[[], None] = lambda: None
        self.rules: Rules = load_rules(rules_path)
        self.rules_fingerprint = fingerprint(rules_path)
        self.basis = self._basis()

    def _basis(self) -> str:
        """What users' running tallies are made under: these rules, in this time zone."""
        return tallies.basis(self.rules.model_dump_json(), str(self.tz), TALLY_VERSION)

    def session(self) -> Session:
        return store.session(self.engine)

    def ingest(self, events: Sequence[Event], *, at: datetime | None = None, score: bool = True) -> Ingested:
        """Store new events and rescore their users at once, in one transaction."""
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
            for event in fresh:  # before the stop: the lead is read as it was when the user converted
                if event.name == "trial_converted" and event.user_id in led:
                    leads.record_conversion(session, event.user_id, at=event.at, now=at, props=event.props)
            stopped = [leads.stop_for_product_event(session, event.user_id, event.name, at=event.at, now=at)
                       for event in events  # only an open lead of that trial stops
                       if event.name in STOPPING_EVENTS and event.user_id in led]
            calendar = self.router.calendar if self.router else None
            grace = timedelta(hours=self.rules.do_not_touch.checkout_grace_hours)
            held = [holds.apply(session, event, now=at, calendar=calendar, checkout_grace=grace)  # not a replay
                    for event in sorted(fresh, key=lambda event: event.at)
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
            self._route(session, report, at)
            return report

    def rescore_all(self, *, at: datetime | None = None) -> Rescored:
        """Everyone, as of `at`: holds expire, windows close and trial clocks move."""
        at = at or self.clock()
        with self.session() as session, session.begin():
            report = rescore(session, self.rules, at=at, tz=self.tz, processes=self.processes, basis=self.basis)
            self._route(session, report, at)
            session.merge(SweepRun(name=RESCORE_SWEEP, last_run_at=at, fingerprint=self.rules_fingerprint))
        return report

    def _route(self, session: Session, report: Rescored, at: datetime) -> None:
        """New leads go to a rep (or the queue) in the transaction that recorded them; a nurtured lead lifted a
        tier goes back to its owner's attention (bot/services/nurture.py)."""
        if report.upgraded:
            nurture.reraise(session, report.upgraded, now=at, manager=self.router.manager if self.router else None)
        if self.router is None:
            return
        self.router.route_all(session, report.triggered, now=at)

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


def for_team(engine: sa.Engine, settings: Settings, *, clock: Clock = utc_now) -> Pipeline:
    """The pipeline every long-lived command uses: scoring with the team's rules and timezone, and new
    leads routed to the roster (synced from PQL_REPS here, so routing never sees a stale one)."""
    tracking.configure(settings.sinks)  # the CRM and the webhook, fed by the outbox when configured
    router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=settings.pql_manager,
                    fast_lane=settings.fast_lane, teams=settings.teams)
    pipeline = Pipeline(engine, tz=settings.tz, rules_path=settings.pql_rules_file, clock=clock, router=router,
                        processes=settings.rescore_processes)
    with pipeline.session() as session, session.begin():
        leads.sync_roster(session, settings.roster, now=clock())
    return pipeline
