"""`pqlbot serve`: the long-running process (see bot/web/server.py for what it runs), under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.cli.db import shown
from bot.settings import Settings
from bot.store.health import StoreUnusable, open_writable


def add(commands: argparse._SubParsersAction, name: str) -> None:
    serve = commands.add_parser(name, help="run Slack, the ingestion endpoints, the outbox and the sweeps")
    serve.add_argument("--host", help="listen address (default HOST)")
    serve.add_argument("--port", type=int, help="listen port (default PORT)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Exits 1 with one line saying why when the store cannot be opened or written: a server that could store
    nothing would only answer 503s. The store is opened before logging is set up, so that line is all it says
    (migrations at start are not logged; `pqlbot db upgrade` logs them)."""
    import uvicorn

    from bot.services.pipeline import for_team
    from bot.web import server

    try:
        engine = open_writable(settings.database_url)
    except StoreUnusable as error:
        print(f"pqlbot serve: {shown(settings.database_url)}: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    built = server.build(settings, pipeline=for_team(engine, settings))
    built.start_background()
    try:
        # access_log off: it would repeat what the endpoints log, minus the counts.
        uvicorn.run(built.web, host=args.host or settings.host, port=args.port or settings.port,
                    log_level="info", access_log=False)
    finally:
        built.stop_background()
    return 0
