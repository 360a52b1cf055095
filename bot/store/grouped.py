"""One thread that takes everything waiting in its queue and serves it as one group.

Why: work that each request would otherwise do in a transaction of its own (storing an ingestion call,
recording a Slack request as seen) costs a commit, a pooled connection and, under a burst, a queue for
both. Taken together by one thread, a hundred waiting items cost a few statements, and a lone item is a
group of one, served at once. Used by ingestion (bot/web/intake.py) and the Slack replay record
(bot/slack/verify.py).

The thread starts on demand and ends after `idle_seconds` with nothing to do. An item whose caller has
gone (its future cancelled) is left out of its group. `serve` must settle every future it is given.

Under a stream (items arrived while the last group was being served), the writer may wait up to
`gather_seconds` for the next group to fill before serving it: taking only what happened to be waiting, it
served groups of a few calls at 1,000 a second, each paying a whole transaction. A full group goes at once,
and an item that arrives at a quiet writer is served at once, never held.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Waiting = list[tuple[Item, Future]]


class GroupWriter(Generic[Item]):
    def __init__(self, serve: Callable[[Waiting], None], *, name: str, idle_seconds: float = 5.0,
                 weight: Callable[[Item], int] = lambda item: 1, max_weight: int | None = None,
                 gather_seconds: float = 0.0) -> None:
        """`max_weight` bounds a group by the sum of its items' `weight` (a first item heavier than that
        still goes, alone); `gather_seconds`: see the module docstring (0: serve whatever is waiting)."""
        self.serve, self.name, self.idle_seconds = serve, name, idle_seconds
        self.weight, self.max_weight, self.gather_seconds = weight, max_weight, gather_seconds
        self._waiting: deque[tuple[Item, Future]] = deque()
        self._queued = 0  # the waiting items' weight
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, item: Item, future: Future | None = None) -> Future:
        """Queues `item`; returns the future `serve` settles (pass one to link it up before the writer runs)."""
        future = future or Future()
        with self._ready:
            self._waiting.append((item, future))
            self._queued += self.weight(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    @property
    def running(self) -> bool:
        with self._ready:
            return self._thread is not None

    def _run(self) -> None:
        served = False
        while True:
            with self._ready:
                stream = served and bool(self._waiting)  # items came in while the last group was served
                if not self._waiting:
                    self._ready.wait(self.idle_seconds)
                if not self._waiting:
                    self._thread = None  # under the lock, so an item queued from now on starts a new thread
                    return
                if stream and self.gather_seconds > 0:
                    self._gather()
                group = self._take()
            if group:
                self.serve(group)
                served = True

    def _gather(self) -> None:
        """Wait (holding the condition's lock) until the next group is full or `gather_seconds` have passed."""
        deadline = time.monotonic() + self.gather_seconds
        while self.max_weight is None or self._queued < self.max_weight:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._ready.wait(left)

    def _take(self) -> Waiting:
        group, size = [], 0
        while self._waiting:
            weight = self.weight(self._waiting[0][0])
            if group and self.max_weight is not None and size + weight > self.max_weight:
                break
            item, future = self._waiting.popleft()
            self._queued -= weight
            if future.set_running_or_notify_cancel():  # False: its caller went away, so nobody waits
                group.append((item, future))
                size += weight
        return group
