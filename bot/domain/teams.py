"""Teams and the routing matrix (seed 000's "Rep Assignment Routing Matrix", seed 004's ACV bands): which team a
lead goes to, before routing asks which rep of that team (bot/services/routing.py).

Pure: a TOML text in, a validated `Teams` out (`parse`), and `Teams.choose(facts)` for a lead:
- the rows of `[[routes]]` are read top to bottom and the first whose every condition holds wins (a condition
  left out holds for every lead): the fast lane or not, the trigger family, the band, the ACV estimate's range
  (`acv_min` inclusive, `acv_max` exclusive), the level (user or account lead), and trigger names (any of them
  fired);
- no row matching: the default team.
Each team brings its own members, daily cap, business hours and holidays (a rep's hours are the team's, in the
rep's own timezone), SLA per tier, escalation target, alert channel, fast-lane on-call member and the hand-offs
it accepts. With no file, the PQL_* settings form one team (`single_team`), so a pilot changes nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.domain.business_time import BusinessCalendar
from bot.domain.lifecycle import TIERS
from bot.domain.routing import FastLane
from bot.domain.sla import FIRST_TOUCH

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}|C[A-Z0-9]{2,}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(m|h)")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
BANDS = ("smb", "mid_market", "enterprise", "unknown")
#: The team built from PQL_REPS and friends when no teams file is set.
SINGLE_TEAM = "sdr"


class TeamsFileError(ValueError):
    """A teams file that cannot be used; `str()` names the file, the place in it and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Member(_Strict):
    id: str
    name: str | None = None
    timezone: str | None = None
    crm_owner_id: str | None = None

    @field_validator("id")
    @classmethod
    def _slack_id(cls, value: str) -> str:
        if not _SLACK_USER.fullmatch(value):
            raise ValueError(f"{value!r} is not a Slack user id (like U0123ABCD)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _known_zone(value) if value else None


class Handoff(_Strict):
    """What a lead handed to this team must come with: what the handing rep says happened (`meeting_set`: a meeting
    is set; `routed_to_cs`: it needs customer success), and the least ACV estimate the team takes (seed 004: the AE
    motion from $30,000)."""

    when: Literal["meeting_set", "routed_to_cs"]
    min_acv: int | None = Field(None, ge=0)


class Team(_Strict):
    name: str = ""  # the key under [teams]; filled in by Teams
    label: str = ""
    members: tuple[Member, ...] | None = None  # None only for the single team: everyone on PQL_REPS
    timezone: str = "America/New_York"
    daily_cap: int = Field(5, ge=1)
    business_hours: str = "09:00-18:00"
    holidays: tuple[date, ...] = ()
    sla: dict[str, str] = Field(default_factory=dict)  # tier -> business time to first touch ("1h", "30m")
    escalate_to: str | None = None  # the manager's Slack id, or a channel
    alert_channel: str = "#pql-alerts"
    on_call: str | None = None
    handoff: Handoff | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("sla")
    @classmethod
    def _sla(cls, value: dict[str, str]) -> dict[str, str]:
        for tier, text in value.items():
            if tier not in TIERS:
                raise ValueError(f"sla.{tier}: not a tier (one of {', '.join(TIERS)})")
            _duration(text, f"sla.{tier}")
        return value

    @field_validator("escalate_to")
    @classmethod
    def _escalation(cls, value: str | None) -> str | None:
        if value and not (_SLACK_USER.fullmatch(value) or _CHANNEL.fullmatch(value)):
            raise ValueError(f"{value!r} is neither a Slack user id (U0123ABCD) nor a channel (#name or C0123ABCD)")
        return value

    @field_validator("alert_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _CHANNEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a channel (#name or C0123ABCD)")
        return value

    @model_validator(mode="after")
    def _on_call_is_member(self) -> Team:
        if self.on_call and self.members is not None and self.on_call not in self.member_ids:
            raise ValueError(f"on_call {self.on_call} is not one of the team's members")
        return self

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def member_ids(self) -> frozenset[str] | None:
        """The members' Slack ids; None: everyone on the roster (the single team)."""
        return None if self.members is None else frozenset(m.id for m in self.members)

    @property
    def manager(self) -> str | None:
        """Who hears of this team's escalations by DM: the escalation target when it is a person."""
        return self.escalate_to if self.escalate_to and _SLACK_USER.fullmatch(self.escalate_to) else None

    @property
    def escalation_channel(self) -> str | None:
        return self.escalate_to if self.escalate_to and not _SLACK_USER.fullmatch(self.escalate_to) else None

    @cached_property
    def calendar(self) -> BusinessCalendar:
        opens, closes = parse_hours(self.business_hours)
        return BusinessCalendar(ZoneInfo(self.timezone), opens, closes, frozenset(self.holidays))

    @cached_property
    def first_touch(self) -> dict[str, timedelta]:
        """Business time to first touch per tier: seed 002's table, with this team's own figures over it."""
        return FIRST_TOUCH | {tier: _duration(text, f"sla.{tier}") for tier, text in self.sla.items()}

    @property
    def fast_lane(self) -> FastLane:
        return FastLane(on_call=self.on_call)


class Route(_Strict):
    """One row of the routing matrix: conditions (each optional) and the team they send a lead to."""

    team: str
    why: str = ""  # what `/pql why` and the alert say of this row
    fast_lane: bool | None = None
    family: Literal["buying", "blocker"] | None = None
    bands: tuple[Literal["smb", "mid_market", "enterprise", "unknown"], ...] | None = None
    acv_min: int | None = Field(None, ge=0)
    acv_max: int | None = Field(None, gt=0)
    level: Literal["user", "account"] | None = None
    triggers: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _range(self) -> Route:
        if self.acv_min is not None and self.acv_max is not None and self.acv_min >= self.acv_max:
            raise ValueError(f"acv_min {self.acv_min} must be under acv_max {self.acv_max}")
        return self

    def matches(self, lead: LeadFacts) -> bool:
        if self.fast_lane is not None and self.fast_lane != (lead.tier == "fast_lane"):
            return False
        if self.family is not None and lead.family != self.family:
            return False
        if self.bands is not None and (lead.band or "unknown") not in self.bands:
            return False
        if self.acv_min is not None and (lead.acv is None or lead.acv < self.acv_min):
            return False
        if self.acv_max is not None and (lead.acv is None or lead.acv >= self.acv_max):
            return False
        if self.level is not None and lead.level != self.level:
            return False
        return self.triggers is None or bool(set(self.triggers) & set(lead.triggers))

    def describe(self) -> str:
        """The row's conditions in words, for a row without a `why`."""
        parts = []
        if self.fast_lane is not None:
            parts.append("fast lane" if self.fast_lane else "not fast lane")
        if self.triggers:
            parts.append(" or ".join(self.triggers))
        if self.family:
            parts.append(f"{self.family} family")
        if self.bands:
            parts.append("/".join(b.replace("_", "-") for b in self.bands))
        if self.acv_min is not None or self.acv_max is not None:
            low = f"${self.acv_min:,}" if self.acv_min is not None else "$0"
            parts.append(f"ACV {low}-{f'${self.acv_max:,}' if self.acv_max is not None else 'up'}")
        if self.level:
            parts.append(f"{self.level} lead")
        return ", ".join(parts) or "every lead"


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What the matrix reads of a lead (its verdict's family, band, ACV estimate and fired triggers)."""

    tier: str
    family: str | None = None
    band: str | None = None
    acv: int | None = None
    level: str = "user"
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    team: Team
    row: int | None  # 1-based row of [[routes]]; None: the default team

    @property
    def why(self) -> str:
        return f"team {self.team.title}" + (f" (routing matrix row {self.row})" if self.row else " (the default team)")


class Teams(_Strict):
    default: str
    teams: dict[str, Team]
    routes: tuple[Route, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: dict) -> dict:
        if isinstance(data, dict) and isinstance(data.get("teams"), dict):
            data = dict(data)
            data["teams"] = {name: {**team, "name": name} if isinstance(team, dict) else team
                             for name, team in data["teams"].items()}
        return data

    @model_validator(mode="after")
    def _references(self) -> Teams:
        if not self.teams:
            raise ValueError("no teams: add at least one [teams.<name>] table")
        for name, team in self.teams.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"teams.{name}: a team's name is lower case letters, digits and _")
            if team.members is not None and not team.members:
                raise ValueError(f"teams.{name}: members is empty")
        if self.default not in self.teams:
            raise ValueError(f"default: {self.default!r} is not one of the teams ({', '.join(self.teams)})")
        for number, route in enumerate(self.routes, 1):
            if route.team not in self.teams:
                raise ValueError(f"routes[{number}]: team {route.team!r} is not one of the teams "
                                 f"({', '.join(self.teams)})")
        return self

    def choose(self, lead: LeadFacts) -> Choice:
        """The first row of the matrix the lead matches, or the default team."""
        for number, route in enumerate(self.routes, 1):
            if route.matches(lead):
                return Choice(self.teams[route.team], number)
        return Choice(self.teams[self.default], None)

    def unknown_triggers(self, known: Iterable[str]) -> list[tuple[int, str]]:
        """(row, name) for each trigger a row of the matrix names that is not among `known` (the rules' triggers):
        such a row never matches on it, and the leads it was meant for go on down the matrix."""
        known = set(known)
        return [(number, name) for number, route in enumerate(self.routes, 1) for name in route.triggers or ()
                if name not in known]

    def team(self, name: str | None) -> Team:
        """A lead's team by the name it recorded; the default team for a lead from before teams (None) or from a
        team no longer in the file."""
        return self.teams.get(name or "") or self.teams[self.default]

    def members(self) -> list[tuple[str, str | None, str | None]]:
        """Everyone on some team, once, as the roster is synced: (Slack id, name, timezone)."""
        seen: dict[str, tuple[str, str | None, str | None]] = {}
        for team in self.teams.values():
            for member in team.members or ():
                seen.setdefault(member.id, (member.id, member.name, member.timezone))
        return list(seen.values())

    def teams_of(self, rep_id: str) -> list[Team]:
        return [t for t in self.teams.values() if t.member_ids is None or rep_id in t.member_ids]

    @property
    def is_single(self) -> bool:
        return len(self.teams) == 1 and not self.routes


def single_team(calendar: BusinessCalendar, *, cap: int, manager: str | None, fast_lane: FastLane | None = None,
                alert_channel: str = "#pql-alerts") -> Teams:
    """The team PQL_REPS, PQL_MANAGER, PQL_DAILY_CAP, PQL_BUSINESS_HOURS, PQL_HOLIDAYS and PQL_ON_CALL form when
    there is no teams file: everyone on the roster, seed 002's SLA, no matrix."""
    team = Team.model_construct(
        name=SINGLE_TEAM, label="SDR team", members=None, timezone=str(calendar.tz), daily_cap=cap,
        business_hours=f"{calendar.opens:%H:%M}-{calendar.closes:%H:%M}", holidays=tuple(sorted(calendar.holidays)),
        sla={}, escalate_to=manager, alert_channel=alert_channel, on_call=(fast_lane or FastLane()).on_call,
        handoff=None)
    team.__dict__["calendar"] = calendar  # the very calendar given (a test's, with its holidays and workdays)
    return Teams.model_construct(default=SINGLE_TEAM, teams={SINGLE_TEAM: team}, routes=())


def parse(text: str, source: str = "teams file") -> Teams:
    """A teams file's text as `Teams`; a `TeamsFileError` naming the line and the team or row otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TeamsFileError(f"{source}: not valid TOML: {error}") from None
    try:
        return Teams.model_validate(data)
    except ValidationError as error:
        problems = [_where(text, problem["loc"], source) + ": " + _message(problem) for problem in error.errors()]
        raise TeamsFileError("\n".join(problems)) from None


def _where(text: str, loc: tuple, source: str) -> str:
    """`teams.toml line 12, [teams.sdr] daily_cap` for a place pydantic names as ("teams", "sdr", "daily_cap")."""
    loc = tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))
    lines = text.splitlines()
    if len(loc) >= 2 and loc[0] == "teams":
        header = f"[teams.{loc[1]}]"
        line = _line_of(lines, lambda s: s.startswith(header) or s.startswith(f"[teams.{loc[1]}."))
        rest = ".".join(str(p) for p in loc[2:])
        return f"{source}{f' line {line}' if line else ''}, team {loc[1]}" + (f": {rest}" if rest else "")
    if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
        starts = [number for number, s in enumerate(lines, 1) if s.strip() == "[[routes]]"]
        line = starts[loc[1]] if loc[1] < len(starts) else None
        rest = ".".join(str(p) for p in loc[2:])
        return f"{source}{f' line {line}' if line else ''}, routing row {loc[1] + 1}" + (f": {rest}" if rest else "")
    return f"{source}" + (f": {'.'.join(str(p) for p in loc)}" if loc else "")


def route_line(text: str, row: int) -> int | None:
    """The line of a teams file's text where routing row `row` (1-based) begins."""
    starts = [number for number, line in enumerate(text.splitlines(), 1) if line.strip() == "[[routes]]"]
    return starts[row - 1] if 0 < row <= len(starts) else None


def _line_of(lines: list[str], found) -> int | None:
    return next((number for number, line in enumerate(lines, 1) if found(line.strip())), None)


def _message(problem: dict) -> str:
    message = problem["msg"].removeprefix("Value error, ")
    return "not a setting a team has" if problem["type"] == "extra_forbidden" else message


def parse_hours(text: str) -> tuple[time, time]:
    try:
        opens, closes = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError("write business hours as HH:MM-HH:MM, e.g. 09:00-18:00") from None
    if opens >= closes:
        raise ValueError("business hours must open before they close")
    return opens, closes


def _duration(text: str, where: str) -> timedelta:
    match = _DURATION.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"{where}: write a business-time duration as 30m or 4h, not {text!r}")
    amount = float(match[1])
    if amount <= 0:
        raise ValueError(f"{where}: a duration must be more than zero")
    return timedelta(minutes=amount) if match[2] == "m" else timedelta(hours=amount)


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name like Europe/Berlin)") from None
    return name
