"""What reps and the manager do to a lead: claim, reassign, log a touch, set a disposition, pause.

Plain functions over a session and a clock. Each checks who may act, changes the lead with a
conditional update (so two people clicking at once cannot both win), writes the audit trail, bumps
the lead's version (the alert is edited to match) and queues the Slack messages it owes in the outbox,
all in the caller's transaction. A refusal raises `Refused` with the sentence to show the person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from bot.domain.caps import UNCAPPED_TIERS
from bot.domain.kit import DISPOSITION_LABELS, EMAIL_LABELS, MAX_TOUCHES, TOUCH_CHANNELS
from bot.domain.lifecycle import CLAIMABLE, CLOSED, PqlState
from bot.domain.teams import Teams
from bot.services import audit, holds, lead_view, outbox, tracking
from bot.services.account_leads import account_lead_of_member
from bot.services.outreach import lead_track, variant_for_track
from bot.store.models import (
    AccountScore,
    Assignment,
    AuditEntry,
    DispositionRecord,
    EventRecord,
    Pql,
    Rep,
    Touch,
    TrialUser,
)
from bot.store.queries import given_today
from templates import esc, say

_PQLS = Pql.__table__
_REPS = Rep.__table__


class Refused(Exception):
    """An action this person may not take now; `str()` is what to tell them."""


@dataclass(slots=True, frozen=True)
class Actor:
    """Who acts: a rep (on the roster or not), the sales manager (PQL_MANAGER: every lead), and, with `teams`, the
    manager of some teams (a team's escalation target when it is a person: that team's leads)."""

    user_id: str
    on_roster: bool
    is_manager: bool
    teams: Teams | None = field(default=None, compare=False)

    def manages(self, pql: Pql) -> bool:
        """The sales manager, or the manager of the lead's team: may reassign, claim for, release and work it."""
        return self.is_manager or (self.teams is not None and self.teams.team(pql.team).manager == self.user_id)

    @property
    def manages_a_team(self) -> bool:
        return self.teams is not None and any(t.manager == self.user_id for t in self.teams.teams.values())


def actor(session: Session, user_id: str, *, manager: str | None, teams: Teams | None = None) -> Actor:
    rep = session.get(Rep, user_id)
    return Actor(user_id, rep is not None and rep.on_roster, user_id == manager, teams)


def require_roster(who: Actor) -> None:
    """Leads are for the reps on the roster and the managers; anyone else is told how to join.

    Off the roster a person learns nothing about leads, not even whether one exists: every way in that names
    a lead (a slash command, a button, a modal) asks this before it looks the lead up, so a lead that exists
    and one that does not get the same answer. A rep taken off the roster keeps no rights over a lead they
    still hold. A team's manager off the roster is let through here and asked `require_sight` once the lead is
    looked up."""
    if not (who.on_roster or who.is_manager or who.manages_a_team):
        raise Refused(say("not_on_roster"))


def require_sight(who: Actor, pql: Pql | None) -> None:
    """A team's manager who is not on the roster sees their own teams' leads only: for any other lead, or one that
    does not exist, the same answer as anyone off the roster (they learn nothing of it)."""
    if not (who.on_roster or who.is_manager) and (pql is None or not who.manages(pql)):
        raise Refused(say("not_on_roster"))


def _within_team(who: Actor, pql: Pql, rep_id: str) -> None:
    """A team's manager (not the sales manager) gives their team's leads to their team's members only."""
    if who.is_manager or who.teams is None:
        return
    team = who.teams.team(pql.team)
    if team.member_ids is not None and rep_id not in team.member_ids:
        raise Refused(say("not_in_team", rep=rep_id, team=esc(team.title)))


