"""`pqlbot explain`: one stored user's verdict, and for a lead its routing and SLA trail, read from the store.

What it answers is what a rep or an admin asks when a lead is or is not there: the status, tier and points, every
signal with its trial day and time, every reason (why there is no PQL: the trial is over, the company size is out
of the ICP gate, ...), the triggers that fired, and for the lead: who got it and why, the SLA clock, escalations,
claims, touches and dispositions, each with its time (what `/pql why` shows in Slack, and more).

The verdict is the stored one (as of its last scoring) unless `at` is given: then it is judged again from the
user's stored events up to `at` and the dispositions recorded by then, and the trail stops at `at` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.services import audit
from bot.services.rescore import judged_at
from bot.store.models import Notice, Pql, Rep, Touch, TrialUser
from bot.store.queries import utc
from scoring import Rules

#: What each escalation notice's key prefix was (bot/sweeps/escalate.py's keys), in words.
ESCALATIONS = {"esc-here": "@here in the alert's thread: unclaimed for 1 business hour",
               "esc-2h": "the manager told: 2 business hours without a claim and a touch",
               "esc-sla": "the manager told: the first-touch SLA was missed",
               "esc-moved": "reassigned after the missed SLA"}


class NotFound(LookupError):
    """No stored user or lead answers to what was asked; `str()` says so."""


@dataclass
class Step:
    """One moment of a lead's trail: `what` in words, with `{rep}` (the rep it names) and `{by}` (who did it, when
    not the system or that rep) for the caller to fill in its own way (a name, a Slack mention)."""

    at: datetime
    what: str
    rep: str | None = None
    by: str | None = None

    def said(self, name: Callable[[str], str]) -> str:
        """The step in words, each person named by `name(user id)`."""
        return self.what.format(rep=name(self.rep) if self.rep else "?",
                                by=f" (by {name(self.by)})" if self.by else "")


@dataclass
class Explanation:
    user: TrialUser
    verdict: dict  # ScoreResult.to_json()'s shape
    as_of: datetime
    judged_again: bool  # True: judged from the events as of `as_of`; False: the stored verdict
    qualify_at: int
    hold_hours: int
    lead: Pql | None = None
    account_lead: Pql | None = None  # the account lead the user's lead became part of
    trail: list[Step] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # rep id -> name
    first_touch: datetime | None = None  # the lead's first touch, by `as_of`: its SLA met or missed then


def find_user(session: Session, who: str) -> tuple[TrialUser, Pql | None]:
    """A stored user by product user id, email (any case) or lead (PQL-42): the user, and the lead asked for."""
    text = who.strip()
    number = text.upper().removeprefix("PQL-")
    if text.upper().startswith("PQL-") and number.isdigit():
        pql = session.get(Pql, int(number))
        if pql is None:
            raise NotFound(f"no lead {text.upper()} in the store")
        return session.get(TrialUser, pql.user_id), pql
    user = session.get(TrialUser, text) or session.exec(
        select(TrialUser).where(sa.func.lower(TrialUser.email) == text.lower()).order_by(TrialUser.user_id)).first()
    if user is None:
        raise NotFound(f"no user {text!r} in the store (a product user id, an email or PQL-N)")
    return user, None


def explain(session: Session, who: str, *, rules: Rules, now: datetime, tz: tzinfo,
            at: datetime | None = None) -> Explanation:
    user, lead = find_user(session, who)
    as_of = at or user.scored_at or now
    if at is None:
        verdict, again = user.verdict, False
    else:
        result = judged_at(session.connection(), user.user_id, rules, at=at, tz=tz)
        verdict, again = (result.to_json() if result else user.verdict), True
    if lead is None:
        lead = session.exec(select(Pql).where(Pql.user_id == user.user_id, Pql.created_at <= as_of)
                            .order_by(Pql.id.desc())).first()
    shown = Explanation(user, verdict, as_of, again, rules.tiers.qualify, rules.hold.hours, lead=lead)
    if lead is not None:
        if lead.absorbed_into is not None:
            shown.account_lead = session.get(Pql, lead.absorbed_into)
        shown.trail = trail(session, [p.id for p in (lead, shown.account_lead) if p is not None], until=as_of)
        first = session.exec(select(sa.func.min(Touch.at)).where(Touch.pql_id == lead.id, Touch.at <= as_of)).one()
        shown.first_touch = utc(first) if first is not None else None
        shown.names = {rep.id: rep.name or rep.id for rep in session.exec(select(Rep))}
    return shown


def trail(session: Session, pql_ids: list[int], *, until: datetime | None = None) -> list[Step]:
    """The leads' trail in time order, up to `until`: what the audit recorded (qualified, routed or queued and why,
    claimed, held, stopped, dispositioned), the escalations owed, and the touches. `/pql why` shows the same."""
    steps: list[Step] = []
    for pql_id in pql_ids:
        for entry in audit.trail(session, pql_id=pql_id):
            if (step := _step(entry.action, entry.detail or {}, entry.actor)) is not None:
                steps.append(Step(entry.at, *step))
        prefixes = tuple(f"{prefix}:{pql_id}" for prefix in ESCALATIONS)
        for notice in session.exec(select(Notice).where(Notice.pql_id == pql_id)):
            if notice.key in prefixes:
                steps.append(Step(notice.created_at, ESCALATIONS[notice.key.partition(":")[0]]))
        for touch in session.exec(select(Touch).where(Touch.pql_id == pql_id)):
            steps.append(Step(touch.at, f"touch {touch.number} by {{rep}} ({touch.channel})"
                              + (" — they replied" if touch.replied else ""), touch.rep_id))
    steps = [s for s in steps if until is None or s.at <= until]
    return sorted(steps, key=lambda s: s.at)


def _e(value: object) -> str:
    """A value as it reads inside a step's words, its braces kept from `Step.said`'s formatting."""
    return str(value).replace("{", "{{").replace("}", "}}")


def _step(action: str, detail: dict, actor: str) -> tuple[str, str | None, str | None] | None:
    """An audit entry in words ({rep} and {by} are filled in by the caller), or None for one that says nothing
    here."""
    why = f" — {_e(detail['why'])}" if detail.get("why") else ""
    by = actor if actor not in ("system", detail.get("rep")) else None
    words = {
        "pql_triggered": ("qualified in the fast lane (an explicit ask)" if detail.get("tier") == "fast_lane" else
                          f"qualified as {_e(detail.get('tier'))} ({_e(detail.get('score'))} points)", None),
        "pql_upgraded": (f"upgraded {_e(detail.get('old_tier'))} → {_e(detail.get('tier'))}", None),
        "pql_alerted": ("alert posted", None),
        "pql_assigned": (f"assigned to {{rep}}{{by}}{why}", detail.get("rep"), by),
        "pql_reassigned": (f"reassigned to {{rep}}{{by}}{why}", detail.get("rep"), by),
        "pql_claimed": ("claimed by {rep}{by}", detail.get("rep"), by),
        "pql_queued": (f"queued{why}", None, None),
        "pql_handed_off": (f"handed off to team {_e(detail.get('team'))} ("
                           + ("{rep}" if detail.get("rep") else "its queue") + f"){{by}}{why}",
                           detail.get("rep"), actor),
        "pql_released": ("released back to the pool by {rep}", actor),
        "pql_held": (f"on hold, do not touch ({_e(detail.get('reason'))})", None),
        "pql_resumed": ("hold over: the SLA clock runs again", None),
        "pql_clocks_moved": ("routing resumed: the SLA clock moved on by the business time paused", None),
        "pql_dispositioned": (f"dispositioned {_e(detail.get('disposition'))} by {{rep}}", actor),
        "pql_stopped": (f"stopped: {_e(detail.get('reason'))} (the sequence ends)", None),
        "pql_absorbed": ("became part of its account's lead", None),
        "pql_became_account_lead": ("became its account's lead", None),
    }
    return words.get(action)

