"""What pqlbot reads from HubSpot (`pqlbot crm owners`, `pqlbot crm pull`): who owns what, and firmographics.

- Reps are matched to HubSpot owners by email (PQL_REP_EMAILS gives each rep's; case does not matter).
- A company's HubSpot owner is its named-account owner: the company's domain becomes a named account owned by the
  rep matched to that owner (routing gives its leads to them, bot/services/routing.py). For HubSpot users this
  replaces `pqlbot owners import`; a company whose owner matches no rep on the roster is left as it is.
- Contacts' and companies' size (`numberofemployees`) and `industry` reach scoring as what they are, identify calls
  for the product users they describe (a contact by email; a company for every user of its domain, the contact's own
  figure winning), ingested like the product's own: the user is rescored at once, the newest value wins, and each
  call's messageId names the values, so pulling again what did not change stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from bot.integrations.hubspot import HubSpot, Owner
from bot.services import audit
from bot.services.pipeline import Pipeline
from bot.store.models import Account, TrialUser
from scoring.events import IDENTIFY, Event

ACTOR = "pqlbot crm pull"


@dataclass(slots=True)
class Matched:
    reps: dict[str, Owner] = field(default_factory=dict)  # rep id -> their HubSpot owner
    unmatched: list[tuple[str, str | None]] = field(default_factory=list)  # (rep id, email or None)
    spare: list[Owner] = field(default_factory=list)  # owners no rep is matched to


def match(owners: list[Owner], rep_emails: dict[str, str], roster: list[str]) -> Matched:
    """Each rep on the roster to the owner with their email."""
    by_email = {o.email: o for o in owners if o.email}
    matched = Matched()
    for rep in roster:
        email = (rep_emails.get(rep) or "").lower() or None
        if email and email in by_email:
            matched.reps[rep] = by_email[email]
        else:
            matched.unmatched.append((rep, email))
    taken = {o.id for o in matched.reps.values()}
    matched.spare = [o for o in owners if o.id not in taken]
    return matched


@dataclass(slots=True)
class Pulled:
    named: int = 0  # named accounts set or changed
    unowned: int = 0  # companies whose owner is no rep on the roster
    identified: int = 0  # identify calls made from firmographics (new values only are stored)


def _size(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def pull(hub: HubSpot, pipeline: Pipeline, *, rep_emails: dict[str, str], roster: list[str],
         now: datetime) -> Pulled:
    pulled = Pulled()
    owner_rep = {owner.id: rep for rep, owner in match(hub.owners(fresh=True), rep_emails, roster).reps.items()}
    companies = list(hub.pages("companies", ["domain", "name", "numberofemployees", "industry", "hubspot_owner_id"]))
    contacts = list(hub.pages("contacts", ["email", "numberofemployees", "industry"]))
    firmographics: dict[str, dict] = {}  # user id -> traits
    with pipeline.session() as session, session.begin():
        for company in companies:
            p = company.properties or {}
            domain = (p.get("domain") or "").strip().lower()
            if not domain:
                continue
            owner = p.get("hubspot_owner_id")
            if owner:
                rep = owner_rep.get(str(owner))
                if rep is None:
                    pulled.unowned += 1
                else:
                    pulled.named += _own(session, domain, p.get("name"), rep, now)
            traits = _traits(p)
            if traits:
                for user_id in session.exec(select(TrialUser.user_id).where(TrialUser.domain == domain)):
                    firmographics.setdefault(user_id, {}).update(traits)
        for contact in contacts:
            p = contact.properties or {}
            email = (p.get("email") or "").strip().lower()
            traits = _traits(p)
            if email and traits:
                for user_id in session.exec(select(TrialUser.user_id).where(TrialUser.email == email)):
                    firmographics.setdefault(user_id, {}).update(traits)
    events = [Event(IDENTIFY, user_id, now, f"hubspot:{user_id}:{traits.get('company_size')}:{traits.get('industry')}",
                    traits) for user_id, traits in sorted(firmographics.items())]
    if events:
        pipeline.ingest(events, at=now)
    pulled.identified = len(events)
    return pulled


def _traits(p: dict) -> dict:
    traits = {}
    if (size := _size(p.get("numberofemployees"))) is not None:
        traits["company_size"] = size
    if p.get("industry"):
        traits["industry"] = p["industry"]
    return traits


def _own(session, domain: str, name: str | None, rep: str, now: datetime) -> int:  # noqa: ANN001 (a Session)
    account = session.get(Account, domain)
    previous = account.owner_rep_id if account else None
    if previous == rep:
        return 0
    if account is None:
        session.add(Account(domain=domain, company_name=name or None, owner_rep_id=rep))
    else:
        account.owner_rep_id, account.company_name = rep, account.company_name or name
    audit.record(session, "account_owner_set", at=now, actor=ACTOR, domain=domain, rep=rep, previous=previous)
    return 1