def sync_roster(session: Session, roster: list[tuple[str, str | None, str | None]], *, now: datetime) -> None:
    """Make the reps table match PQL_REPS: add newcomers, keep pauses, take leavers off the roster."""
    listed = {user_id for user_id, _, _ in roster}
    connection = session.connection()
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    for user_id, name, zone in roster:
        # Two processes starting together both see an empty table: let the second insert be a no-op.
        connection.execute(module.insert(Rep.__table__).values(
            id=user_id, name=name, timezone=zone, on_roster=True, paused=False, created_at=now,
        ).on_conflict_do_nothing(index_elements=["id"]))
        rep = session.get(Rep, user_id)
        rep.on_roster, rep.name, rep.timezone = True, name or rep.name, zone or rep.timezone
    for rep in session.exec(select(Rep).where(Rep.on_roster)):
        if rep.id not in listed:
            rep.on_roster = False


def find(session: Session, ref: str) -> Pql:
    """A lead by short id (PQL-42, 42), email or product user id; the newest one for a person."""
    text = ref.strip().strip("<>").removeprefix("mailto:").split("|", 1)[0]
    number = text.upper().removeprefix("PQL-").removeprefix("PQL")
    if number.isdigit() and (pql := session.get(Pql, int(number))):
        return pql
    user_ids = select(TrialUser.user_id).where(sa.func.lower(TrialUser.email) == text.lower())
    pql = session.exec(
        select(Pql).where(sa.or_(Pql.user_id == text, Pql.user_id.in_(user_ids))).order_by(Pql.id.desc())
    ).first()
    if pql is None:
        raise Refused(say("unknown_lead", ref=ref.strip()))
    return pql


def oldest_claimable(session: Session, who: Actor, *, teams: sa.ColumnElement[bool] | None = None) -> Pql | None:
    """The lead a bare `/claim` takes: the oldest unclaimed one, not on hold, assigned to this rep or to nobody (with
    `teams`, a condition on the lead's team: of one of the rep's teams)."""
    query = select(Pql).where(Pql.claimed_by.is_(None), Pql.state.in_(CLAIMABLE), Pql.held_since.is_(None))
    query = query.where(sa.or_(Pql.rep_id == who.user_id, sa.and_(Pql.rep_id.is_(None), teams)
                               if teams is not None else Pql.rep_id.is_(None)))
    return session.exec(query.order_by(Pql.qualified_at, Pql.id)).first()


def new_today(session: Session, rep_id: str, *, now: datetime, tz: tzinfo) -> int:
    """Leads that landed on this rep today (team timezone): the number the daily cap counts (no fast lane)."""
    return session.exec(given_today(rep_id, now=now, tz=tz)).one()


def fast_lane_today(session: Session, rep_id: str, *, now: datetime, tz: tzinfo) -> int:
    """Fast-lane leads that landed on this rep today: on their day, but not against the cap."""
    return session.exec(given_today(rep_id, now=now, tz=tz, capped=False)).one()


def hold_rep(session: Session, rep_id: str) -> None:
    """Hold the rep's row until the transaction ends, before counting them against the cap: a claim and a
    routing (or two routings) racing for the same rep then count one after the other, and cannot both find
    them one under the cap and both give them a lead. An UPDATE, not SELECT ... FOR UPDATE: it is a row
    lock on PostgreSQL and takes SQLite's write lock (which has no row locks) just the same."""
    session.connection().execute(sa.update(_REPS).where(_REPS.c.id == rep_id).values(paused=_REPS.c.paused))


def _touch(session: Session, pql: Pql, now: datetime, **values) -> bool:
    """Conditionally update the lead and bump its version; False when the condition no longer holds."""
    condition = values.pop("where", sa.true())
    result = session.connection().execute(
        sa.update(_PQLS).where(_PQLS.c.id == pql.id, condition)
        .values(updated_at=now, version=_PQLS.c.version + 1, **values)
    )
    session.refresh(pql)
    return result.rowcount == 1


def _open(pql: Pql) -> None:
    if pql.state == PqlState.STOPPED_OPT_OUT:
        raise Refused(say("hands_off", ref=pql.ref, reason="opt_out"))
    if pql.state in CLOSED:
        raise Refused(say("lead_closed", ref=pql.ref, state=pql.state.replace("_", " ")))


def _not_held(pql: Pql) -> None:
    """A lead on a do-not-touch hold (bot/services/holds.py) is nobody's to claim or touch until it resumes."""
    if pql.held_since is not None:
        raise Refused(say("hands_off", ref=pql.ref, reason=holds.reason(pql)))


