"""Two revisions of one command, alternated on the bench's file: is a change faster, and does it print the same?

    .venv/bin/python bench/ab.py BEFORE [AFTER] [--command score|backtest] [--pairs 3]
    # e.g. this working tree against the commit before it:
    .venv/bin/python bench/ab.py HEAD~1

On this VM the speed of one core moves by a third within minutes (docs/reliability.md, the fifth session's
figures), so a figure from one run, or two runs minutes apart, cannot show a change of 10 %. This runs the
command as users run it (the installed `pqlbot`'s Python, `bot.cli.main`, in a child process) at BEFORE and at
AFTER (a git revision; none: this working tree), alternately, `--pairs` times, starting with BEFORE, and prints
each pair's wall and CPU seconds (the child's and its processes', from `os.wait4`), the ratio after/before of each
pair, the median ratio, and in how many pairs AFTER was faster. A revision other than the working tree is checked
out in a temporary git worktree under bench/.data/ (removed at the end), with the working tree's bench/.data.

Each run's output is compared with the first run's of the same revision and with the other revision's: a change
that prints something else says so (for a speed change, the same output is the point).

Commands, on `bench/score.py`'s events file (written there first, in a child process, if missing):
- score: `pqlbot score --json FILE --at 2026-11-22T09:00:00-05:00` (what `bench/score.py` times);
- backtest: `pqlbot backtest FILE --capacity 10 --cap 5 --json` on `bench/backtest.py`'s file (what it times).
Both with `PQL_TIMEZONE=America/New_York` and no other pqlbot setting.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / ".data"
sys.path.insert(0, str(ROOT))  # run from anywhere, installed or not

from bench import backtest, score  # noqa: E402 - after the path is set

_SEED = 7  # the benches' default

_MAIN = "import sys; from bot.cli import main; sys.exit(main())"


def _file(command: str) -> Path:
    """The events file the command reads, made first when missing (as the bench that owns it makes it)."""
    events = score.events_file(score.DEFAULT_USERS, score.DEFAULT_EVENTS, _SEED)
    return events if command == "score" else backtest.derive(events, _SEED)


def _argv(command: str, path: Path) -> list[str]:
    if command == "score":
        return ["score", "--json", str(path), "--at", score.AT.isoformat()]
    return ["backtest", str(path), "--capacity", "10", "--cap", "5", "--json"]


def _checkout(revision: str | None, made: list[Path]) -> Path:
    """The source tree of `revision`: this working tree for None, else a temporary worktree of it."""
    if revision is None:
        return ROOT
    place = Path(tempfile.mkdtemp(prefix="ab-", dir=DATA))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(place), revision],
                   check=True, capture_output=True)
    made.append(place)
    (place / "bench" / ".data").symlink_to(DATA)
    return place


def _run(tree: Path, argv: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of the command in `tree`, and a digest of what it printed (out and err)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PQL_", "SLACK_", "DATABASE_URL"))}
    env |= {"PQL_TIMEZONE": "America/New_York", "PYTHONPATH": str(tree)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _MAIN, *argv], cwd=tree, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        digest = hashlib.sha256()
        for stream in (out, err):
            stream.seek(0)
            digest.update(stream.read())
    if child.returncode not in (0, 1):  # 1: the file's deliberately invalid lines were reported
        raise SystemExit(f"ab: `pqlbot {' '.join(argv[:1])}` in {tree} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="a git revision")
    parser.add_argument("after", nargs="?", help="a git revision (default: this working tree)")
    parser.add_argument("--command", choices=("score", "backtest"), default="score")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    path = _file(args.command)
    argv = _argv(args.command, path)
    made: list[Path] = []
    try:
        trees = {"before": _checkout(args.before, made), "after": _checkout(args.after, made)}
        print(f"pqlbot {' '.join(argv)}")
        print(f"before: {args.before} ({trees['before']}); after: {args.after or 'this working tree'}; "
              f"{args.pairs} pairs, alternated, before first; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        digests: dict[str, set[str]] = {"before": set(), "after": set()}
        ratios, faster = [], 0
        for pair in range(1, args.pairs + 1):
            took = {}
            for side in ("before", "after"):
                wall, cpu, digest = _run(trees[side], argv)
                took[side] = (wall, cpu)
                digests[side].add(digest)
            ratio = took["after"][0] / took["before"][0]
            ratios.append(ratio)
            faster += took["after"][0] < took["before"][0]
            print(f"pair {pair}: before {took['before'][0]:6.2f} s ({took['before'][1]:6.2f} s CPU), "
                  f"after {took['after'][0]:6.2f} s ({took['after'][1]:6.2f} s CPU): after/before {ratio:.3f}")
        print(f"median after/before: {statistics.median(ratios):.3f}; after faster in {faster} of {args.pairs} pairs")
        same = len(digests["before"]) == 1 and digests["before"] == digests["after"]
        steady = len(digests["before"]) == 1 and len(digests["after"]) == 1
        print("output: " + ("the same, byte for byte, in every run" if same else
                            "DIFFERENT between the revisions" if steady else "DIFFERENT from run to run"))
        return 0 if same else 1
    finally:
        for place in made:
            (place / "bench" / ".data").unlink(missing_ok=True)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(place)],
                           capture_output=True)
            shutil.rmtree(place, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
