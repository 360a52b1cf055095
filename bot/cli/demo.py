"""`pqlbot demo`: replay the bundled sample's two weeks through the pipeline and watch PQLs appear."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.settings import Settings


def add(demo: argparse.ArgumentParser, name: str) -> None:
    demo.description = ("Stream two weeks of sample product events into a fresh SQLite store, rescoring as they "
                        "arrive, and show every PQL with the alert Slack would get.")
    demo.add_argument("--dir", type=Path, default=Path("pqlbot-demo"),
                      help="working folder, wiped and recreated each run (default ./pqlbot-demo)")
    demo.add_argument("--fast", action="store_true", help="no pauses between PQLs")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import replay as demo

    try:
        return demo.run(args.dir, settings, fast=args.fast)
    except demo.FolderInUse as exc:
        print(f"pqlbot demo: {exc}", file=sys.stderr)
        return 2
