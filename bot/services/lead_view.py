"""Everything a person sees about one lead, gathered from the store in one place.

The Block Kit module renders a `LeadView`; it never queries the store itself. Times are aware datetimes
(UTC); the renderer formats them in the team timezone it is given. `lead_facts` and `holder` are the short
form (who the lead is, who has it), for the sweeps' notices and the manager's modals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.domain.kit import DISPOSITION_LABELS, MAX_TOUCHES
from bot.domain.lifecycle import CLOSED, PqlState
from bot.services import holds, outreach
from bot.services.alert_text import ASK_TRACK, signal_summary
from bot.store.models import AccountScore, DispositionRecord, Pql, Rep, Touch, TrialUser
from scoring import ScoreResult
from templates import esc, sentences

_words = sentences("slack/escalations.j2")
_bands = sentences("scoring/bands.j2")


@dataclass(slots=True)
class TouchView:
    number: int
    channel: str  # email | call | linkedin
    email_key: str | None  # email1 | email2 | email3 when the touch was one of the kit's emails
    note: str | None
    rep_id: str
    at: datetime


@dataclass(slots=True)
class HandoffPackage:
    """Seed 004's handoff package: what a rep needs before the first touch."""

    usage_summary: list[str]  # activation, key events, last activity (approved signals only)
    company_profile: list[str]  # size, band and ACV potential, industry, domain, plan
    contact_map: list[str]  # other users at the same account: "Li Wei, Analytics Engineer (li@acme.com)"
    recommended_opening: str  # the talk track
    upgrade_blockers: list[str]  # open tickets, do-not-touch reasons


@dataclass(slots=True)
class LeadView:
    pql_id: int
    ref: str  # PQL-42
    state: PqlState
    tier: str  # fast_lane | high | medium
    score: int
    max_score: int
    user_id: str
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
    # An account's lead (seed 003's PQA, bot/services/account_leads.py): its key and how many users its contact map
    # holds; None for a user's lead.
    account_key: str | None = None
    account_users: int | None = None

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
    verdict = user.verdict if user else {}
    account = _account_verdict(session, pql)
    if account:  # the account's firmographics and contact map, not its anchor user's alone
        verdict = verdict | {key: account[key] for key in ("band", "acv_potential", "users") if key in account}
    result = _result_for_outreach(pql, user)
    context = outreach.LeadContext.from_result(result, product_name=product_name, at=at, tz=tz,
                                               rep_name=_rep_name(session, pql.claimed_by or pql.rep_id))
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
        name=user.name if user else None,
        email=user.email if user else None,
        title=user.title if user else None,
        company_name=(account or {}).get("account", {}).get("company_name") or (user.company_name if user else None),
        company_size=(account or {}).get("company_size") or (user.company_size if user else None),
        domain=user.domain if user else None,
        plan=user.plan if user else None,
        signup_at=user.signup_at if user else None,
        trial_day=verdict.get("trial_day"),
        days_left=verdict.get("days_left"),
        signal_summary=signal_summary((s["evidence"], s["day"]) for s in pql.signals),
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
        handoff=_handoff(session, pql, user, verdict, talk) if kit else None,
        band=verdict.get("band"),
        acv_potential=verdict.get("acv_potential"),
        hold=holds.reason(pql),
        held_since=pql.held_since,
        account_key=pql.account_key if pql.level == "account" else None,
        account_users=len(account.get("users", [])) if account else None,
    )


def _account_verdict(session: Session, pql: Pql) -> dict | None:
    """An account lead's account verdict, as the last rescore that rolled the account up stored it."""
    if pql.level != "account" or not pql.account_key:
        return None
    stored = session.get(AccountScore, pql.account_key)
    return stored.verdict if stored else None


_ABSORBED = "now part of the account lead {ref}: work it there"
_STOPPED = {
    PqlState.STOPPED_CONVERTED: "converted to paid: sequence stopped",
    PqlState.STOPPED_OPT_OUT: "opted out of sales contact: do not contact",
}


def _rep_name(session: Session, rep_id: str | None) -> str | None:
    rep = session.get(Rep, rep_id) if rep_id else None
    return rep.name if rep else None


def _result_for_outreach(pql: Pql, user: TrialUser | None) -> ScoreResult:
    """A ScoreResult good enough for the outreach templates, rebuilt from the stored lead."""
    from scoring.result import Account, Profile, SignalMet, Status, Tier

    signals = tuple(
        SignalMet(s["name"], s.get("label", s["name"]), s.get("points", 0), s.get("day", 0), pql.qualified_at,
                  s.get("evidence", ""), s.get("talk_track", s["name"]), tuple(s.get("values", ())))
        for s in pql.signals
    )
    verdict = user.verdict if user else {}
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


def _handoff(session: Session, pql: Pql, user: TrialUser | None, verdict: dict, talk: str) -> HandoffPackage:
    usage = [f"{s['evidence'].capitalize()} (day {s['day']})" for s in verdict.get("signals", pql.signals)]
    profile = []
    if user:
        if user.company_name or user.company_size:
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
    contacts = [_contact_line(c) for c in verdict.get("users", []) if c.get("user_id") != pql.user_id]
    if not contacts and user and user.domain:
        others = session.exec(
            select(TrialUser).where(TrialUser.domain == user.domain, TrialUser.user_id != user.user_id).limit(10)
        )
        for other in others:
            name = other.name or other.user_id
            role = f", {other.title}" if other.title else ""
            contacts.append(f"{name}{role} ({other.email})" if other.email else f"{name}{role}")
    blockers = [r["detail"] for r in verdict.get("reasons", []) if r.get("kind") == "do_not_touch"]
    return HandoffPackage(usage, profile, contacts, talk, blockers)


def _contact_line(contact: dict) -> str:
    """One user of an account lead's contact map (seed 004): "Li Wei, Analytics Engineer (li@acme.com): activated;
    invited 2 teammates"."""
    name = contact.get("name") or contact.get("email") or contact["user_id"]
    role = f", {contact['title']}" if contact.get("title") else ""
    email = f" ({contact['email']})" if contact.get("email") and contact.get("email") != name else ""
    did = f": {'; '.join(contact['did'])}" if contact.get("did") else ""
    return f"{name}{role}{email}{did}"


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
