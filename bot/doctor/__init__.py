"""`pqlbot doctor`: the configuration as `pqlbot serve` would use it, checked line by line, each with its fix.

Each check is a small function in `CHECKS`: it takes the `Look` (the settings, and what earlier checks found
out, such as whether the Slack token works) and yields `Finding`s. To check something new (a teams file, a
CRM token), write one more function and append it to `CHECKS`.

A finding is fine (`ok`), a problem (`ok` False: `doctor` exits 1), or not known (`ok` None: Slack could not
be reached, so what depends on it was not checked; not a problem of the configuration). A problem that will
not go away by waiting (`final`: an invalid token, the example's ingestion token) stops `pqlbot serve` at
start with the same words; the others are logged and `serve` runs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import SecretStr

from bot.settings import Settings
from bot.slack.gateway import BAD_TOKEN, FAILURES, Gateway, error_code, make_client

if TYPE_CHECKING:
    from scoring import Rules

#: The bot scopes manifest.yml asks for (tests/slack/test_manifest.py keeps the two equal).
BOT_SCOPES = frozenset({"channels:history", "chat:write", "commands", "files:write", "groups:history", "im:write",
                        "users:read"})
#: The example values .env.example ships: copied as they are, they are not secrets.
EXAMPLE_VALUES = {"change-me-to-a-long-random-string", "xoxb-your-bot-token", "your-signing-secret",
                  "xapp-your-app-token"}
#: How long one check may wait for Slack, in seconds, and how often it retries a 5xx or dropped connection.
SLACK_TIMEOUT, SLACK_RETRIES = 5, 1


@dataclass(frozen=True)
class Finding:
    ok: bool | None  # True: fine; False: a problem; None: could not be checked (Slack unreachable)
    what: str  # the setting or the part ("store", "SLACK_BOT_TOKEN")
    said: str  # what was found, in one line
    fix: str = ""  # what to do about it
    final: bool = False  # a problem that stops `pqlbot serve`

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "??  "}[self.ok]
        text = f"{mark}  {self.what}: {self.said}"
        return text + (f"\n      fix: {self.fix}" if self.fix and self.ok is not True else "")


@dataclass
class Look:
    """What the checks share: the settings, and the answers of the Slack calls made so far."""

    settings: Settings
    gateway: Gateway | None = None
    slack_ok: bool | None = None  # the bot token works (True), does not (False), Slack unreachable (None)
    scopes: frozenset[str] = frozenset()
    rules: Rules | None = None  # the rules in use, once `rules` has read them (None: they do not load)

    def slack(self) -> Gateway:
        if self.gateway is None:
            token = self.settings.slack_bot_token
            self.gateway = Gateway(make_client(token.get_secret_value() if token else None,
                                               self.settings.slack_api_url, max_retries=SLACK_RETRIES,
                                               backoff=0.2, timeout=SLACK_TIMEOUT))
        return self.gateway


Check = Callable[[Look], Iterable[Finding]]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def shown_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)


# -- the checks, in the order they are shown ---------------------------------------------------------------------

def store(look: Look) -> Iterator[Finding]:
    """Reachable, writable (one real write, as /healthz does) and at the newest schema revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.store import MIGRATIONS, make_engine
    from bot.store.health import probe, why

    url = look.settings.database_url
    shown = shown_url(url)
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        yield Finding(False, "DATABASE_URL", f"{shown} is not a database URL", "write it as sqlite:///pqlbot.db or "
                      "postgresql+psycopg://user:password@host:5432/name", final=True)
        return
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path not in (None, "", ":memory:") and not Path(path).exists():
        folder = Path(path).resolve().parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            yield Finding(True, "store", f"{shown}: no database yet; `pqlbot serve` (or `pqlbot db upgrade`) "
                          "creates it")
        else:
            yield Finding(False, "store", f"{shown}: its folder {folder} does not exist or cannot be written",
                          "create the folder, or point DATABASE_URL somewhere writable", final=True)
        return
    try:
        engine = make_engine(url)
    except (sa.exc.SQLAlchemyError, OSError) as error:
        yield Finding(False, "store", f"{shown} cannot be opened: {why(error)}", "check DATABASE_URL", final=True)
        return
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
        health = probe(engine) if revision == head else None  # the probe writes a row of the schema
    except (sa.exc.SQLAlchemyError, OSError) as error:
        yield Finding(False, "store", f"{shown} is unreachable: {why(error)}",
                      "check DATABASE_URL, and that the database server is up and lets this host in", final=True)
        return
    finally:
        engine.dispose()
    if health is not None and not health.ok:
        yield Finding(False, "store", f"{shown}: {health.reason}", "free some space, or make the store writable",
                      final=True)
    elif revision != head:
        yield Finding(False, "store", f"{shown} is at schema revision {revision or 'none (empty)'}, the newest is "
                      f"{head}", "run `pqlbot db upgrade` (`pqlbot serve` also migrates it at start)")
    else:
        yield Finding(True, "store", f"{shown}: reachable, writable, schema {head} (the newest)")


