"""`pqlbot serve`: the long-running process. Ingestion endpoints and the scheduled sweeps, under uvicorn."""

from __future__ import annotations

import argparse
import logging

from bot.settings import Settings


def add(commands: argparse._SubParsersAction, name: str) -> None:
    serve = commands.add_parser(name, help="run the HTTP endpoints and the scheduled sweeps")
    serve.add_argument("--host", help="listen address (default HOST)")
    serve.add_argument("--port", type=int, help="listen port (default PORT)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from bot import scheduler
    from bot.http import create_app
    from bot.pipeline import Pipeline
    from bot.store import open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipeline = Pipeline(open_store(settings.database_url), tz=settings.tz, rules_path=settings.pql_rules_file)
    token = settings.ingest_token.get_secret_value() if settings.ingest_token else None
    if not token:
        logging.getLogger("pqlbot").warning("INGEST_TOKEN is not set: /v1/track and /v1/batch answer 503")
    sweeps = scheduler.start(pipeline, rescore_every_hours=settings.rescore_every_hours)
    try:
        uvicorn.run(create_app(pipeline, token), host=args.host or settings.host, port=args.port or settings.port,
                    log_level="info", access_log=False)  # access logs would repeat what /v1 logs, minus the counts
    finally:
        sweeps.shutdown(wait=False)
    return 0
