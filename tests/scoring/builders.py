"""Small builders so scoring tests read as trial stories: 'on day 4 at 15:00 she invited a teammate'."""

from __future__ import annotations

import itertools
import tomllib
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scoring import DEFAULT_RULES, PriorDisposition, Rules, ScoreResult, load_rules, parse_event, score_user

NY = ZoneInfo("America/New_York")
DEFAULT = load_rules()
_ids = itertools.count()


def rules_with(**changes: Any) -> Rules:
    """The default rules with dotted-path changes: rules_with(**{"tiers.qualify": 7})."""
    data = tomllib.loads(DEFAULT_RULES.read_text())
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return Rules.model_validate(data)


class Trial:
    """One trial user. Day 1 is the signup date in the team timezone (New York unless told)."""

    def __init__(
        self,
        user: str = "ana",
        *,
        email: str = "ana@acme.com",
        company: str | None = "Acme Corp",
        size: int | None = 800,
        signup: datetime = datetime(2026, 11, 2, 10, 0, tzinfo=NY),
        tz: ZoneInfo = NY,
        **props: Any,
    ) -> None:
        self.user, self.tz, self.signup = user, tz, signup
        self.events: list = []
        self.add("signup_complete", signup, email=email, company_name=company, company_size=size, **props)

    def on(self, day: int, hour: int = 15, minute: int = 0) -> datetime:
        """Local wall-clock time on trial day `day`."""
        date = self.signup.astimezone(self.tz).date() + timedelta(days=day - 1)
        return datetime.combine(date, time(hour, minute), tzinfo=self.tz)

    def add(self, name: str, when: datetime, **props: Any) -> Trial:
        raw = {
            "type": "track",
            "event": name,
            "userId": self.user,
            "timestamp": when.isoformat(),
            "messageId": f"m{next(_ids)}",
            "properties": {k: v for k, v in props.items() if v is not None},
        }
        self.events.append(parse_event(raw))
        return self

    # The seed's signals, by name.
    def activate(self, day: int, hour: int = 15) -> Trial:
        return self.add("activation_complete", self.on(day, hour))

    def invite(self, day: int, who: str = "bo@acme.com", hour: int = 15) -> Trial:
        return self.add("invite_sent", self.on(day, hour), invitee_email=who)

    def integrate(self, day: int, kind: str = "Snowflake", hour: int = 15) -> Trial:
        return self.add("integration_connected", self.on(day, hour), integration_type=kind)

    def view(self, day: int, path: str = "/pricing", hour: int = 15) -> Trial:
        return self.add("page_view", self.on(day, hour), page_path=path)

    def session(self, day: int, hour: int = 15) -> Trial:
        return self.add("session_start", self.on(day, hour))

    def score(
        self, at: datetime, rules: Rules | None = None, dispositions: tuple[PriorDisposition, ...] = ()
    ) -> ScoreResult:
        return score_user(self.events, rules or DEFAULT, at, tz=self.tz, dispositions=dispositions)


def sarah() -> Trial:
    """The seed's Sarah: signs up day 1; on day 5 activates, invites 2 teammates, connects dbt."""
    t = Trial("sarah", email="sarah@acme.com", company="Acme Corp", size=800, first_name="Sarah")
    t.activate(5, 10).invite(5, "li@acme.com", 11).invite(5, "raj@acme.com", 11).integrate(5, "dbt", 14)
    return t


def qualified_medium() -> Trial:
    """Activated, invites + integration on two days: 6 points, medium, qualified."""
    return Trial().activate(1).invite(2).integrate(2)
