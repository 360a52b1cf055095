"""`pqlbot serve`: the long-running process (see bot/web/server.py for what it runs), under uvicorn."""

from __future__ import annotations

import argparse
import logging

from bot.settings import Settings


def add(commands: argparse._SubParsersAction, name: str) -> None:
    serve = commands.add_parser(name, help="run Slack, the ingestion endpoints, the outbox and the sweeps")
    serve.add_argument("--host", help="listen address (default HOST)")
    serve.add_argument("--port", type=int, help="listen port (default PORT)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from bot.web import server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    built = server.build(settings)
    built.start_background()
    try:
        # access_log off: it would repeat what the endpoints log, minus the counts.
        uvicorn.run(built.web, host=args.host or settings.host, port=args.port or settings.port,
                    log_level="info", access_log=False)
    finally:
        built.stop_background()
    return 0
