"""Outreach words for one lead: the rep's talk track and the 3-touch email sequence (seed 002, section 6).

The wording lives in templates/ (talk_tracks/, emails/) so it can be rewritten without touching code. Everything
here is pure except the default slot time (now, if not given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from scoring.result import ScoreResult
from templates import render

EMAIL_KEYS = ("email1", "email2", "email3")
TALK_TRACKS = ("integration", "invites", "billing", "multi_day", "fast_lane", "enterprise", "expansion", "unblock")
#: The talk tracks that help rather than sell: all a blocker lead is given (seed 000: a blocker's rep job is
#: "Unblock / enable"; its wrong response, "Pitching instead of helping").
BLOCKER_TRACKS = ("unblock",)
# Talk track key -> Email 1 variant. Anything else gets B: its team-setup pitch claims nothing specific.
_VARIANTS = {"integration": "A", "invites": "B", "billing": "C", "fast_lane": "F", "enterprise": "E",
             "expansion": "G", "unblock": "U"}
# Without a strong signal the rep leads with the lead's goals, which is what the multi_day track does.
_FALLBACK_TRACK = "multi_day"
_SLOT_HOURS = (10, 14)


@dataclass(slots=True, frozen=True)
class RenderedEmail:
    subject: str
    body: str


@dataclass(slots=True, frozen=True)
class LeadContext:
    """What the templates may use: nothing about how often or how long anyone used the product."""

    product_name: str
    first_name: str | None
    company_name: str | None
    company_size: int | None
    integrations: tuple[str, ...]
    track: str | None  # the strongest signal's talk track key, e.g. "integration"
    trial_day: int | None
    days_left: int | None
    rep_name: str | None
    slot_a: str
    slot_b: str
    resource_url: str | None = None
    scheduling_url: str | None = None
    family: str | None = None  # the lead's family: buying | blocker (None before families)

    @classmethod
    def from_result(
        cls,
        result: ScoreResult,
        *,
        product_name: str,
        rep_name: str | None = None,
        slot_a: str | None = None,
        slot_b: str | None = None,
        resource_url: str | None = None,
        scheduling_url: str | None = None,
        integrations: Sequence[str] = (),
        at: datetime | None = None,
        tz: tzinfo = UTC,
    ) -> LeadContext:
        """`integrations` beats the names in the result; `at`/`tz` pick the default slots."""
        if slot_a is None or slot_b is None:
            default_a, default_b = suggest_slots(at or datetime.now(tz), tz)
            slot_a, slot_b = slot_a or default_a, slot_b or default_b
        return cls(
            product_name=product_name,
            first_name=result.profile.first_name,
            company_name=result.account.company_name,
            company_size=result.company_size,
            integrations=tuple(integrations) or _integrations_from(result),
            track=result.talk_track,
            trial_day=result.trial_day,
            days_left=result.days_left,
            rep_name=rep_name,
            slot_a=slot_a,
            slot_b=slot_b,
            resource_url=resource_url,
            scheduling_url=scheduling_url,
            family=result.family,
        )

    @property
    def lead_track(self) -> str | None:
        return lead_track(self.track, self.family)

    @property
    def integration_list(self) -> str:
        """E.g. "Snowflake", "Snowflake and dbt", "Snowflake, dbt and Looker"; empty when unknown."""
        *rest, last = self.integrations or ("",)
        return f"{', '.join(rest)} and {last}" if rest else last

    @property
    def company_label(self) -> str:
        """E.g. "Initech (800 people)" or "Initech"; empty when the company is unknown."""
        if not self.company_name:
            return ""
        if self.company_size:
            return f"{self.company_name} ({self.company_size:,} people)"
        return self.company_name

    def template_vars(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return data | {"integration_list": self.integration_list, "company_label": self.company_label,
                       "track": self.lead_track}


def lead_track(track: str | None, family: str | None) -> str | None:
    """The talk track a lead gets: its strongest signal's, except that a blocker lead is only ever helped, never
    pitched (a blocker lead whose strongest signal has a buying track gets the `unblock` one)."""
    if family == "blocker" and track not in BLOCKER_TRACKS:
        return "unblock"
    return track


def _integrations_from(result: ScoreResult) -> tuple[str, ...]:
    for signal in result.signals:
        if signal.talk_track == "integration":
            return signal.values
    return ()


def variant_for(ctx: LeadContext) -> str:
    return variant_for_track(ctx.lead_track)


def variant_for_track(track: str | None) -> str:
    """Email 1's variant for a strongest signal's talk track: A, B, C, F, E (enterprise), G (expansion: growth) or U
    (unblock)."""
    return _VARIANTS.get(track or "", "B")


def talk_track(ctx: LeadContext) -> str:
    key = ctx.lead_track if ctx.lead_track in TALK_TRACKS else _FALLBACK_TRACK
    text = render(f"talk_tracks/{key}.txt.j2", **ctx.template_vars())
    return " ".join(text.split())  # Slack shows it as one line, whatever the template's layout


def email(ctx: LeadContext, which: str) -> RenderedEmail:
    if which not in EMAIL_KEYS:
        raise ValueError(f"unknown email {which!r}: expected one of {', '.join(EMAIL_KEYS)}")
    extra: dict[str, Any] = {}
    if which == "email1":
        name = f"emails/email1_{variant_for(ctx).lower()}.txt.j2"
    else:
        name = f"emails/{which}.txt.j2"
        if which == "email2":
            # Email 2 replies to Email 1's thread, so its subject must match exactly.
            extra["original_subject"] = email(ctx, "email1").subject
    text = render(name, **(ctx.template_vars() | extra))
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"{name}: the first line must be 'Subject: ...'")
    return RenderedEmail(first.removeprefix("Subject: ").strip(), body.strip())


def suggest_slots(at: datetime, tz: tzinfo) -> tuple[str, str]:
    """Two call times on the next two weekdays after `at` (aware), as the lead's rep would say them."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    day = at.astimezone(tz).date()
    days = []
    while len(days) < 2:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    first, second = (f"{d:%A} at {hour:02d}:00" for d, hour in zip(days, _SLOT_HOURS, strict=True))
    return first, second