def claim(session: Session, pql: Pql, who: Actor, *, now: datetime, tz: tzinfo, cap: int,
          for_rep: str | None = None, team: tuple[str, frozenset[str] | None] | None = None) -> Pql:
    """`who` claims the lead, or (a manager of it) claims it for `for_rep`. Exactly one racing claim wins. With `team`
    (the lead's team's name and members, bot/domain/teams.py), a rep claims only their own team's leads, as
    routing gives them; the sales manager may claim any lead for anyone, a team's manager their team's leads for
    its members. A lead on a do-not-touch hold is refused, saying why, except to a manager claiming it for a rep: a
    deliberate override, audited and said in the thread."""
    rep_id = for_rep or who.user_id
    manages = who.manages(pql)
    if for_rep and not manages:
        raise Refused(say("managers_only", action="claim a lead on someone's behalf"))
    if for_rep:
        _within_team(who, pql, rep_id)
    rep = session.get(Rep, rep_id)
    if rep is None or not rep.on_roster:
        raise Refused(say("not_on_roster"))
    _open(pql)
    over_hold = holds.reason(pql) if for_rep else None
    if not over_hold:
        _not_held(pql)
    if team and team[1] is not None and rep_id not in team[1] and pql.rep_id != rep_id and not manages:
        raise Refused(say("other_team", ref=pql.ref, team=team[0]))
    if pql.claimed_by:
        raise Refused(say("already_claimed", ref=pql.ref, by=pql.claimed_by))
    if pql.rep_id and pql.rep_id != rep_id and not manages:
        raise Refused(say("assigned_to_other", ref=pql.ref, rep=pql.rep_id))
    lands_now = pql.rep_id != rep_id
    if lands_now and not manages and pql.tier not in UNCAPPED_TIERS:  # the fast lane is never capped
        hold_rep(session, rep_id)
        if new_today(session, rep_id, now=now, tz=tz) >= cap:
            raise Refused(say("at_cap", cap=cap))
    won = _touch(session, pql, now, where=sa.and_(_PQLS.c.claimed_by.is_(None), _PQLS.c.state.in_(CLAIMABLE)),
                 claimed_by=rep_id, claimed_at=now, rep_id=rep_id, state=PqlState.CLAIMED,
                 assigned_at=now if lands_now else pql.assigned_at)
    if not won:
        _open(pql)
        raise Refused(say("already_claimed", ref=pql.ref, by=pql.claimed_by))
    if lands_now:
        session.add(Assignment(pql_id=pql.id, rep_id=rep_id, reason="claim", by=who.user_id, at=now))
    audit.record(session, "pql_claimed", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id,
                 rep=rep_id, on_behalf=bool(for_rep), over_hold=over_hold)
    text = say("claimed", ref=pql.ref, rep=rep_id, by=who.user_id) + \
        (" " + say("claimed_over_hold", reason=over_hold) if over_hold else "")
    outbox.reply(session, pql, f"claim:{pql.id}", text, now=now)
    tracking.emit(session, "pql_claimed", pql, key=f"pql_claimed:{pql.id}", now=now, rep=rep_id,
                  by=who.user_id, on_behalf=bool(for_rep))
    tracking.crm(session, "owner", pql, key=f"owner:{pql.id}:{pql.version}", now=now)
    return pql


def reassign(session: Session, pql: Pql, who: Actor, to_rep: str, *, now: datetime) -> Pql:
    """A manager of the lead moves it to another rep; a claimed lead stays claimed, by the new rep."""
    if not who.manages(pql):
        raise Refused(say("managers_only", action="reassign leads"))
    rep = session.get(Rep, to_rep)
    if rep is None or not rep.on_roster:
        raise Refused(say("not_on_roster"))
    _within_team(who, pql, to_rep)
    _open(pql)
    claimed = pql.claimed_by is not None
    _touch(session, pql, now, rep_id=to_rep, assigned_at=now,
           claimed_by=to_rep if claimed else None, claimed_at=now if claimed else None,
           state=pql.state if claimed or pql.state == PqlState.QUALIFIED else PqlState.ASSIGNED)
    session.add(Assignment(pql_id=pql.id, rep_id=to_rep, reason="manual", by=who.user_id, at=now))
    audit.record(session, "pql_reassigned", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id,
                 rep=to_rep)
    text = say("reassigned", ref=pql.ref, rep=to_rep, by=who.user_id)
    outbox.reply(session, pql, f"reassign:{pql.id}:{pql.version}", text, now=now)
    tracking.crm(session, "owner", pql, key=f"owner:{pql.id}:{pql.version}", now=now)
    return pql


