"""What the scorer says about one user, in terms a rep and an ops person can both read.

Plain slotted dataclasses, not frozen ones: a frozen dataclass sets every field through
`object.__setattr__`, which shows at 100,000 users. Treat them as read-only all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from templates import sentences


class Status(StrEnum):
    QUALIFIED = "qualified"
    HELD = "held"
    MONITOR = "monitor"
    BELOW_THRESHOLD = "below_threshold"
    EXCLUDED = "excluded"
    DO_NOT_TOUCH = "do_not_touch"


class Tier(StrEnum):
    FAST_LANE = "fast_lane"
    HIGH = "high"
    MEDIUM = "medium"


class Band(StrEnum):
    """Seed 000's account bands, by company size (the rules file's `[bands]`); UNKNOWN when no size is known."""

    SMB = "smb"
    MID_MARKET = "mid_market"
    ENTERPRISE = "enterprise"
    UNKNOWN = "unknown"


class ReasonKind(StrEnum):
    EXCLUSION = "exclusion"
    DO_NOT_TOUCH = "do_not_touch"
    GATE = "gate"


@dataclass(slots=True)
class Reason:
    """Why a user is excluded, gated or not to be touched: a code, its kind, and the values its words need.

    The words are templates/scoring/reasons.j2's macro named `code`, called with `params`: plain JSON scalars (text,
    numbers, booleans, None), since they are also the key of the rendered words' cache. `detail` renders them once
    per distinct reason; a population shares a few thousand at most, so stored verdicts cost no rendering to speak of.
    """

    code: str
    kind: ReasonKind
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        return _detail(self.code, **self.params)

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "kind": str(self.kind), "detail": self.detail}


_reason_words = sentences("scoring/reasons.j2")


@lru_cache(maxsize=1 << 16, typed=True)  # typed: 1 and 1.0 read differently
def _detail(code: str, /, **params: Any) -> str:
    return _reason_words(code, **params)


@dataclass(slots=True)
class SignalMet:
    """A signal the user met: `day` is the trial day it was first met, `evidence` what a rep reads."""

    name: str
    label: str
    points: int
    day: int
    at: datetime
    evidence: str
    talk_track: str
    values: tuple[str, ...] = ()  # what was counted, when it has names (integration types)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "points": self.points,
            "day": self.day,
            "evidence": self.evidence,
            "values": list(self.values),
        }


@dataclass(slots=True)
class Account:
    company_name: str | None
    domain: str | None
    key: str | None = None  # the account's key: "group:<group id>" or "domain:<company email domain>"; None: none


def account_key(group_id: str | None, domain: str | None) -> str | None:
    """The account a user belongs to (scoring/accounts.py): the group their latest group call named, else their
    company email domain (`domain` is None for a personal one: gmail.com is nobody's account); None: no account."""
    if group_id:
        return f"group:{group_id}"
    return f"domain:{domain}" if domain else None


@dataclass(slots=True)
class TriggerMet:
    """A trigger that fired (scoring/triggers.py), in the words a rep reads: its family (buying: a rep can
    accelerate a purchase; blocker: help them unblock), strength, tier of response (1 same day, 2 within 72 h,
    3 automated nurture only) and evidence."""

    name: str
    label: str
    family: str
    strength: str
    response: int
    level: str
    at: datetime
    evidence: str
    weight: float
    talk_track: str
    users: tuple[str, ...] = ()  # account triggers: the users whose events made it fire

    @property
    def routed(self) -> bool:
        return self.response != 3

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "family": self.family,
            "strength": self.strength,
            "response": self.response,
            "level": self.level,
            "at": self.at.isoformat(),
            "evidence": self.evidence,
            "weight": self.weight,
            **({"users": list(self.users)} if self.level == "account" else {}),
        }


@dataclass(slots=True)
class Contact:
    """One user of an account, for the contact map (seed 004): who they are, when they were last active, and what
    they did (their own verdict's signals and triggers, in words)."""

    user_id: str
    name: str | None
    email: str | None
    title: str | None
    last_active: datetime | None
    did: tuple[str, ...] = ()
    status: str | None = None  # their own verdict's status
    opted_out: bool = False  # they opted out of sales contact: in the map, never to be contacted

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "title": self.title,
            "last_active": None if self.last_active is None else self.last_active.isoformat(),
            "did": list(self.did),
            "status": self.status,
            "opted_out": self.opted_out,
        }


@dataclass(slots=True)
class Profile:
    """What the signup, identify calls and the account's group traits told us about the person, for alerts and
    emails (scoring/profile.py)."""

    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    plan: str | None = None
    signup_source: str | None = None
    signup_at: datetime | None = None
    trial_ends_on: Any = None  # the last trial day, a date in the team timezone
    industry: str | None = None
    group_id: str | None = None  # the account the user's latest group call named

    @property
    def name(self) -> str | None:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return full or None


@dataclass(slots=True)
class ScoreResult:
    user_id: str
    email: str | None
    account: Account
    company_size: int | None
    score: int
    max_score: int
    tier: Tier | None
    status: Status
    signals: tuple[SignalMet, ...]
    reasons: tuple[Reason, ...]
    strongest_signal: str | None
    trial_day: int | None
    days_left: int | None
    # Seed 000's band and seed 004's ACV potential (whole dollars a year) from the firmographics; None: size unknown.
    band: Band = Band.UNKNOWN
    acv_potential: int | None = None
    # Not part of the printed result, but the bot needs them for alerts and clocks.
    qualified_at: datetime | None = None
    profile: Profile = field(default_factory=Profile)
    # Seed 000's triggers that fired (routed or not), the lead's level and family, and an account lead's users.
    level: str = "user"  # user | account
    family: str | None = None  # buying | blocker, of what made it a lead (points and asks: buying); None: no lead
    triggers: tuple[TriggerMet, ...] = ()
    users: tuple[Contact, ...] = ()

    @property
    def talk_track(self) -> str | None:
        """Which talk track (and Email 1 variant) fits: the strongest signal's."""
        for signal in self.signals:
            if signal.name == self.strongest_signal:
                return signal.talk_track
        return None

    @property
    def routable(self) -> bool:
        return self.status is Status.QUALIFIED

    def to_json(self) -> dict[str, Any]:
        """Exactly the documented result keys, JSON-ready."""
        return {
            "user_id": self.user_id,
            "email": self.email,
            "account": {"company_name": self.account.company_name, "domain": self.account.domain,
                        **({"key": self.account.key} if self.level == "account" else {})},
            "company_size": self.company_size,
            "band": str(self.band),
            "acv_potential": self.acv_potential,
            "score": self.score,
            "max_score": self.max_score,
            "tier": None if self.tier is None else str(self.tier),
            "status": str(self.status),
            "signals": [s.to_json() for s in self.signals],
            "reasons": [r.to_json() for r in self.reasons],
            "strongest_signal": self.strongest_signal,
            "trial_day": self.trial_day,
            "days_left": self.days_left,
            "level": self.level,
            "family": self.family,
            "triggers": [t.to_json() for t in self.triggers],
            **({"users": [u.to_json() for u in self.users]} if self.level == "account" else {}),
        }


@dataclass(slots=True)
class PriorDisposition:
    """A disposition set on this user earlier, as the store knows it."""

    disposition: str
    at: datetime