def rules(look: Look) -> Iterator[Finding]:
    from scoring import RulesError, load_rules
    from scoring.rules import suspect_event_names

    path = look.settings.pql_rules_file
    try:
        loaded = load_rules(path)
    except RulesError as error:
        yield Finding(False, "PQL_RULES_FILE", str(error), "fix the file; `pqlbot rules check FILE` says what it "
                      "means once it is valid", final=True)
        return
    look.rules = loaded
    where = str(path) if path else "the shipped seed 002 model (scoring/default_rules.toml)"
    suspects = suspect_event_names(loaded)
    note = (f"; {len(suspects)} event name{'s' * (len(suspects) != 1)} to look at "
            f"({', '.join(repr(name) for _, name, _ in suspects)}): `pqlbot rules check` says why" if suspects else "")
    yield Finding(True, "rules", f"{where}: valid, {len(loaded.signals)} signals, {len(loaded.triggers)} triggers"
                  + note)


def routing(look: Look) -> Iterator[Finding]:
    """The routing matrix against the rules in use: a row names triggers by name, and one the rules do not have (a
    typo, or a trigger retired since) never matches, so the leads it was meant for go on down the matrix."""
    from bot.domain.teams import route_line

    settings = look.settings
    teams = settings.teams
    if not teams.routes or settings.pql_teams_file is None or look.rules is None:
        return  # no matrix; or rules that do not load, which `rules` says
    known = look.rules.triggers
    unknown = teams.unknown_triggers(known)
    text = settings.pql_teams_file.read_text(encoding="utf-8") if unknown else ""
    for row, name in unknown:
        line = route_line(text, row)
        close = difflib.get_close_matches(name, sorted(known), n=1)
        yield Finding(False, f"PQL_TEAMS_FILE {settings.pql_teams_file}{f' line {line}' if line else ''}, routing row "
                      f"{row}", f"names the trigger {name!r}, which the rules do not have: the row never matches it",
                      (f"did you mean {close[0]!r}? " if close else "") + "`pqlbot rules` lists the rules' triggers")
    if not unknown:
        rows = len(teams.routes)
        yield Finding(True, "routing matrix", f"{rows} row{'s' * (rows != 1)}, first match wins, then the team "
                      f"{teams.default}; every trigger it names is in the rules")


def ingest_token(look: Look) -> Iterator[Finding]:
    token, shared = _secret(look.settings.ingest_token), _secret(look.settings.segment_shared_secret)
    make = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
    if token in EXAMPLE_VALUES:
        yield Finding(False, "INGEST_TOKEN", "is the example value from .env.example, which anyone can read",
                      f"set it to a long random string: {make}", final=True)
    elif token is not None and len(token) < 16:
        yield Finding(False, "INGEST_TOKEN", f"is {len(token)} characters: too short to be a secret",
                      f"use 16 characters or more: {make}")
    elif token is None and shared is None:
        yield Finding(False, "INGEST_TOKEN", "not set (nor SEGMENT_SHARED_SECRET): the ingestion endpoints refuse "
                      "every event (503)", f"set INGEST_TOKEN to a long random string: {make}")
    else:
        yield Finding(True, "INGEST_TOKEN" if token else "SEGMENT_SHARED_SECRET", "set")


def business_time(look: Look) -> Iterator[Finding]:
    """Settings() has parsed them already; this says what they mean, so a typo in a date shows."""
    settings = look.settings
    teams = settings.teams
    if not teams.is_single:  # each team keeps its own hours (PQL_TEAMS_FILE)
        for team in teams.teams.values():
            days = [day.isoformat() for day in sorted(team.holidays)]
            yield Finding(True, f"team {team.name}", f"{team.business_hours} Monday to Friday, {team.timezone}"
                          + (f"; holidays {', '.join(days)}" if days else "; no holidays")
                          + f"; {len(team.members or ())} member{'' if len(team.members or ()) == 1 else 's'}, "
                          f"cap {team.daily_cap}")
        return
    days = sorted(d.strip() for d in settings.pql_holidays.split(",") if d.strip())
    yield Finding(True, "business hours", f"{settings.pql_business_hours} Monday to Friday, {settings.pql_timezone}"
                  + (f"; holidays {', '.join(days)}" if days else "; no holidays"))