def release(session: Session, pql: Pql, who: Actor, *, now: datetime) -> Pql:
    """A manager of the lead takes a hoarded lead back: unclaimed and unassigned, it goes back to the pool."""
    if not who.manages(pql):
        raise Refused(say("managers_only", action="release leads"))
    _open(pql)
    _touch(session, pql, now, where=_PQLS.c.state.notin_(CLOSED), claimed_by=None, claimed_at=None, rep_id=None,
           assigned_at=None, state=PqlState.QUEUED)
    audit.record(session, "pql_released", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id)
    outbox.reply(session, pql, f"release:{pql.id}:{pql.version}", say("released", ref=pql.ref, by=who.user_id),
                 now=now)
    return pql


def _may_work(pql: Pql, who: Actor) -> None:
    if who.manages(pql) or (pql.claimed_by and pql.claimed_by == who.user_id):
        return
    raise Refused(say("not_yours", ref=pql.ref, owner=pql.claimed_by))


def log_touch(session: Session, pql: Pql, who: Actor, *, channel: str, email_key: str | None, note: str | None,
              now: datetime, replied: bool = False) -> Touch:
    """A touch by the claimant (or a manager of the lead): numbered, at most three per lead; none while the lead is
    on a do-not-touch hold."""
    _may_work(pql, who)
    _open(pql)
    _not_held(pql)
    if channel not in TOUCH_CHANNELS or (email_key and email_key not in EMAIL_LABELS):
        raise Refused("Pick a channel (email, call or LinkedIn) and, for an email, which one of the kit.")
    count = session.exec(select(sa.func.count()).select_from(Touch).where(Touch.pql_id == pql.id)).one()
    if count >= MAX_TOUCHES:
        raise Refused(say("touch_limit", ref=pql.ref, limit=MAX_TOUCHES))
    email_key = email_key if channel == "email" else None
    track = next((s.get("talk_track") for s in pql.signals if s.get("name") == pql.strongest_signal), None)
    if email_key == "email1":  # the variant the kit gave: a blocker lead's is always the unblock one
        track = lead_track(track, lead_view.lead_verdict(session, pql, session.get(TrialUser, pql.user_id))
                           .get("family"))
    touch = Touch(pql_id=pql.id, rep_id=pql.claimed_by or who.user_id, number=count + 1, channel=channel,
                  email_key=email_key, variant=variant_for_track(track) if email_key == "email1" else None,
                  replied=replied, note=(note or "").strip() or None, at=now)
    try:
        with session.begin_nested():  # the (lead, number) pair is unique: a racing touch fails here
            session.add(touch)
    except sa.exc.IntegrityError:
        raise Refused(say("touch_limit", ref=pql.ref, limit=MAX_TOUCHES)) from None
    _touch(session, pql, now, state=PqlState.WORKING)
    audit.record(session, "touch_logged", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id,
                 number=touch.number, channel=channel, email=touch.email_key)
    text = say("touch_logged", number=touch.number, limit=MAX_TOUCHES, rep=touch.rep_id,
               channel=TOUCH_CHANNELS[channel], email=EMAIL_LABELS.get(touch.email_key or ""),
               note=esc(touch.note))
    outbox.reply(session, pql, f"touch:{touch.id}", text, now=now)
    tracking.emit(session, "outreach_sent", pql, key=f"outreach_sent:{touch.id}", now=now, rep=touch.rep_id,
                  touch=touch.number, channel=channel, email=touch.email_key, variant=touch.variant)
    tracking.crm(session, "touch", pql, key=f"touch:{touch.id}", now=now, touch_id=touch.id)
    return touch


