"""Everything a person sees about one lead, gathered from the store in one place.

What fired is read from the lead's verdict (`lead_verdict`): an account lead's stored account verdict
(`account_of`), else its user's latest one on `trial_users.verdict`. From it come the lead's family (buying or
blocker), the triggers that fired with their tier of response, and an account lead's contact map; a verdict from
before triggers has none of them, and then none is shown.

The Block Kit module renders a `LeadView`; it never queries the store itself. Times are aware datetimes
(UTC); the renderer formats them in the team timezone it is given. `lead_facts` and `holder` are the short
form (who the lead is, who has it), for the sweeps' notices and the manager's modals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.kit import DISPOSITION_LABELS, MAX_TOUCHES
from bot.domain.lifecycle import CLOSED, PqlState
from bot.services import holds, outreach
from bot.services.alert_text import ASK_TRACK, fired_line, signal_summary
from bot.store.models import AccountScore, AuditEntry, DispositionRecord, Pql, Rep, Touch, TrialUser
from scoring import ScoreResult
from templates import esc, sentences

_words = sentences("slack/escalations.j2")
_bands = sentences("scoring/bands.j2")
_fired = sentences("scoring/triggers.j2")
#: The contact map's rows the Details modal lists; the rest are counted (Block Kit: 3,000 characters a section).
CONTACTS_MAX = 25


@dataclass(slots=True)
class TouchView:
    number: int
    channel: str  # email | call | linkedin
    email_key: str | None  # email1 | email2 | email3 when the touch was one of the kit's emails
    note: str | None
    rep_id: str
    at: datetime


@dataclass(slots=True)
class FiredTrigger:
    """A trigger that fired on the lead's verdict (scoring/triggers.py), as a rep reads it."""

    name: str
    label: str
    family: str  # buying | blocker
    response: int  # seed 001's tier of response: 1 same day, 2 within 72 h, 3 automated nurture only
    evidence: str

    @property
    def line(self) -> str:
        """"Active buyer (tier 1, same day): compared plans and reached for the upgrade"."""
        return fired_line(self.label, self.response, self.evidence)


@dataclass(slots=True)
class ContactView:
    """One user of an account lead: seed 004's contact map row (who, last active, what they did)."""

    user_id: str
    name: str | None
    email: str | None
    title: str | None
    last_active: datetime | None
    did: list[str]
    status: str | None = None
    opted_out: bool = False  # opted out of sales contact: shown, never to be contacted


@dataclass(slots=True)
class HandoffPackage:
    """Seed 004's handoff package: what a rep needs before the first touch."""

    usage_summary: list[str]  # activation, key events, last activity (approved signals only)
    company_profile: list[str]  # size, band and ACV potential, industry, domain, plan
    contact_map: list[str]  # the account's users: "Li Wei, Analytics Engineer · li@acme.com · last active ..."
    recommended_opening: str  # the talk track
    upgrade_blockers: list[str]  # open tickets, do-not-touch reasons
    family: str | None = None  # "Adoption blocker: help them unblock, not a pitch."; None before families
    triggers: list[str] = field(default_factory=list)  # what fired, each with its tier of response