def slack_token(look: Look) -> Iterator[Finding]:
    token = _secret(look.settings.slack_bot_token)
    if token is None:
        look.slack_ok = False
        yield Finding(True, "Slack", "off (SLACK_BOT_TOKEN is not set): events are scored and leads kept, no alerts "
                      "are sent; they wait in the outbox until Slack is configured")
        return
    if token in EXAMPLE_VALUES:
        look.slack_ok = False
        yield Finding(False, "SLACK_BOT_TOKEN", "is the example value from .env.example",
                      "paste the Bot User OAuth Token (OAuth & Permissions in your app's settings at "
                      "api.slack.com/apps, xoxb-...)", final=True)
        return
    try:
        user_id, team, look.scopes = look.slack().whoami()
    except FAILURES as error:
        code = error_code(error)
        if code in BAD_TOKEN:
            look.slack_ok = False
            yield Finding(False, "SLACK_BOT_TOKEN", f"Slack refuses it ({code})", "paste the current Bot User OAuth "
                          "Token from OAuth & Permissions at api.slack.com/apps (reinstalling the app changes it)",
                          final=True)
        else:
            look.slack_ok = None
            yield Finding(None, "Slack", f"unreachable at {look.settings.slack_api_url} ({code}): not checked",
                          "check this host reaches Slack (a proxy, a firewall); try again later")
        return
    look.slack_ok = True
    yield Finding(True, "SLACK_BOT_TOKEN", f"valid: the bot is {user_id} in the workspace {team}")


def slack_scopes(look: Look) -> Iterator[Finding]:
    if look.slack_ok is not True:
        return
    missing = sorted(BOT_SCOPES - look.scopes)
    if missing:
        yield Finding(False, "Slack scopes", f"the bot token lacks {', '.join(missing)}",
                      "add them under OAuth & Permissions (or create the app again from manifest.yml), then "
                      "reinstall the app to the workspace")
    else:
        yield Finding(True, "Slack scopes", "every scope manifest.yml asks for")


def alerts_channel(look: Look) -> Iterator[Finding]:
    if look.slack_ok is not True:
        return
    channel = look.settings.pql_alerts_channel
    gateway = look.slack()
    if gateway.channel_id(channel) is None:
        yield Finding(False, "PQL_ALERTS_CHANNEL", f"{channel} is a name: whether the bot is in it cannot be "
                      "checked, and a lost answer cannot be looked up before an alert is sent again",
                      "set the channel's id (C0123456789: the channel's details, at the bottom)")
        return
    try:
        gateway.can_read(channel)
    except FAILURES as error:
        code = error_code(error)
        fixes = {"not_in_channel": f"invite the bot: /invite @pqlbot in {channel}",
                 "channel_not_found": "check the id; for a private channel, invite the bot first",
                 "missing_scope": "add channels:history and groups:history, then reinstall the app"}
        yield Finding(None if code not in fixes else False, "PQL_ALERTS_CHANNEL", f"{channel}: {code}",
                      fixes.get(code, "try again later"))
        return
    yield Finding(True, "PQL_ALERTS_CHANNEL", f"{channel}: the bot is in it")


def signing_secret(look: Look) -> Iterator[Finding]:
    settings = look.settings
    if not settings.slack_bot_token:
        return
    if settings.slack_app_token:
        yield Finding(True, "Slack requests", "Socket Mode (SLACK_APP_TOKEN): no public URL needed")
        return
    secret = _secret(settings.slack_signing_secret)
    if not secret or secret in EXAMPLE_VALUES:
        yield Finding(False, "SLACK_SIGNING_SECRET", "not set" if not secret else "is the example value",
                      "paste the Signing Secret from Basic Information at api.slack.com/apps: without it every "
                      "click and slash command is refused (401)")
        return
    yield Finding(True, "Slack requests", f"over HTTP at /slack/events on port {settings.port}, signed; Slack must "
                  "reach it at a public HTTPS URL (README: Receiving Slack's requests)")