def set_disposition(session: Session, pql: Pql, who: Actor, *, disposition: str, reason: str | None,
                    now: datetime) -> str:
    """Close the lead with a disposition; returns the seed's next action for it."""
    _may_work(pql, who)
    _open(pql)
    if disposition not in DISPOSITION_LABELS:
        raise Refused("Pick one of the dispositions.")
    reason = (reason or "").strip() or None
    if disposition == "disqualified" and not reason:
        raise Refused(say("reason_required"))
    if not _touch(session, pql, now, where=_PQLS.c.state.notin_(CLOSED), state=PqlState.DISPOSITIONED,
                  disposition=disposition, dispositioned_at=now):
        _open(pql)
    record = DispositionRecord(pql_id=pql.id, user_id=pql.user_id, rep_id=who.user_id, disposition=disposition,
                               reason=reason, at=now)
    session.add(record)
    session.flush()
    audit.record(session, "pql_dispositioned", at=now, actor=who.user_id, pql_id=pql.id, user_id=pql.user_id,
                 disposition=disposition, reason=reason)
    next_action = say("next_action", disposition=disposition)
    text = say("dispositioned", label=DISPOSITION_LABELS[disposition], rep=who.user_id, reason=esc(reason))
    outbox.reply(session, pql, f"disposition:{record.id}", f"{text}\n{next_action}", now=now)
    tracking.emit(session, "pql_dispositioned", pql, key=f"pql_dispositioned:{record.id}", now=now,
                  rep=who.user_id, disposition=disposition, reason=reason)
    tracking.crm(session, "disposition", pql, key=f"disposition:{record.id}", now=now, disposition=disposition)
    return next_action


def stop_for_product_event(session: Session, user_id: str, event_name: str, *, at: datetime,
                           now: datetime) -> Pql | None:
    """A conversion or an opt-out (made at `at`) stops the open lead of that trial and tells whoever works it.

    A member of an account with an open account lead who converts, with no open lead of their own, stops the account
    lead: the company is a customer now, and its one conversation ends. A member's opt-out (the anchor's too) is
    theirs alone: the account lead goes on, its rep told to leave them out (the contact map marks them), unless
    nobody in the account is left to contact."""
    state = {"trial_converted": PqlState.STOPPED_CONVERTED, "checkout_completed": PqlState.STOPPED_CONVERTED,
             "sales_opt_out": PqlState.STOPPED_OPT_OUT}[event_name]
    pql = session.exec(
        select(Pql).where(Pql.user_id == user_id, Pql.state.notin_(CLOSED), Pql.trial_started_at <= at)
        .order_by(Pql.id.desc())
    ).first()
    if pql is None:
        pql = account_lead_of_member(session, user_id, at=at)
    if pql is not None and pql.level == "account" and state is PqlState.STOPPED_OPT_OUT \
            and not _nobody_left(session, pql):
        _member_opted_out(session, pql, user_id, now=now)
        return None
    if pql is None or not _touch(session, pql, now, where=_PQLS.c.state.notin_(CLOSED), state=state):
        return None
    audit.record(session, "pql_stopped", at=now, pql_id=pql.id, user_id=user_id, reason=event_name)
    user = session.get(TrialUser, user_id)
    who = (user.name or user.email or user_id) if user else user_id
    if pql.user_id != user_id:  # a member of the account lead's account
        text = say("member_converted", ref=pql.ref, who=esc(who), company=esc(user.company_name if user else None))
    else:
        text = say("converted" if state is PqlState.STOPPED_CONVERTED else "opted_out", ref=pql.ref, who=esc(who))
    outbox.reply(session, pql, f"stopped:{pql.id}", text, now=now)
    if owner := pql.claimed_by or pql.rep_id:
        outbox.dm(session, owner, f"stopped-dm:{pql.id}", text, pql=pql, now=now)
    tracking.crm(session, "close", pql, key=f"close:{pql.id}", now=now, reason=event_name)
    return pql


