"""`pqlbot serve`: the long-running process (see bot/web/server.py for what it runs), under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.cli.db import shown
from bot.settings import Settings
from bot.store.health import StoreUnusable, open_writable


def add(serve: argparse.ArgumentParser, name: str) -> None:
    serve.description = (
        "The long-running process: Slack (over HTTP at /slack/events, or Socket Mode when SLACK_APP_TOKEN is set), "
        "the ingestion endpoints (/v1/track, /v1/batch, ...) and /healthz, the outbox deliverer and the scheduled "
        "sweeps. At start it runs `pqlbot doctor`'s checks: a token Slack refuses stops it; other problems are logged.")
    serve.add_argument("--host", help="listen address (default HOST)")
    serve.add_argument("--port", type=int, help="listen port (default PORT)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Exits 1 with one line saying why when the store cannot be opened or written: a server that could store
    nothing would only answer 503s. The store is opened before logging is set up, so that line is all it says
    (migrations at start are not logged; `pqlbot db upgrade` logs them).

    Then `pqlbot doctor`'s checks (bot/doctor) run, the store's aside: a problem that waiting will not mend (a
    token Slack refuses, the example's INGEST_TOKEN) stops it with doctor's words, one line each; the others are
    logged as warnings, and one line says what it runs with. Slack unreachable does not stop it."""
    import uvicorn

    from bot import doctor
    from bot.services.pipeline import for_team
    from bot.slack.socket_mode import SocketModeRefused
    from bot.web import server

    try:
        engine = open_writable(settings.database_url)
    except StoreUnusable as error:
        print(f"pqlbot serve: {shown(settings.database_url)}: {error}", file=sys.stderr)
        return 1
    findings = doctor.examine(settings, checks=[c for c in doctor.CHECKS if c is not doctor.store])
    final = [f for f in doctor.problems(findings) if f.final]
    if final:
        for finding in final:
            print(f"pqlbot serve: {finding.what}: {finding.said}: {finding.fix}", file=sys.stderr)
        engine.dispose()
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("pqlbot")
    for finding in findings:
        if finding.ok is not True:
            log.warning("doctor: %s: %s%s", finding.what, finding.said, f" (fix: {finding.fix})" if finding.fix else "")
    log.info("serve: %s", doctor.summary(settings, findings))
    built = server.build(settings, pipeline=for_team(engine, settings), deliver_apart=True)
    try:
        built.start_background()
    except SocketModeRefused as refused:
        built.stop_background()
        print(f"pqlbot serve: {refused}", file=sys.stderr)
        return 1
    try:
        # access_log off: it would repeat what the endpoints log, minus the counts.
        uvicorn.run(built.web, host=args.host or settings.host, port=args.port or settings.port,
                    log_level="info", access_log=False)
    finally:
        built.stop_background()
    return 0