@dataclass(slots=True)
class LeadView:
    pql_id: int
    ref: str  # PQL-42
    state: PqlState
    tier: str  # fast_lane | high | medium
    score: int
    max_score: int
    user_id: str
    # Whom the lead is addressed to: its user, or for an account lead whose user opted out, the most recently active
    # of its people who has not (`_addressee`).
    name: str | None
    email: str | None
    title: str | None
    company_name: str | None
    company_size: int | None
    domain: str | None
    plan: str | None
    signup_at: datetime | None
    trial_day: int | None
    days_left: int | None
    signal_summary: str  # "activated (day 1); invited 2 teammates (day 4)"
    talk_track: str
    qualified_at: datetime
    history: list[str]  # account history, newest first: earlier PQLs, dispositions, open tickets
    assigned_rep: str | None  # Slack user id
    claimed_by: str | None
    claimed_at: datetime | None
    touches: list[TouchView]
    disposition: str | None  # a DISPOSITION_LABELS key
    disposition_reason: str | None
    disposition_by: str | None  # who set it: the claimant, or the manager
    stopped_reason: str | None  # why a stopped lead stopped ("converted to paid", "opted out of sales contact")
    sla_due_at: datetime | None = None  # set by routing (issue 5)
    emails: dict[str, outreach.RenderedEmail] = field(default_factory=dict)  # email1..3, for the details modal
    handoff: HandoffPackage | None = None
    ask: str | None = None  # a fast-lane lead's explicit ask, in the scorer's words ("requested a demo")
    # From the user's latest verdict; None when it was judged before bands were (a rescore fills them in).
    band: str | None = None  # smb | mid_market | enterprise | unknown (no company size known)
    acv_potential: int | None = None  # dollars a year; None without a company size
    hold: str | None = None  # on a do-not-touch hold (bot/services/holds.py): "checkout" or "support_ticket"
    held_since: datetime | None = None
    # What fired, from the lead's verdict (none from a verdict before triggers): its family, the triggers with their
    # tier of response, and for an account lead (level "account") the account and its contact map.
    level: str = "user"  # user | account
    family: str | None = None  # buying | blocker
    fired: list[FiredTrigger] = field(default_factory=list)
    account_name: str | None = None
    contacts: list[ContactView] = field(default_factory=list)
    # An account's lead (seed 003's PQA, bot/services/account_leads.py): its key; None for a user's lead.
    account_key: str | None = None
    # With teams (bot/domain/teams.py): which team and row of the routing matrix, and why this rep, as routing
    # audited it last ("team EMEA desk (routing matrix row 2): ...; round-robin: ..."); None with one team.
    routed: str | None = None
    team: str | None = None  # the team it records (None: the default team)
    # Teams this lead may be handed to (name -> label; bot/services/handoffs.py): none without teams. Filled in by
    # whoever knows the teams (bot/slack/runtime.py), not read from the store.
    handoff_teams: dict[str, str] = field(default_factory=dict)

    @property
    def account_users(self) -> int | None:
        """How many users an account lead's contact map holds; None for a user's lead."""
        return len(self.contacts) if self.level == "account" else None

    @property
    def is_open(self) -> bool:
        return self.state not in CLOSED

    @property
    def touches_left(self) -> int:
        return MAX_TOUCHES - len(self.touches)


