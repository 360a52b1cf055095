"""The `pqlbot` command. Each sub-command lives in bot/cli/<name>.py: `add(parser)` and `run(args, settings)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.settings import Settings
from scoring import RulesError

#: Sub-command name -> module in bot.commands (one module may serve several names).
COMMANDS = {
    "demo": "demo",
    "score": "score",
    "rules": "score",
    "ingest": "ingest",
    "rescore": "ingest",
    "db": "db",
    "serve": "serve",
    "review": "review",
    "tick": "tick",
    "owners": "owners",
    "crm": "crm",
    "doctor": "doctor",
    "explain": "explain",
    "example": "example",
    "backtest": "backtest",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pqlbot", description="Product-qualified leads, claimed and worked in Slack.")
    parser.add_argument("--version", action="version", version=f"pqlbot {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module(f"bot.cli.{module}").add(commands, name)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pqlbot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        if hasattr(args, "settings_failed"):
            return args.settings_failed(exc)
        first = exc.errors()[0]
        print(f"pqlbot: bad setting {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        return args.run(args, settings)
    except RulesError as exc:
        print(f"pqlbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
