"""The `pqlbot` command. Each sub-command lives in bot/cli/<name>.py: `add(parser, name)` and `run(args, settings)`.

Only the command being run is imported: `pqlbot --help` lists the commands from `COMMANDS` alone, and `pqlbot score`
loads the scorer but not Slack, the store or HubSpot, so a command answers before the libraries it does not use load.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Collection, Sequence

#: Sub-command name -> (module in bot/cli, what `pqlbot --help` says it does). One module may serve several names.
COMMANDS = {
    "demo": ("demo", "replay the bundled sample trial and show each PQL as it is raised (no Slack needed)"),
    "score": ("score", "score users from a JSON-lines events file, without a database"),
    "rules": ("score", "check a rules file and show what it means"),
    "ingest": ("ingest", "store events from a JSON-lines file and score the users they touch"),
    "rescore": ("ingest", "rescore every user in the store (holds expire, windows close, trial clocks move)"),
    "db": ("db", "the store's schema: upgrade it or show its revision"),
    "serve": ("serve", "run Slack, the ingestion endpoints, the outbox and the sweeps"),
    "review": ("review", "the weekly PQL review, or the 4-week pilot scorecard"),
    "tick": ("tick", "run every due sweep once (rescore, queue, escalations) and deliver the outbox once"),
    "owners": ("owners", "named-account owners: import them from a CSV file, or list them"),
    "crm": ("crm", "HubSpot: set it up, match owners, pull owners and firmographics"),
    "doctor": ("doctor", "check the configuration (store, rules, tokens, Slack, reps) and say how to fix what is "
                         "wrong"),
    "explain": ("explain", "show a stored user's verdict and reasons, and their lead's routing and SLA trail"),
    "example": ("example", "print the README's worked example (Sarah) as JSON lines dated for today"),
    "backtest": ("backtest", "replay a history through a rules file: per trigger, who converted, and the volume"),
}


def _parser(loaded: Collection[str] = COMMANDS) -> argparse.ArgumentParser:
    """The whole command line. The commands in `loaded` get their arguments (their module is imported); the others
    only their name and one line of help, which is all `pqlbot --help` shows of them."""
    parser = argparse.ArgumentParser(prog="pqlbot", description="Product-qualified leads, claimed and worked in Slack.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        command = commands.add_parser(name, help=summary)
        if name in loaded:
            importlib.import_module(f"bot.cli.{module}").add(command, name)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line: its first word that is not an option (`pqlbot` itself takes
    none with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


class _Version(argparse.Action):
    """`--version`, looked up only when asked for: reading the installed packages' metadata is most of what
    `pqlbot --help` would otherwise wait for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
                         help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"pqlbot {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pqlbot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(loaded={_command(argv)}).parse_args(argv)

    from pydantic import ValidationError

    from bot.settings import Settings
    from scoring import RulesError

    try:
        settings = Settings()
    except ValidationError as exc:
        if hasattr(args, "settings_failed"):
            return args.settings_failed(exc)
        first = exc.errors()[0]
        print(f"pqlbot: bad setting {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        status = args.run(args, settings)
        sys.stdout.flush()  # a reader that stopped early is found here rather than at exit
        return status
    except RulesError as exc:
        print(f"pqlbot: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of standard output stopped early (`pqlbot score FILE --all | head`): stop quietly, as other
    command-line tools do, rather than with a traceback. Exit 1, since not everything was printed."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes standard output again at exit
    return 1


if __name__ == "__main__":
    sys.exit(main())
