"""`pqlbot crm setup | owners | pull | retry`: connecting HubSpot, and the integrations' failed changes.

- setup: make the pql_* properties (score, tier, status, signals, triggered at, disposition) on HubSpot's contacts
  and companies, in a "pqlbot" group; running it again makes nothing.
- owners: which HubSpot owner each rep is (matched by PQL_REP_EMAILS), which reps match none, which owners no rep.
- pull: companies' owners become named-account owners; contacts' and companies' size and industry reach scoring
  (bot/integrations/pull.py).
- retry: queue again the webhook's and HubSpot's changes that failed for good (after the token, scopes or URL were
  fixed); they go out in their original order.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from bot.cli.db import cannot_open
from bot.clock import utc_now
from bot.settings import Settings


def add(crm: argparse.ArgumentParser, name: str) -> None:
    crm.description = "Connect HubSpot (HUBSPOT_ACCESS_TOKEN) and look after the CRM sync."
    actions = crm.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, run, text in (
            ("setup", run_setup, "Make the pql_* properties on HubSpot contacts and companies (idempotent: run it "
                                 "again after an upgrade)."),
            ("owners", run_owners, "Show which HubSpot owner each rep is (matched by PQL_REP_EMAILS), the reps with no "
                                   "owner and the owners with no rep."),
            ("pull", run_pull, "Read companies' owners as named-account owners, and contacts' and companies' size and "
                               "industry as firmographics (the users are rescored)."),
            ("retry", run_retry, "Queue again, in their order, the CRM and webhook changes that failed for good "
                                 "(after fixing what refused them).")):
        actions.add_parser(action, help=text[0].lower() + text[1:].rstrip("."), description=text).set_defaults(run=run)


def _hub(settings: Settings):  # noqa: ANN202
    from bot.integrations.hubspot import HubSpot

    if not settings.hubspot_access_token:
        print("pqlbot crm: HUBSPOT_ACCESS_TOKEN is not set (a HubSpot private app's token: see the README)",
              file=sys.stderr)
        return None
    return HubSpot.from_settings(settings)


def _failed(error: Exception) -> int:
    from bot.integrations.errors import TryLater, WontHeal

    if isinstance(error, WontHeal | TryLater):
        print(f"pqlbot crm: HubSpot refused ({error.code})" if isinstance(error, WontHeal)
              else f"pqlbot crm: HubSpot did not answer ({error.code}); try again later", file=sys.stderr)
        return 1
    raise error


def run_setup(args: argparse.Namespace, settings: Settings) -> int:
    hub = _hub(settings)
    if hub is None:
        return 2
    try:
        made = hub.setup()
    except Exception as error:  # noqa: BLE001 (mapped to a sentence, or raised again)
        return _failed(error)
    print(f"made {len(made)} propert{'y' if len(made) == 1 else 'ies'}: {', '.join(made)}" if made
          else "HubSpot has every pql_* property already: nothing to do")
    return 0


def run_owners(args: argparse.Namespace, settings: Settings) -> int:
    from bot.integrations.pull import match

    hub = _hub(settings)
    if hub is None:
        return 2
    try:
        owners = hub.owners(fresh=True)
    except Exception as error:  # noqa: BLE001
        return _failed(error)
    names = {user_id: name for user_id, name, _ in settings.roster}
    matched = match(owners, settings.rep_emails, list(names))
    for rep, owner in matched.reps.items():
        print(f"{names[rep] or rep} ({rep}) -> {owner.name} <{owner.email}> (owner {owner.id})")
    for rep, email in matched.unmatched:
        why = f"no HubSpot owner has {email}" if email else "no email in PQL_REP_EMAILS"
        print(f"{names[rep] or rep} ({rep}): unmatched, {why}")
    for owner in matched.spare:
        print(f"owner {owner.name} <{owner.email}> (owner {owner.id}): no rep")
    print(f"{len(matched.reps)} matched, {len(matched.unmatched)} rep(s) unmatched, {len(matched.spare)} owner(s) "
          "with no rep")
    return 0


def run_pull(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError

    from bot.integrations.pull import pull
    from bot.services.pipeline import for_team
    from bot.store import open_store

    hub = _hub(settings)
    if hub is None:
        return 2
    try:
        engine = open_store(settings.database_url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("crm", settings.database_url, exc)
    try:
        pipeline = for_team(engine, settings)
        pulled = pull(hub, pipeline, rep_emails=settings.rep_emails,
                      roster=[user_id for user_id, _, _ in settings.roster], now=utc_now())
    except Exception as error:  # noqa: BLE001
        return _failed(error)
    finally:
        engine.dispose()
    print(f"named accounts set: {pulled.named}; companies owned by no rep on the roster: {pulled.unowned}; "
          f"users with firmographics from HubSpot: {pulled.identified}")
    return 0


def run_retry(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError

    from bot.integrations.delivery import retry_failed
    from bot.store import open_store

    try:
        engine = open_store(settings.database_url)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        return cannot_open("crm", settings.database_url, exc)
    try:
        count = retry_failed(engine, now=utc_now())
    finally:
        engine.dispose()
    print(f"{count} change(s) queued again; `pqlbot serve` sends them")
    return 0