def build(session: Session, pql_id: int, *, tz: tzinfo, product_name: str, at: datetime,
          kit: bool = True) -> LeadView:
    """Gather the lead, its user, the account's history and (with `kit`) the outreach kit from the store.
    An alert shows no emails and no handoff package: without them it renders in about half the time, and
    the deliverer renders one for every new lead and every edit."""
    pql = session.get(Pql, pql_id)
    if pql is None:
        raise LookupError(f"no lead PQL-{pql_id}")
    user = session.get(TrialUser, pql.user_id)
    account = account_of(session, pql)
    verdict = account or (user.verdict if user else None) or {}
    fired, contacts = fired_of(verdict), contacts_of(verdict)
    result = _result_for_outreach(pql, user, verdict)
    context = outreach.LeadContext.from_result(result, product_name=product_name, at=at, tz=tz,
                                               rep_name=_rep_name(session, pql.claimed_by or pql.rep_id))
    to = _addressee(session, user, contacts)
    if to is not user and to is not None:
        context = replace(context, first_name=to.first_name)
    touches = [
        TouchView(t.number, t.channel, t.email_key, t.note, t.rep_id, t.at)
        for t in session.exec(select(Touch).where(Touch.pql_id == pql_id).order_by(Touch.number))
    ]
    latest = session.exec(
        select(DispositionRecord).where(DispositionRecord.pql_id == pql_id).order_by(DispositionRecord.id.desc())
    ).first()
    talk = outreach.talk_track(context)
    return LeadView(
        pql_id=pql.id,
        ref=pql.ref,
        state=PqlState(pql.state),
        tier=pql.tier,
        score=pql.score,
        max_score=verdict.get("max_score", 10),
        user_id=pql.user_id,
        name=to.name if to else None,
        email=to.email if to else None,
        title=to.title if to else None,
        company_name=(account or {}).get("account", {}).get("company_name") or (user.company_name if user else None),
        company_size=(account or {}).get("company_size") or (user.company_size if user else None),
        domain=user.domain if user else None,
        plan=user.plan if user else None,
        signup_at=user.signup_at if user else None,
        trial_day=verdict.get("trial_day"),
        days_left=verdict.get("days_left"),
        # The triggers that fired are listed apart, with their tiers of response: the signals are the rest.
        signal_summary=signal_summary((s["evidence"], s["day"]) for s in pql.signals
                                      if s["name"] not in {f.name for f in fired}),
        ask=next((s["evidence"] for s in pql.signals if s.get("talk_track") == ASK_TRACK), None),
        talk_track=talk,
        qualified_at=pql.qualified_at,
        history=_history(session, pql, user),
        assigned_rep=pql.rep_id,
        claimed_by=pql.claimed_by,
        claimed_at=pql.claimed_at,
        touches=touches,
        disposition=pql.disposition,
        disposition_reason=latest.reason if latest else None,
        disposition_by=latest.rep_id if latest else None,
        stopped_reason=_ABSORBED.format(ref=f"PQL-{pql.absorbed_into}") if pql.state == PqlState.ABSORBED
        else _STOPPED.get(pql.state),
        sla_due_at=pql.sla_due_at,
        emails={key: outreach.email(context, key) for key in outreach.EMAIL_KEYS} if kit else {},
        handoff=_handoff(session, pql, user, verdict, talk, fired=fired, contacts=contacts, tz=tz) if kit else None,
        band=verdict.get("band"),
        acv_potential=verdict.get("acv_potential"),
        hold=holds.reason(pql),
        held_since=pql.held_since,
        level=verdict.get("level") or "user",
        family=verdict.get("family"),
        fired=fired,
        account_name=_account_name(verdict),
        contacts=contacts,
        account_key=pql.account_key if pql.level == "account" else None,
        routed=routed_why(session, pql),
        team=pql.team,
    )


#: The audit entries that say which team a lead went to, and why that rep.
_ROUTED = ("pql_assigned", "pql_queued", "pql_handed_off")


def routed_why(session: Session, pql: Pql) -> str | None:
    """The latest routing decision that named a team (none with one team and no matrix): its full reason."""
    if pql.team is None:
        return None
    entries = session.exec(select(AuditEntry).where(AuditEntry.pql_id == pql.id, AuditEntry.action.in_(_ROUTED))
                           .order_by(AuditEntry.id.desc()).limit(5))
    return next((e.detail.get("why") for e in entries if e.detail.get("team_why")), None)


def account_of(session: Session, pql: Pql) -> dict | None:
    """An account lead's stored verdict: the account's `ScoreResult.to_json()` (level "account", with its triggers,
    family and `users`), stored by the account roll-up under the lead's `account_key` in `account_scores`. None for
    a user lead (no account key) and when no account verdict is stored."""
    if pql.level != "account" or not pql.account_key:
        return None
    stored = session.get(AccountScore, pql.account_key)
    return stored.verdict if stored is not None and isinstance(stored.verdict, dict) else None


def lead_verdict(session: Session, pql: Pql, user: TrialUser | None) -> dict:
    """The verdict a lead is shown from: its account's (`account_of`) for an account lead, else its user's latest."""
    return account_of(session, pql) or (user.verdict if user else None) or {}


def fired_of(verdict: dict) -> list[FiredTrigger]:
    """The triggers that fired on a verdict, those routed to a person first (by tier), then the nurture-only ones."""
    found = [FiredTrigger(t["name"], t.get("label") or t["name"], t.get("family") or "buying",
                          int(t.get("response") or 3), t.get("evidence") or "")
             for t in verdict.get("triggers") or ()]
    return sorted(found, key=lambda f: f.response)


