"""The store's tables. The database is the source of truth: every sweep and every Slack view reads it.

All times are UTC. Schema changes go through alembic (bot/store/migrations); never edit a table here
without adding a revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


class UtcDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which has no zones) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(**kwargs: Any) -> Any:
    nullable = kwargs.pop("nullable", False)
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, **kwargs))


def _json(**kwargs: Any) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False, **kwargs))


class EventRecord(SQLModel, table=True):
    """A product event as received. `message_id` makes replays harmless."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_user_time", "user_id", "at_us"),
        # Conversions, looked up by user for the review's figures: a partial index holds only them, so the
        # million other events add nothing to it.
        sa.Index("ix_events_conversions", "user_id", sqlite_where=sa.text("name = 'trial_converted'"),
                 postgresql_where=sa.text("name = 'trial_converted'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    user_id: str = Field(max_length=200)
    name: str = Field(max_length=200)
    # Microseconds since the epoch, UTC: the hottest table stays cheap to write, sort and read back.
    at_us: int = Field(sa_type=sa.BigInteger)
    props: dict = _json()
    received_at: datetime = _time()


class TrialUser(SQLModel, table=True):
    """A product user and the latest verdict on them. Rows appear with the first event, signup or not."""

    __tablename__ = "trial_users"

    user_id: str = Field(primary_key=True, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    domain: str | None = Field(default=None, max_length=255, index=True)
    company_name: str | None = None
    company_size: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    plan: str | None = None
    industry: str | None = None
    group_id: str | None = Field(default=None, max_length=200, index=True)  # the account a `group` call named
    signup_at: datetime | None = _time(nullable=True, index=True)  # a week's trials: the review's cohorts
    status: str = Field(default="excluded", max_length=32)
    tier: str | None = Field(default=None, max_length=16)
    score: int = 0
    verdict: dict = _json()
    scored_at: datetime | None = _time(nullable=True)
    # When the verdict next turns with time alone (a trigger's wait ending, a do-not-touch window closing): the wake
    # sweep judges the user again then (scoring/engine.py `wake`). None: nothing waits.
    wake_at: datetime | None = _time(nullable=True, index=True)

    @property
    def name(self) -> str | None:
        """First and last name as far as the signup told us; None when it told us neither."""
        return " ".join(part for part in (self.first_name, self.last_name) if part) or None


class TallyRecord(SQLModel, table=True):
    """A user's running tallies (scoring/tally.py): what ingestion adds each new event to instead of reading the
    user's history again. Derived data: built again from the events whenever it is missing or was made under other
    rules (`basis`), so a rules change, a migration or a lost row costs one read of the history, never a verdict."""

    __tablename__ = "tallies"

    user_id: str = Field(primary_key=True, max_length=200)
    basis: str = Field(max_length=64)
    state: dict = _json()


class Identity(SQLModel, table=True):
    """Another id a user is known by: an anonymous visitor's id (`anonymous:<anonymousId>`) or an earlier userId
    (an `alias` call's previousId). Calls under it are the user's; its events were moved to the user when the link
    was made (bot/services/identity.py)."""

    __tablename__ = "identities"

    alias_key: str = Field(primary_key=True, max_length=220)
    user_id: str = Field(max_length=200, index=True)
    at: datetime = _time()


class Group(SQLModel, table=True):
    """An account as the product's `group` calls name it, and what their traits say about it, newest first.
    `traits` keeps each trait with the time it was sent: {"employees": [800, at_us], ...}."""

    __tablename__ = "groups"

    group_id: str = Field(primary_key=True, max_length=200)
    traits: dict = _json()
    updated_at: datetime = _time()


class Account(SQLModel, table=True):
    """A company by email domain; `owner_rep_id` is the named-account override for routing."""

    __tablename__ = "accounts"

    domain: str = Field(primary_key=True, max_length=255)
    company_name: str | None = None
    owner_rep_id: str | None = Field(default=None, foreign_key="reps.id", max_length=64)


class Rep(SQLModel, table=True):
    """A rep on the roster, keyed by Slack user id."""

    __tablename__ = "reps"

    id: str = Field(primary_key=True, max_length=64)
    name: str | None = None
    timezone: str | None = Field(default=None, max_length=64)
    on_roster: bool = True
    paused: bool = False
    created_at: datetime = _time()


#: An account lead that is still open: not closed (dispositioned, stopped) and not absorbed (bot/domain/lifecycle.py).
_OPEN_ACCOUNT_LEAD = sa.text("account_key IS NOT NULL AND state NOT IN "
                             "('dispositioned', 'stopped_converted', 'stopped_opt_out', 'absorbed')")


class Pql(SQLModel, table=True):
    """One product-qualified lead: exactly one per user per trial (the trial is named by its signup time), or one
    for an account (`level` "account", seed 003's PQA: bot/services/account_leads.py) that absorbs its users' open
    leads. An account lead hangs on its anchor user; made new, its trial is named by the moment the account
    qualified (an account has no trial of its own, and its anchor may have had a lead this trial already)."""

    __tablename__ = "pqls"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "trial_started_at", name="uq_pqls_user_trial"),
        # What is read often must not cost more as leads pile up over the years (bench/history.py):
        sa.Index("ix_pqls_rep_state", "rep_id", "state"),  # a rep's open leads, counted at every routing
        sa.Index("ix_pqls_state_updated", "state", "updated_at"),  # open leads; leads stopped in a week
        sa.Index("ix_pqls_state_team_tier", "state", "team", "tier"),  # each team's queue by tier, once per routed set
        # The leads on hold (few): those of the queue, which wait without holding back the leads behind them.
        sa.Index("ix_pqls_held", "state", "team", "tier", sqlite_where=sa.text("held_since IS NOT NULL"),
                 postgresql_where=sa.text("held_since IS NOT NULL")),
        sa.Index("ix_pqls_created_at", "created_at"),  # a week's leads: the review and its Monday triggers
        sa.Index("ix_pqls_dispositioned_at", "dispositioned_at"),  # a week's dispositions, leads still open
        # The alerts to edit, looked for on every delivery pass: a partial index holds only leads changed since
        # their alert was rendered, so the pass finds them without reading every lead.
        sa.Index("ix_pqls_alert_behind", "id", sqlite_where=sa.text("version > posted_version"),
                 postgresql_where=sa.text("version > posted_version")),
        # One open account lead per account, whoever writes it (two processes rolling the same account up).
        sa.Index("uq_pqls_open_account", "account_key", unique=True, sqlite_where=_OPEN_ACCOUNT_LEAD,
                 postgresql_where=_OPEN_ACCOUNT_LEAD),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="trial_users.user_id", max_length=200, index=True)
    trial_started_at: datetime = _time()
    state: str = Field(max_length=32)  # indexed with updated_at: see ix_pqls_state_updated
    tier: str = Field(max_length=16)
    score: int
    signals: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    strongest_signal: str | None = Field(default=None, max_length=64)
    qualified_at: datetime = _time()
    created_at: datetime = _time()
    updated_at: datetime = _time()
    rep_id: str | None = Field(default=None, foreign_key="reps.id", max_length=64)
    assigned_at: datetime | None = _time(nullable=True)
    claimed_by: str | None = Field(default=None, foreign_key="reps.id", max_length=64)
    claimed_at: datetime | None = _time(nullable=True)
    disposition: str | None = Field(default=None, max_length=32)
    dispositioned_at: datetime | None = _time(nullable=True)
    # The alert in Slack. `version` grows with every change people should see; the alert is edited
    # until `posted_version` catches up, so a missed update is made good by the next sweep.
    # First touch is due by then (business time from when pqlbot recorded the lead; set when routed).
    sla_due_at: datetime | None = _time(nullable=True)
    alert_channel: str | None = Field(default=None, max_length=64)
    alert_ts: str | None = Field(default=None, max_length=32)
    version: int = 1
    posted_version: int = 0
    # On hold (bot/services/holds.py) since when, and what it waits on ({"tickets": [...], "checkout": iso or None});
    # the business seconds of its past holds (and, unclaimed, of routing paused: bot/services/switches.py), which the
    # escalation clock does not count.
    held_since: datetime | None = _time(nullable=True)
    hold_on: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    held_seconds: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # A user's lead or an account's; the account's key ("group:<id>", "domain:<domain>") on account leads; and the
    # account lead (its pqls.id) an absorbed user lead became part of: no foreign key, so that SQLite adds the
    # column without copying the table (a store with years of leads), as revision 0010's columns.
    level: str = Field(default="user", max_length=16, sa_column_kwargs={"server_default": "user"})
    account_key: str | None = Field(default=None, max_length=260, index=True)
    absorbed_into: int | None = None
    # The team it was routed to (bot/domain/teams.py; None: the default team, as every lead before teams), and when
    # it was last handed to another team (bot/services/handoffs.py): the receiving team's clocks start then.
    team: str | None = Field(default=None, max_length=64)
    handed_off_at: datetime | None = _time(nullable=True)
    # How the user's trial converted (trial_converted): "sales_assisted" when the lead had a touch before the
    # conversion, else "self_serve" (seed 002 section 7's conversion-source tagging); None while not converted.
    conversion_source: str | None = Field(default=None, max_length=16)
    converted_at: datetime | None = _time(nullable=True)

    @property
    def ref(self) -> str:
        """The short id reps type: PQL-42."""
        return f"PQL-{self.id}"


class AccountScore(SQLModel, table=True):
    """An account's latest verdict (scoring/accounts.py: its triggers, contact map and firmographics), by account key,
    as the last rescore that rolled the account up judged it: what an account lead's alert and Details modal read.
    Written only for accounts where an account trigger fired."""

    __tablename__ = "account_scores"

    account_key: str = Field(primary_key=True, max_length=260)
    verdict: dict = _json()
    scored_at: datetime = _time()


class Assignment(SQLModel, table=True):
    """Who was given a lead, when, by whom and why (override, round_robin, on_call, queue, manual, claim,
    sla_miss)."""

    __tablename__ = "assignments"
    # A rep's leads today, this week and the latest: what routing and the daily cap count, per rep.
    __table_args__ = (sa.Index("ix_assignments_rep_at", "rep_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    pql_id: int = Field(foreign_key="pqls.id", index=True)
    rep_id: str = Field(foreign_key="reps.id", max_length=64)
    reason: str = Field(max_length=32)
    by: str = Field(default="system", max_length=64)
    at: datetime = _time()


class Touch(SQLModel, table=True):
    """An outreach touch a rep logged: numbered 1..3 per lead."""

    __tablename__ = "touches"
    __table_args__ = (sa.UniqueConstraint("pql_id", "number", name="uq_touches_pql_number"),
                      sa.Index("ix_touches_at", "at"))  # the week's touches (the complaints guardrail)

    id: int | None = Field(default=None, primary_key=True)
    pql_id: int = Field(foreign_key="pqls.id", index=True)
    rep_id: str = Field(foreign_key="reps.id", max_length=64)
    number: int
    channel: str = Field(max_length=16)
    email_key: str | None = Field(default=None, max_length=16)
    variant: str | None = Field(default=None, max_length=4)  # Email 1's variant (A, B, C, F) when email1
    replied: bool = False  # the rep marked that the lead replied to this touch
    note: str | None = None
    at: datetime = _time()


class DispositionRecord(SQLModel, table=True):
    """A disposition set on a lead. The latest one is mirrored on the lead for quick reading."""

    __tablename__ = "dispositions"

    id: int | None = Field(default=None, primary_key=True)
    pql_id: int = Field(foreign_key="pqls.id", index=True)
    user_id: str = Field(max_length=200, index=True)
    rep_id: str | None = Field(default=None, max_length=64)
    disposition: str = Field(max_length=32)
    reason: str | None = None
    at: datetime = _time()


class AuditEntry(SQLModel, table=True):
    """Append-only: every state change, who made it and when. Nothing updates or deletes these rows."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _time(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    pql_id: int | None = Field(default=None, index=True)
    user_id: str | None = Field(default=None, max_length=200, index=True)
    detail: dict = _json()


class SweepRun(SQLModel, table=True):
    """When each scheduled sweep last ran, and on what (e.g. the rules file's fingerprint). The row `healthz` is
    the last write of /healthz's probe (bot/store/health.py), which checks that the store can be written; a row
    `routing-owed:<id>`, a rescore whose new leads wait for their routing (bot/services/pipeline.py)."""

    __tablename__ = "sweep_runs"

    name: str = Field(primary_key=True, max_length=64)
    last_run_at: datetime = _time()
    fingerprint: str | None = Field(default=None, max_length=128)


class Switch(SQLModel, table=True):
    """A team-wide switch the manager throws (bot/services/switches.py): `routing_paused` is seed 002's rollback
    plan ("pause PQL routing"), `outreach_paused` its spam-complaint guardrail ("> 5 %: pause outreach"). No row:
    off. Who threw it, when and why stay on the row; every throw is audited too."""

    __tablename__ = "switches"

    name: str = Field(primary_key=True, max_length=64)
    on: bool = False
    by: str = Field(max_length=64)
    at: datetime = _time()
    why: str | None = None


class Notice(SQLModel, table=True):
    """The outbox: every Slack message pqlbot owes someone, written in the same transaction as the change
    that caused it and delivered afterwards. `key` makes each notice unique (one alert per lead, one reply
    per touch), so a retried transaction or a second process cannot owe the same message twice."""

    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    kind: str = Field(max_length=16)  # alert | reply (in the alert's thread) | dm | channel | review | ephemeral
    pql_id: int | None = Field(default=None, foreign_key="pqls.id", index=True)
    target: str | None = Field(default=None, max_length=64)  # a user for dm and ephemeral, a channel for channel
    text: str | None = None
    blocks: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A typed notice: what to render, as data ({"view": "manager_card", ...}); its Block Kit is built when it
    # is delivered (bot/slack/blocks/notices.py). None for notices with stored blocks or none at all.
    payload: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # pending | sending | sent | failed, or folded: said inside another notice (a digest), never sent on its own
    state: str = Field(default="pending", max_length=16, index=True)
    # While sending: the deliverer that claimed it (bot/store/holders.py), so it goes back to pending as soon as
    # that deliverer is gone and never while it lives. None otherwise (and on notices claimed before 0009).
    holder: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    next_attempt_at: datetime = _time()
    channel: str | None = Field(default=None, max_length=64)  # where it went (an ephemeral's: where it goes)
    ts: str | None = Field(default=None, max_length=32)
    last_error: str | None = None
    created_at: datetime = _time()
    sent_at: datetime | None = _time(nullable=True)


class CrmRecord(SQLModel, table=True):
    """What pqlbot made in the CRM, by what it stands for: `contact:<email>`, `company:<domain>`, `task:<pql id>`,
    `touch:<touch id>` -> the CRM's object id. Written as soon as the CRM answers, so a retried change updates the
    object it made instead of making another (bot/integrations/hubspot.py)."""

    __tablename__ = "crm_records"

    key: str = Field(primary_key=True, max_length=400)
    object_id: str = Field(max_length=64)
    at: datetime = _time()


class SlackRequestSeen(SQLModel, table=True):
    """A signed Slack request this bot has accepted, so that a replay of it is refused by every process on
    the store, and after a restart, not only by the process that served it (bot/slack/verify.py,
    `SignedRequests`). The timestamp and signature are Slack's headers, as sent; the row may go once
    `forget_after` has passed, since by then the age check refuses the request anyway."""

    __tablename__ = "slack_requests_seen"

    timestamp: str = Field(primary_key=True, max_length=12)  # X-Slack-Request-Timestamp: at most 12 digits
    signature: str = Field(primary_key=True, max_length=80)  # X-Slack-Signature: "v0=" and 64 hex digits
    forget_after: datetime = _time(index=True)
