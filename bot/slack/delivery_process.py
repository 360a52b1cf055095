"""`pqlbot serve`'s Slack deliverer in a process of its own, so that delivering never takes the intake's turn.

Why: in one process the deliverer (reading each lead's view through the ORM, rendering its alert, calling Slack,
marking it sent: about 14 ms of CPU an alert) shared one interpreter lock with the event loop and the intake's
writer. Under a stream of ingestion it took a quarter of the server's samples, and every call waited its turn behind
it: at 1,000 events a second on SQLite event->alert p95 was 1.3 s; with the deliverer apart, 0.1-0.2 s
(docs/reliability.md, "The sixth session's figures").

How: the process is spawned (not forked: the server has threads and pooled connections by then) with the server's
settings, opens the store and Slack's gateway as the server does, and runs the same `Deliverer` passes. The server
wakes it through a pipe wherever it would have kicked its own deliverer (after a commit that owes Slack
something, after a claim's reply is queued); it also passes on its own every `EVERY_SECONDS`, as before. Nothing else
changes: the outbox is the only thing the two share, and two deliverers on one store were already safe (each notice
is claimed before it is sent: docs/reliability.md rows 2-3).

- If the process dies, the server logs it and starts another after `RESTART_SECONDS` (what it was sending is taken
  up again by the next pass: `release_stale`).
- If the server dies (killed, so it cannot stop it), so does the process, at once on Linux (the parent-death signal,
  as a thread of the server would have), elsewhere within a second.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import select
import signal
import threading
from multiprocessing.connection import Connection

from bot.settings import Settings

log = logging.getLogger("pqlbot")

RESTART_SECONDS = 1.0  # a dead delivery process is started again after this long
_CHECK_SECONDS = 1.0  # how often the process looks for its parent gone, between messages
_KICK, _STOP = b"k", b"s"


class DeliveryProcess:
    """Start it, `kick()` it, `stop()` it: what `Server` did with its `Deliverer` thread.

    The server talks to the process through a pipe of its own, one byte a message (`_KICK`, `_STOP`), written
    without waiting: a kick finding the pipe full finds a kick already owed, and one finding the process gone is
    for the next process. (A multiprocessing Event will not do: setting one waits for every process waiting on it to
    wake, and a killed one never does.)"""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: int | None = None  # the writing end of the current process's pipe
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="pqlbot-delivery-watch", daemon=True)

    def start(self) -> DeliveryProcess:
        self._spawn()
        self._watcher.start()
        return self

    def kick(self) -> None:
        """Deliver now (or right after the pass under way)."""
        self._send(_KICK)

    def stop(self, timeout: float = 10) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._send(_STOP)
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(timeout)
        self._watcher.join(timeout)
        with self._lock:
            if self._pipe is not None:
                os.close(self._pipe)
                self._pipe = None

    def _send(self, message: bytes) -> None:
        with self._lock:
            if self._pipe is None:
                return
            try:
                os.write(self._pipe, message)
            except (BlockingIOError, BrokenPipeError):
                pass  # full: a message is owed already; gone: the watcher starts another, which passes at once

    def _spawn(self) -> None:
        reader, writer = os.pipe()
        os.set_blocking(writer, False)
        # The reading end goes to the process as a Connection (how spawn hands a descriptor on); this one keeps only
        # the writing end, so that a write to a process that died fails instead of filling the pipe.
        receiving = Connection(reader, writable=False)
        process = self._context.Process(target=run, args=(self.settings, receiving, os.getpid()),
                                        name="pqlbot-delivery", daemon=True)
        process.start()
        receiving.close()
        with self._lock:
            old, self._pipe, self._process = self._pipe, writer, process
        if old is not None:
            os.close(old)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            process.join()
            if self._stopping.is_set():
                return
            log.warning("the Slack delivery process (pid %s) ended with %s; starting another in %g s",
                        process.pid, process.exitcode, RESTART_SECONDS)
            if self._stopping.wait(RESTART_SECONDS):
                return
            self._spawn()  # its first pass takes up whatever was owed meanwhile


def run(settings: Settings, receiving: Connection, parent: int) -> None:
    """In the delivery process: the server's `Deliverer`, kicked through `receiving`, until told to stop, the server
    closes its end, or the server is gone."""
    _die_with(parent)
    from bot.services.pipeline import for_team
    from bot.slack.delivery import Deliverer
    from bot.slack.gateway import Gateway
    from bot.slack.runtime import Runtime
    from bot.store.health import open_writable

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipeline = for_team(open_writable(settings.database_url), settings)
    deliverer = Deliverer.of(Runtime(pipeline, settings, Gateway.from_settings(settings)),
                             settings.pql_alerts_channel).start()
    pipe = receiving.fileno()  # one byte a message, read as they are: not Connection's framed messages
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([pipe], [], [], _CHECK_SECONDS)
            if not ready:
                continue
            messages = os.read(pipe, 4096)
            if not messages or _STOP in messages:  # told to stop, or the server closed its end
                return
            deliverer.kick()
    finally:
        deliverer.stop()
        pipeline.engine.dispose()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """Be killed the moment the server is (Linux's parent-death signal): a crash of the server then stops a send under
    way exactly as it stopped the thread this process replaces, and nothing outlives it. Elsewhere the loop in `run`
    looks for the parent every second."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # gone before the signal was asked for
        os._exit(0)
