"""Configuration from the environment and `.env`; `.env.example` documents every setting."""

from __future__ import annotations

import re
from datetime import date, time
from functools import cached_property, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.business_time import BusinessCalendar
from bot.domain.routing import FastLane
from bot.domain.teams import Teams, TeamsFileError, parse, parse_hours, single_team

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    pql_timezone: str = Field("America/New_York", description="The team's timezone (IANA name).")
    pql_rules_file: Path | None = Field(None, description="Scoring rules; the seed 002 model if unset.")
    product_name: str = Field("our product", description="Your product's name, as emails say it.")

    database_url: str = Field("sqlite:///pqlbot.db", description="SQLAlchemy URL of the store.")
    ingest_token: SecretStr | None = Field(None, description="Shared secret for the ingestion endpoints (/v1/*).")
    segment_shared_secret: SecretStr | None = Field(None, description="Segment Webhook destination's shared "
                                                    "secret: a request whose X-Signature it verifies is let in.")
    ingest_gather_ms: float = Field(10, ge=0, le=1000, description="Under a stream of ingestion calls, how long "
                                    "to wait for more before storing a group (0: store whatever is waiting).")
    host: str = Field("0.0.0.0", description="Address `pqlbot serve` listens on.")
    port: int = Field(3000, ge=1, le=65535, description="Port `pqlbot serve` listens on.")
    rescore_every_hours: float = Field(24, gt=0, description="How often everyone is rescored.")
    rescore_processes: int = Field(0, ge=0, description="Processes that share a full rescore of a big store "
                                   "(0: one per CPU, up to 4).")

    slack_bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-...).")
    slack_signing_secret: SecretStr | None = Field(None, description="Verifies requests come from Slack.")
    slack_app_token: SecretStr | None = Field(None, description="App-level token (xapp-...): Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL.")
    pql_alerts_channel: str = Field("#pql-alerts", description="Where PQL alerts are posted (name or id).")
    pql_reps: str = Field("", description="The roster: Slack user ids, comma-separated (U123:Ana Ruiz ...).")
    pql_manager: str | None = Field(None, description="The sales manager's Slack user id.")
    pql_daily_cap: int = Field(5, ge=1, description="New PQLs per rep per day.")
    pql_on_call: str | None = Field(None, description="The rep (a Slack user id in PQL_REPS) who takes fast-lane "
                                    "leads when nobody is in business hours.")
    pql_business_hours: str = Field("09:00-18:00", description="Business hours, Monday to Friday.")
    pql_holidays: str = Field("", description="Days off (YYYY-MM-DD, comma-separated).")
    pql_teams_file: Path | None = Field(None, description="Teams and the routing matrix (TOML, see "
                                        "examples/teams.toml); unset: PQL_REPS and friends form one SDR team.")
    pql_reassign_on_sla_miss: bool = Field(False, description="Reassign automatically when an SLA is missed.")

    pql_webhook_url: str | None = Field(None, description="Where the tracking-plan events (pql_triggered, "
                                        "pql_claimed, ...) are POSTed as Segment-shaped track calls; off if unset.")
    pql_webhook_secret: SecretStr | None = Field(None, description="Signs each webhook call (HMAC-SHA256, the "
                                                 "X-Pqlbot-Signature header).")
    hubspot_access_token: SecretStr | None = Field(None, description="A HubSpot private app's access token; the "
                                                   "HubSpot sync is off if unset.")
    hubspot_api_url: str = Field("https://api.hubapi.com", description="HubSpot's API base URL.")
    pql_rep_emails: str = Field("", description="Reps' work emails, to match them to HubSpot owners: "
                                "U123:ana@acme.com, comma-separated.")

    @property
    def rep_emails(self) -> dict[str, str]:
        """Slack user id -> work email, from PQL_REP_EMAILS."""
        pairs = (item.partition(":") for item in filter(None, (p.strip() for p in self.pql_rep_emails.split(","))))
        return {user.strip(): email.strip().lower() for user, _, email in pairs if email.strip()}

    @field_validator("pql_webhook_url")
    @classmethod
    def _webhook_url(cls, text: str | None) -> str | None:
        text = (text or "").strip() or None
        if text is not None and not re.match(r"https?://[^\s/]+", text):
            raise ValueError(f"PQL_WEBHOOK_URL {text!r} is not an http(s) URL")
        return text

    @model_validator(mode="after")
    def _webhook_signed(self) -> Settings:
        if self.pql_webhook_url and not self.pql_webhook_secret:
            raise ValueError("PQL_WEBHOOK_URL is set without PQL_WEBHOOK_SECRET: every call is signed, so set both")
        return self

    @property
    def sinks(self) -> frozenset[str]:
        """The integrations fed by the outbox: "webhook" and "hubspot", as configured."""
        return frozenset({"webhook"} if self.pql_webhook_url else set()) | \
            frozenset({"hubspot"} if self.hubspot_access_token else set())

    @field_validator("pql_business_hours")
    @classmethod
    def _hours(cls, text: str) -> str:
        parse_hours(text)  # the one reading of HH:MM-HH:MM, a team's hours' too
        return text

    @field_validator("pql_holidays")
    @classmethod
    def _holidays(cls, text: str) -> str:
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                date.fromisoformat(part)
            except ValueError:
                raise ValueError(f"holiday {part!r} is not a YYYY-MM-DD date") from None
        return text

    @field_validator("pql_on_call")
    @classmethod
    def _on_call_id(cls, text: str | None) -> str | None:
        text = (text or "").strip() or None
        if text is not None and not _SLACK_USER.fullmatch(text):
            raise ValueError(f"PQL_ON_CALL {text!r} is not a Slack user id (like U0123ABCD)")
        return text

    @model_validator(mode="after")
    def _on_call_on_roster(self) -> Settings:
        if self.pql_on_call and self.pql_on_call not in {user_id for user_id, _, _ in self.roster}:
            raise ValueError(f"PQL_ON_CALL {self.pql_on_call} is not in PQL_REPS: the on-call rep must be on "
                             "the roster")
        return self

    @model_validator(mode="after")
    def _teams_file_readable(self) -> Settings:
        if self.pql_teams_file is not None:
            _read_teams(self.pql_teams_file)  # a broken file is refused at start, not at the first lead
        return self

    @property
    def teams(self) -> Teams:
        """The teams and the routing matrix: PQL_TEAMS_FILE's, or one SDR team of PQL_REPS, PQL_MANAGER,
        PQL_DAILY_CAP, PQL_BUSINESS_HOURS, PQL_HOLIDAYS and PQL_ON_CALL."""
        if self.pql_teams_file is not None:
            return _read_teams(self.pql_teams_file)
        return single_team(self.calendar, cap=self.pql_daily_cap, manager=self.pql_manager,
                           fast_lane=self.fast_lane, alert_channel=self.pql_alerts_channel)

    @property
    def integrations_manager(self) -> str | None:
        """Who hears that the CRM or the webhook refuses pqlbot's changes or is down: PQL_MANAGER; with a teams file
        and no PQL_MANAGER, the default team's manager (the integrations are the whole company's, not a team's)."""
        return self.pql_manager or self.teams.team(None).manager

    @property
    def fast_lane(self) -> FastLane:
        """The fast lane's policy: never capped; out of hours, the on-call rep."""
        return FastLane(on_call=self.pql_on_call)

    @property
    def calendar(self) -> BusinessCalendar:
        opens, closes = (time.fromisoformat(part.strip()) for part in self.pql_business_hours.split("-"))
        days = frozenset(date.fromisoformat(p.strip()) for p in self.pql_holidays.split(",") if p.strip())
        return BusinessCalendar(self.tz, opens, closes, days)

    @property
    def roster(self) -> list[tuple[str, str | None, str | None]]:
        """(user id, name, timezone) per rep, from `U123` or `U123:Ana Ruiz` or `U123:Ana Ruiz:Europe/Berlin`; with a
        teams file, everyone on a team."""
        if self.pql_teams_file is not None:
            return self.teams.members()
        reps = []
        for item in filter(None, (part.strip() for part in self.pql_reps.split(","))):
            user_id, _, rest = item.partition(":")
            name, _, zone = rest.partition(":")
            reps.append((user_id.strip(), name.strip() or None, zone.strip() or None))
        return reps

    @field_validator("pql_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r} (use an IANA name like Europe/Berlin)") from None
        return name

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.pql_timezone)


def _read_teams(path: Path) -> Teams:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"PQL_TEAMS_FILE {path}: cannot be read ({error.strerror})") from None
    return _parsed(text, str(path))


@lru_cache(maxsize=8)
def _parsed(text: str, source: str) -> Teams:
    try:
        return parse(text, source)
    except TeamsFileError as error:
        raise ValueError(f"PQL_TEAMS_FILE {error}") from None