def people(look: Look) -> Iterator[Finding]:
    settings = look.settings
    roster = settings.roster
    if not roster:
        yield Finding(False, "PQL_REPS", "nobody: every lead waits in the queue",
                      "list the reps' Slack user ids (U0123ABCD, the profile's ⋮ menu: Copy member ID)")
    teams = settings.teams
    named = [(user_id, "PQL_REPS" if teams.is_single else "PQL_TEAMS_FILE") for user_id, _, _ in roster]
    if not teams.is_single:  # each team's escalations go to its own target, a manager or a channel
        for team in teams.teams.values():
            if team.manager:
                named.append((team.manager, f"team {team.name} escalate_to"))
            elif not team.escalate_to:
                yield Finding(False, f"team {team.name}", "no escalate_to: its missed SLAs and fast-lane leads nobody "
                              "can take go unescalated", "set escalate_to (a manager's Slack id or a channel) in "
                              "its [teams.NAME] table")
    elif settings.pql_manager:
        named.append((settings.pql_manager, "PQL_MANAGER"))
    else:
        yield Finding(False, "PQL_MANAGER", "not set: missed SLAs and fast-lane leads nobody can take go unescalated",
                      "set the sales manager's Slack user id")
    if look.slack_ok is not True:
        return
    gateway = look.slack()
    for user_id, setting in named:
        try:
            name, deactivated = gateway.user(user_id)
        except FAILURES as error:
            code = error_code(error)
            if code == "user_not_found":
                yield Finding(False, setting, f"{user_id} is no one in this workspace",
                              "copy the member ID from their Slack profile (⋮ menu)")
            elif code == "missing_scope":
                yield Finding(False, setting, f"{user_id} cannot be looked up (missing_scope)",
                              "add users:read, then reinstall the app")
                return
            else:
                yield Finding(None, setting, f"{user_id}: not checked ({code})", "try again later")
            continue
        if deactivated:
            yield Finding(False, setting, f"{user_id} ({name}) is deactivated", f"remove {user_id} from {setting}")
        else:
            yield Finding(True, setting, f"{user_id} is {name}")


def socket_mode(look: Look) -> Iterator[Finding]:
    token = _secret(look.settings.slack_app_token)
    if token is None or not look.settings.slack_bot_token or look.slack_ok is None:
        return
    if not token.startswith("xapp-") or token in EXAMPLE_VALUES:
        yield Finding(False, "SLACK_APP_TOKEN", "is not an app-level token (xapp-...)" if token not in EXAMPLE_VALUES
                      else "is the example value", "generate one with connections:write under Basic Information: "
                      "App-Level Tokens, and turn Socket Mode on", final=True)
        return
    try:
        look.slack().socket_url(token)
    except FAILURES as error:
        code = error_code(error)
        if code in BAD_TOKEN:
            yield Finding(False, "SLACK_APP_TOKEN", f"Slack refuses it ({code})", "generate a new App-Level Token "
                          "with connections:write (Basic Information) and turn Socket Mode on", final=True)
        else:
            yield Finding(None, "SLACK_APP_TOKEN", f"not checked ({code})", "try again later")
        return
    yield Finding(True, "SLACK_APP_TOKEN", "valid: Socket Mode can connect")


#: Every check, in the order `pqlbot doctor` shows them. Append yours.
CHECKS: list[Check] = [store, rules, ingest_token, business_time, routing, slack_token, slack_scopes,
                       alerts_channel, signing_secret, people, socket_mode]


def examine(settings: Settings, *, checks: Iterable[Check] | None = None,
            gateway: Gateway | None = None) -> list[Finding]:
    """Every check's findings, in order."""
    look = Look(settings, gateway=gateway)
    return [finding for check in (CHECKS if checks is None else checks) for finding in check(look)]


def problems(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.ok is False]


def summary(settings: Settings, findings: list[Finding]) -> str:
    """One line: what `pqlbot serve` is about to run with (mode, channel, store, people, rules), and how many
    problems the checks found."""
    if not settings.slack_bot_token:
        slack = "Slack off"
    elif settings.slack_app_token:
        slack = f"Slack in Socket Mode, alerts to {settings.pql_alerts_channel}"
    else:
        slack = f"Slack over HTTP at /slack/events, alerts to {settings.pql_alerts_channel}"
    reps = len(settings.roster)
    teams = settings.teams
    if not teams.is_single:  # each team's escalate_to hears of its escalations: PQL_MANAGER is not the point
        count = len(teams.teams)
        manager = f"{count} team{'s' * (count != 1)} ({', '.join(teams.teams)})"
    else:
        manager = "a manager" if settings.pql_manager else "no manager"
    rules_file = str(settings.pql_rules_file) if settings.pql_rules_file else "the default rules"
    found = problems(findings)
    unknown = sum(1 for f in findings if f.ok is None)
    told = (f"{len(found)} problem{'s' * (len(found) != 1)} ({', '.join(f.what for f in found)})" if found
            else "no problems") + (f", {unknown} not checked" if unknown else "")
    return (f"{slack}; store {shown_url(settings.database_url)}; {reps} rep{'s' * (reps != 1)} and {manager}; "
            f"{rules_file}; doctor: {told}")
