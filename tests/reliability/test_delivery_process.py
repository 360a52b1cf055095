"""`pqlbot serve` delivers to Slack from a process of its own (bot/slack/delivery_process.py): a delivery process
that dies is replaced and what it owed still goes out once; a server that dies takes its delivery process with it.
The real command runs as a process, on each store; Slack is the stand-in in this process."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import make_engine
from tests.reliability.conftest import (
    check_store_and_slack,
    drained,
    send_batch,
    team_zone,
    trial_batch,
    wait_until,
)


def delivery_processes(server_pid: int) -> list[int]:
    """The server's spawned children that run the deliverer (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == server_pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "(zombie)" not in Path(f"/proc/{pid}/status").read_text()


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


@pytest.mark.slow
def test_a_delivery_process_that_dies_is_replaced_and_every_alert_goes_out_once(database_url, slack, serves):
    zone, business_open = team_zone()
    now = datetime.now(UTC)
    users = [f"apart{n:02d}" for n in range(12)]
    slack.clock = time.time
    serve = serves("serve", database_url=database_url, slack=slack, zone=zone).start().ready()
    [first] = wait_until(lambda: delivery_processes(serve.process.pid), timeout=30, what="the delivery process")

    for user in users[:6]:
        assert send_batch(serve.port, trial_batch(user, now=now, run="apart")) == 200
    engine = make_engine(database_url)
    try:
        wait_until(lambda: drained(engine, 6), timeout=60, every=0.1, what="the first six alerted")
        os.kill(first, signal.SIGKILL)  # the delivery process alone dies; the server goes on taking events
        for user in users[6:]:
            assert send_batch(serve.port, trial_batch(user, now=now, run="apart")) == 200
        [second] = wait_until(lambda: [p for p in delivery_processes(serve.process.pid) if p != first],
                              timeout=30, what="a new delivery process")
        wait_until(lambda: drained(engine, len(users)), timeout=60, every=0.1,
                   what="every lead alerted and the outbox drained")
        check_store_and_slack(engine, slack, users, business_open=business_open)  # each alert once, nothing lost
        assert alive(second) and not alive(first)
        serve.stop()
        log = serve.log()
        assert f"the Slack delivery process (pid {first}) ended" in log
        assert "Traceback" not in log, log[-3000:]
        wait_until(lambda: not alive(second), timeout=10, what="the delivery process to stop with the server")
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_killed_server_takes_its_delivery_process_with_it(database_url, slack, serves):
    zone, _ = team_zone()
    serve = serves("serve", database_url=database_url, slack=slack, zone=zone).start().ready()
    [delivery] = wait_until(lambda: delivery_processes(serve.process.pid), timeout=30, what="the delivery process")
    serve.kill()  # SIGKILL: no cleanup, as when the OOM killer takes it
    wait_until(lambda: not alive(delivery), timeout=5, every=0.05,
               what="the delivery process to die with its server")