def _addressee(session: Session, user: TrialUser | None, contacts: list[ContactView]) -> TrialUser | None:
    """Whom the lead is addressed to: its user, unless they opted out of sales contact and the account lead has
    someone who has not (the most recently active of them): the emails are drafted to them, and the lead shows their
    name, title and email."""
    if user is None or not any(c.opted_out and c.user_id == user.user_id for c in contacts):
        return user
    other = next((c for c in contacts if not c.opted_out), None)
    return (session.get(TrialUser, other.user_id) or user) if other is not None else user


def contacts_of(verdict: dict) -> list[ContactView]:
    """An account verdict's contact map (seed 004), most recently active first; none for a user's verdict."""
    if verdict.get("level") != "account":
        return []
    contacts = [
        ContactView(u["user_id"], u.get("name"), u.get("email"), u.get("title"),
                    datetime.fromisoformat(u["last_active"]) if u.get("last_active") else None,
                    list(u.get("did") or ()), u.get("status"), bool(u.get("opted_out")))
        for u in verdict.get("users") or ()
    ]
    latest = datetime.min.replace(tzinfo=UTC)
    return sorted(contacts, key=lambda c: c.last_active or latest, reverse=True)


def contact_line(contact: ContactView, *, tz: tzinfo) -> str:
    """"Li Wei, Analytics Engineer · li@acme.com · last active Tue 3 Dec · connected Snowflake" (not escaped)."""
    active = contact.last_active.astimezone(tz) if contact.last_active else None
    return _fired("contact", name=contact.name or contact.email or contact.user_id, title=contact.title,
                  email=contact.email, last_active=f"{active:%a} {active.day} {active:%b}" if active else None,
                  did=contact.did, opted_out=contact.opted_out)


def _account_name(verdict: dict) -> str | None:
    if verdict.get("level") != "account":
        return None
    account = verdict.get("account") or {}
    return account.get("company_name") or account.get("domain")


_ABSORBED = "now part of the account lead {ref}: work it there"
_STOPPED = {
    PqlState.STOPPED_CONVERTED: "converted to paid: sequence stopped",
    PqlState.STOPPED_OPT_OUT: "opted out of sales contact: do not contact",
}


def _rep_name(session: Session, rep_id: str | None) -> str | None:
    rep = session.get(Rep, rep_id) if rep_id else None
    return rep.name if rep else None


def _result_for_outreach(pql: Pql, user: TrialUser | None, verdict: dict) -> ScoreResult:
    """A ScoreResult good enough for the outreach templates, rebuilt from the stored lead and its verdict."""
    from scoring.result import Account, Profile, SignalMet, Status, Tier

    signals = tuple(
        SignalMet(s["name"], s.get("label", s["name"]), s.get("points", 0), s.get("day", 0), pql.qualified_at,
                  s.get("evidence", ""), s.get("talk_track", s["name"]), tuple(s.get("values", ())))
        for s in pql.signals
    )
    return ScoreResult(
        user_id=pql.user_id,
        email=user.email if user else None,
        account=Account(user.company_name if user else None, user.domain if user else None),
        company_size=user.company_size if user else None,
        score=pql.score,
        max_score=verdict.get("max_score", 10),
        tier=Tier(pql.tier),
        status=Status.QUALIFIED,
        signals=signals,
        reasons=(),
        strongest_signal=pql.strongest_signal,
        trial_day=verdict.get("trial_day"),
        days_left=verdict.get("days_left"),
        qualified_at=pql.qualified_at,
        profile=Profile(first_name=user.first_name if user else None, title=user.title if user else None),
        level=verdict.get("level") or "user",
        family=verdict.get("family"),
    )


