"""`pqlbot owners import FILE.csv` and `pqlbot owners list`: the named-account owners routing honours.

A lead whose email domain is a named account goes to that account's owner, cap or not, unless the owner is
paused or off the roster (bot/services/routing.py). The CSV has a header row and the columns `domain` and `rep` (a
Slack user id on the roster: PQL_REPS, or a team's members in PQL_TEAMS_FILE), plus an optional `company_name`. A
domain may be written as a CRM exports a company's website (`https://www.acme.com/`): its domain is stored.

    domain,rep,company_name
    acme.com,U0ANA,Acme Corp

Importing upserts: a domain already known gets the new owner. A line whose rep is not on the roster, whose
domain is not a domain, or whose domain was listed already is rejected with its line number; the others
are stored, and the command exits 1 so that a script notices.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass, field

import sqlalchemy as sa

from bot.cli.common import open_lines
from bot.cli.db import cannot_open
from bot.clock import utc_now
from bot.settings import Settings

_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
ACTOR = "pqlbot owners import"


def add(owners: argparse.ArgumentParser, name: str) -> None:
    owners.description = "Named accounts: their leads go to their owner, whatever the cap."
    actions = owners.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = actions.add_parser("import", help="store owners from a CSV file (domain,rep[,company_name])",
                              description="Upsert named-account owners from a CSV file with a header row: "
                                          "domain,rep (a Slack user id on the roster: PQL_REPS, or a team's "
                                          "members in PQL_TEAMS_FILE), optionally company_name. A domain may be a "
                                          "website (https://www.acme.com/): its domain is stored.")
    load.add_argument("file", metavar="FILE.csv", help="the CSV file, or - for standard input")
    load.set_defaults(run=run_import)
    actions.add_parser("list", help="show every named account and its owner",
                       description="Show every named account (domain, company) and the rep who owns it.").set_defaults(
        run=run_list)


@dataclass(slots=True)
class Row:
    line: int
    domain: str
    rep: str
    company_name: str | None


@dataclass(slots=True)
class Parsed:
    rows: list[Row] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def domain_of(text: str) -> str:
    """A company's domain as CRM exports write it: `acme.com`, `@acme.com`, `www.acme.com`, or its website,
    `https://www.acme.com/about`: `acme.com` each time (lower case; anything else is left for the check to refuse)."""
    domain = text.strip().lower().removeprefix("@")
    if "://" in domain:
        domain = domain.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        domain = domain.rsplit("@", 1)[-1].split(":", 1)[0]  # user:password@ and :port are not the domain
    elif "@" not in domain:
        domain = domain.split("/", 1)[0]
    return domain.removeprefix("www.")


def parse(stream, roster: set[str], roster_from: str = "PQL_REPS") -> Parsed:  # noqa: ANN001 (a text stream)
    """The file's valid rows, and (line number, why) for the others. Raises ValueError for a bad header.
    `roster_from`: the setting the roster comes from, as a rejection names it."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise ValueError("the file is empty (it needs a header row: domain,rep)")
    columns = [name.strip().lower().lstrip("\ufeff") for name in header]
    missing = [name for name in ("domain", "rep") if name not in columns]
    if missing:
        raise ValueError(f"the header row has no {' or '.join(missing)} column (it needs domain,rep)")
    at = {name: columns.index(name) for name in ("domain", "rep", "company_name") if name in columns}
    parsed, seen = Parsed(), {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        cells = {name: row[index].strip() if index < len(row) else "" for name, index in at.items()}
        domain = domain_of(cells["domain"])
        rep = cells["rep"].removeprefix("<@").removesuffix(">").split("|", 1)[0].strip()
        if not domain:
            parsed.rejected.append((line, "no domain"))
        elif "@" in domain or not _DOMAIN.fullmatch(domain):
            parsed.rejected.append((line, f"{domain!r} is not a domain (write it like acme.com)"))
        elif not rep:
            parsed.rejected.append((line, f"no rep for {domain}"))
        elif rep not in roster:
            parsed.rejected.append((line, f"{rep} is not a rep on the roster ({roster_from}); {domain} not stored"))
        elif domain in seen:
            parsed.rejected.append((line, f"{domain} is listed already on line {seen[domain]}; this line ignored"))
        else:
            seen[domain] = line
            parsed.rows.append(Row(line, domain, rep, cells.get("company_name") or None))
    return parsed


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError

    from bot.services import audit, leads
    from bot.store import open_store, session
    from bot.store.models import Account

    roster = {user_id for user_id, _, _ in settings.roster}  # what the reps table is synced to below
    roster_from = "PQL_TEAMS_FILE" if settings.pql_teams_file is not None else "PQL_REPS"
    try:
        with open_lines(args.file) as stream:
            parsed = parse(stream, roster, roster_from)
    except OSError as exc:
        print(f"pqlbot owners: {exc.strerror}: {args.file}", file=sys.stderr)
        return 2
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        print(f"pqlbot owners: {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        engine = open_store(settings.database_url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("owners", settings.database_url, exc)
    new = changed = same = 0
    now = utc_now()
    try:
        with session(engine) as db, db.begin():
            leads.sync_roster(db, settings.roster, now=now)
            db.flush()  # the reps exist before accounts point at them
            for row in parsed.rows:
                account = db.get(Account, row.domain)
                previous = account.owner_rep_id if account else None
                if account is None:
                    db.add(Account(domain=row.domain, company_name=row.company_name, owner_rep_id=row.rep))
                    new += 1
                else:
                    company = row.company_name or account.company_name
                    if (account.owner_rep_id, account.company_name) == (row.rep, company):
                        same += 1
                        continue
                    account.owner_rep_id, account.company_name = row.rep, company
                    changed += 1
                if previous != row.rep:
                    audit.record(db, "account_owner_set", at=now, actor=ACTOR, domain=row.domain, rep=row.rep,
                                 previous=previous)
    finally:
        engine.dispose()
    for line, why in parsed.rejected:
        print(f"line {line}: {why}", file=sys.stderr)
    if not roster:
        fix = "give the teams members in PQL_TEAMS_FILE" if roster_from != "PQL_REPS" else "set PQL_REPS"
        print(f"pqlbot owners: nobody is on the roster: {fix} first", file=sys.stderr)
    print(f"owners: {new} new, {changed} changed, {same} unchanged; {len(parsed.rejected)} line(s) rejected")
    return 1 if parsed.rejected else 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError
    from sqlmodel import select

    from bot.store import open_store, session
    from bot.store.models import Account, Rep

    try:
        engine = open_store(settings.database_url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("owners", settings.database_url, exc)
    try:
        with session(engine) as db:
            accounts = list(db.exec(select(Account).where(Account.owner_rep_id.is_not(None)).order_by(Account.domain)))
            reps = {rep.id: rep for rep in db.exec(select(Rep))}
    finally:
        engine.dispose()
    if not accounts:
        print("no named accounts yet: `pqlbot owners import FILE.csv` adds them")
        return 0
    listed = {user_id for user_id, _, _ in settings.roster}
    rows = [("domain", "company", "owner", "")]
    for account in accounts:
        rep = reps.get(account.owner_rep_id)
        owner = f"{rep.name} ({rep.id})" if rep and rep.name else account.owner_rep_id
        if account.owner_rep_id not in listed:
            note = "off the roster: round-robin instead"
        elif rep is not None and rep.paused:
            note = "paused: round-robin meanwhile"
        else:
            note = ""
        rows.append((account.domain, account.company_name or "", owner, note))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [value.ljust(width) for value, width in zip(row[:3], widths, strict=True)] + [row[3]]
        print("  ".join(cells).rstrip())
    print(f"{len(accounts)} named account(s)")
    return 0