def _nobody_left(session: Session, pql: Pql) -> bool:
    """Whether every user of the account lead's account (its contact map) has opted out of sales contact."""
    score = session.get(AccountScore, pql.account_key) if pql.account_key else None
    users = {u["user_id"] for u in (score.verdict.get("users") or ())} if score is not None else set()
    users.add(pql.user_id)
    opted = set(session.exec(select(EventRecord.user_id).where(EventRecord.name == "sales_opt_out",
                                                                EventRecord.user_id.in_(sorted(users)))))
    return users <= opted


def _member_opted_out(session: Session, pql: Pql, user_id: str, *, now: datetime) -> None:
    """One of an account lead's people opted out: the lead goes on, its alert edited (the contact map marks them), and
    whoever works it is told to leave them out, once (a replayed opt-out changes nothing)."""
    if session.exec(select(AuditEntry.id).where(AuditEntry.pql_id == pql.id, AuditEntry.user_id == user_id,
                                                AuditEntry.action == "pql_member_opted_out")).first() is not None:
        return
    _touch(session, pql, now)
    audit.record(session, "pql_member_opted_out", at=now, pql_id=pql.id, user_id=user_id)
    user = session.get(TrialUser, user_id)
    who = (user.name or user.email or user_id) if user else user_id
    text = say("member_opted_out", ref=pql.ref, who=esc(who))
    outbox.reply(session, pql, f"member-opt-out:{pql.id}:{user_id}", text, now=now)
    if owner := pql.claimed_by or pql.rep_id:
        outbox.dm(session, owner, f"member-opt-out-dm:{pql.id}:{user_id}", text, pql=pql, now=now)


#: How a trial converted (Pql.conversion_source).
SALES_ASSISTED, SELF_SERVE = "sales_assisted", "self_serve"


def record_conversion(session: Session, user_id: str, *, at: datetime, now: datetime,
                      props: dict | None = None) -> Pql | None:
    """A `trial_converted` event (made at `at`): the user's lead of that trial, open or closed (an account lead when
    theirs became part of one, or when they had none and their account has one), learns how it converted:
    sales-assisted when it had a touch before the conversion, else self-serve (seed 002 section 7). Set once: a
    replayed or second conversion changes nothing. Queues `pql_converted`. Returns the lead, None when the user had no
    lead that trial or it knew already."""
    pql = session.exec(
        select(Pql).where(Pql.user_id == user_id, Pql.trial_started_at <= at).order_by(Pql.id.desc())
    ).first()
    if pql is not None and pql.absorbed_into is not None:
        pql = session.get(Pql, pql.absorbed_into)
    # A member of an account with an account lead: the company converted, and its lead learns how when it came after
    # theirs (their own lead closed before the account's was raised, or they had none).
    company = account_lead_of_member(session, user_id, at=at, closed_too=True)
    if company is not None and (pql is None or company.id > pql.id):
        pql = company
    if pql is None or pql.conversion_source is not None:
        return None
    touched = session.exec(select(sa.exists().where(Touch.pql_id == pql.id, Touch.at <= at))).one()
    source = SALES_ASSISTED if touched else SELF_SERVE
    if not _touch(session, pql, now, where=_PQLS.c.conversion_source.is_(None), conversion_source=source,
                  converted_at=at):
        return None
    audit.record(session, "pql_converted", at=now, pql_id=pql.id, user_id=user_id, conversion_source=source)
    props = props or {}
    tracking.emit(session, "pql_converted", pql, key=f"pql_converted:{pql.id}", now=now, conversion_source=source,
                  converted_user=user_id, converted_at=at.isoformat(), plan=props.get("plan"), mrr=props.get("mrr"))
    return pql


def set_paused(session: Session, rep_id: str, paused: bool, *, now: datetime) -> str:
    rep = session.get(Rep, rep_id)
    if rep is None or not rep.on_roster:
        raise Refused(say("not_on_roster"))
    if rep.paused != paused:
        rep.paused = paused
        audit.record(session, "rep_paused" if paused else "rep_resumed", at=now, actor=rep_id)
    return say("paused", on=paused)