def _history(session: Session, pql: Pql, user: TrialUser | None) -> list[str]:
    """Earlier PQLs at the same account (or of the same user), how they ended, and open tickets."""
    lines: list[str] = []
    domain = user.domain if user else None
    # The account's users as a subquery, not a list of ids: a big account has thousands of trial users, and
    # an IN list of them made every alert of theirs cost more to render than the rest of it together.
    here = (Pql.user_id.in_(select(TrialUser.user_id).where(TrialUser.domain == domain)) if domain
            else Pql.user_id == pql.user_id)
    earlier = session.exec(select(Pql).where(here, Pql.id != pql.id).order_by(Pql.id.desc()).limit(5))
    for other in earlier:
        ending = DISPOSITION_LABELS.get(other.disposition or "", other.state.replace("_", " "))
        who = "" if other.user_id == pql.user_id else f" ({other.user_id})"
        lines.append(f"{other.ref}{who}, {other.qualified_at:%d %b}: {ending}")
    touches = session.exec(
        select(sa.func.count()).select_from(Touch).join(Pql, Touch.pql_id == Pql.id).where(here, Pql.id != pql.id)
    ).one()
    if touches:
        lines.append(f"{touches} earlier touch{'es' * (touches != 1)} at this account")
    for reason in (user.verdict if user else {}).get("reasons", []):
        if reason.get("code") == "support_ticket_open":
            lines.append("Open support ticket: resolve it before reaching out")
    return lines


def _handoff(session: Session, pql: Pql, user: TrialUser | None, verdict: dict, talk: str, *,
             fired: list[FiredTrigger], contacts: list[ContactView], tz: tzinfo) -> HandoffPackage:
    """Seed 004's package. An account lead's contact map is its account verdict's users (every one: the modal
    counts what it cannot show); a user lead's, the other users at its domain, as before."""
    named = {f.name for f in fired}  # listed apart, with their tiers of response
    usage = [f"{s['evidence'].capitalize()} (day {s['day']})" for s in verdict.get("signals", pql.signals)
             if s.get("name") not in named and s.get("day") is not None]
    profile = []
    account = _account_name(verdict)
    if account:
        size = verdict.get("company_size")
        profile.append(f"{account}, {size:,} people" if size else account)
    if user:
        if not account and (user.company_name or user.company_size):
            size = f", {user.company_size:,} people" if user.company_size else ""
            profile.append(f"{user.company_name or user.domain}{size}")
        if verdict.get("band") is not None:
            profile.append(f"{_bands.table('band_labels').get(verdict['band'], verdict['band'])} · "
                           f"{_bands('acv', amount=verdict.get('acv_potential'))}")
        if user.industry:
            profile.append(f"Industry: {user.industry}")
        if user.domain:
            profile.append(f"Domain: {user.domain}")
        if user.plan:
            profile.append(f"Plan: {user.plan}")
    if verdict.get("level") == "account":
        return HandoffPackage(usage, profile, [contact_line(c, tz=tz) for c in contacts], talk,
                              _blockers(verdict), _family_line(verdict), [f.line for f in fired])
    same_domain = []
    if user and user.domain:
        others = session.exec(
            select(TrialUser).where(TrialUser.domain == user.domain, TrialUser.user_id != user.user_id).limit(10)
        )
        for other in others:
            name = other.name or other.user_id
            role = f", {other.title}" if other.title else ""
            same_domain.append(f"{name}{role} ({other.email})" if other.email else f"{name}{role}")
    return HandoffPackage(usage, profile, same_domain, talk, _blockers(verdict), _family_line(verdict),
                          [f.line for f in fired])


def _blockers(verdict: dict) -> list[str]:
    return [r["detail"] for r in verdict.get("reasons", []) if r.get("kind") == "do_not_touch"]


def _family_line(verdict: dict) -> str | None:
    family = verdict.get("family")
    return _fired("family_plain", family=family) if family else None


def lead_facts(session: Session, pql: Pql) -> tuple[str, str | None]:
    """(who, company) of a lead, escaped for mrkdwn: "Sarah Chen", "Acme Corp"."""
    user = session.get(TrialUser, pql.user_id)
    if user is None:
        return esc(pql.user_id), None
    who = user.name or user.email or pql.user_id
    company = user.company_name or user.domain
    return esc(who), esc(company) if company else None


def holder(pql: Pql) -> str:
    """Who has the lead: "<@U0ANA> (claimed)", "<@U0ANA> (assigned, not claimed)", "Nobody: waiting in the queue"."""
    if rep := pql.claimed_by or pql.rep_id:
        return _words("holder", rep=rep, claimed=bool(pql.claimed_by))
    return _words("nobody", queued=pql.state == PqlState.QUEUED)
