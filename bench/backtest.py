"""Backtest bench: `pqlbot backtest`'s replay of a million events, day by day, against one judgement per user.

    .venv/bin/python bench/backtest.py [--users 100000] [--events 1000000] [--seed 7]

The history is bench/score.py's events file (generated there, once, and reused) with a `trial_converted` for about
8 % of users (3-20 days after their signup) and a `sales_touch` for about 15 % (1-5 days after): what a backtest
reads besides the product events. It is written once into bench/.data/, beside the file it derives from.

Measured, in this order:
- whole run: `pqlbot backtest FILE --capacity 10 --cap 5 --json` in a child process, from its start (Python, imports,
  reading and parsing the file) to the report written, wall and CPU seconds (its processes included), against the
  issue's target of 10 s at 1,000,000 events: what a user waits for. The command shares the file's users out
  between processes, one per CPU (bot/cli/split.py): each parses its share of the lines and replays its own users;
- then in this process, the one-process way (what `--processes 1` and standard input do), each with wall and CPU
  seconds: parse, reading and `parse_event(line, rules)` of every line; baseline, `score_users(events, rules, AT,
  tz=...)`, one judgement per user as of the morning after the history, what `pqlbot score` does with the same
  events: the bare scoring the replay is made of; replay, `bot.calibration.backtest.replay` over the same events
  (one worker process per CPU), as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from anywhere, installed or not

from bench import score  # noqa: E402 - after the path is set

TARGET_WHOLE_RUN_S = 10.0
CONVERTING, TOUCHED = 0.08, 0.15


def derived_path(source: Path) -> Path:
    return source.with_name(source.stem + "-backtest.jsonl")


def derive(source: Path, seed: int) -> Path:
    """bench/score.py's file, with conversions and touches added (deterministic from the seed)."""
    path = derived_path(source)
    if path.exists():
        return path
    rng = random.Random(seed)
    extra = []
    with open(source, "rb") as stream, open(path.with_suffix(".tmp"), "wb") as out:
        for line in stream:
            out.write(line)
            if b'"signup_complete"' not in line:
                continue
            call = orjson.loads(line)
            signup = datetime.fromisoformat(call["timestamp"])
            user = call["userId"]
            if rng.random() < TOUCHED:
                extra.append(("sales_touch", user, signup + timedelta(days=rng.uniform(1, 5))))
            if rng.random() < CONVERTING:
                extra.append(("trial_converted", user, signup + timedelta(days=rng.uniform(3, 20))))
        for number, (name, user, at) in enumerate(extra):
            out.write(orjson.dumps({
                "type": "track", "event": name, "userId": user, "messageId": f"bt-{number}",
                "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "properties": {}}) + b"\n")
    path.with_suffix(".tmp").rename(path)
    return path


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (worker processes, the CLI run)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def whole_run(path: Path) -> tuple[float, float]:
    """`pqlbot backtest FILE` from its start to its report, in a child process: (wall s, CPU s)."""
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))",
               "backtest", str(path), "--capacity", "10", "--cap", "5", "--json"]
    env = {**os.environ, "PQL_TIMEZONE": score.TZ.key, "PYTHONPATH": str(BENCH.parent)}
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: invalid lines were skipped, as the file has some
        raise SystemExit(f"pqlbot backtest failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return wall, _cpu() - cpu


def measure(path: Path, *, at_target_size: bool) -> None:
    from bot.calibration.backtest import replay
    from bot.domain.business_time import BusinessCalendar
    from scoring import EventError, load_rules, parse_event, paused_gc, score_users

    whole_s, whole_cpu = whole_run(path)
    rules = load_rules()
    calendar = BusinessCalendar(score.TZ)
    cpu, started = _cpu(), time.perf_counter()
    events, rejected = [], 0
    with paused_gc(), open(path, encoding="utf-8") as stream:
        for line in stream:
            try:
                events.append(parse_event(line, rules))
            except EventError:
                rejected += 1
    parse_s, parse_cpu = time.perf_counter() - started, _cpu() - cpu

    cpu, t0 = _cpu(), time.perf_counter()
    with paused_gc():
        backtest = replay(events, rules, tz=score.TZ, is_business_day=calendar.is_business_day, reps=10, cap=5)
    replay_s, replay_cpu = time.perf_counter() - t0, _cpu() - cpu

    cpu, t1 = _cpu(), time.perf_counter()
    with paused_gc():
        results = score_users(events, rules, score.AT, tz=score.TZ)
    baseline_s, baseline_cpu = time.perf_counter() - t1, _cpu() - cpu

    verdict = "ok" if whole_s < TARGET_WHOLE_RUN_S else "MISSED"
    if not at_target_size:
        verdict = f"not judged: the target is for {score.DEFAULT_EVENTS:,} events"
    print(f"whole run:         {whole_s:8.2f} s   {whole_cpu:6.2f} s CPU   `pqlbot backtest FILE`, start to report "
          f"= {whole_s / baseline_s:.2f}x the baseline; target < {TARGET_WHOLE_RUN_S:g} s: {verdict}")
    print(f"parse:             {parse_s:8.2f} s   {parse_cpu:6.2f} s CPU   ({len(events):,} events, "
          f"{rejected:,} rejected)")
    print(f"baseline:          {baseline_s:8.2f} s   {baseline_cpu:6.2f} s CPU   score_users, one judgement per user "
          f"({len(results):,} users)")
    print(f"replay:            {replay_s:8.2f} s   {replay_cpu:6.2f} s CPU   = {replay_s / baseline_s:.2f}x the "
          f"baseline ({replay_cpu / baseline_cpu:.2f}x in CPU; {len(backtest.raised):,} leads raised, "
          f"{len(backtest.days)} business days)")
    print(f"peak memory:       {_maxrss_mib():8.0f} MiB (ru_maxrss, this process)")
    print("fired / converted: " + ", ".join(f"{row.name} {row.fired:,}/{row.converted:,}"
                                            for row in backtest.triggers if row.fired))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=score.DEFAULT_USERS, help="trial users (default %(default)s)")
    parser.add_argument("--events", type=int, default=score.DEFAULT_EVENTS, help="events (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default %(default)s)")
    args = parser.parse_args()
    if args.users < 1 or args.events < args.users:
        parser.error("need --users >= 1 and --events >= --users")
    t0 = time.perf_counter()
    path = derive(score.events_file(args.users, args.events, args.seed), args.seed)
    print(f"events file:       {path.relative_to(BENCH.parent)} (ready in {time.perf_counter() - t0:.1f} s, "
          f"not measured; {path.stat().st_size / (1 << 20):,.0f} MiB)")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; replay in {score.TZ.key}, 10 reps x 5 a day")
    measure(path, at_target_size=(args.users, args.events) == (score.DEFAULT_USERS, score.DEFAULT_EVENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
