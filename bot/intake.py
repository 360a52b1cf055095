"""Concurrent ingestion calls share transactions: one writer stores and scores whatever has queued.

Why: stored one by one, each `/v1/track` call paid for a transaction, a commit, a pooled connection and,
on SQLite, a turn at the single write lock. At hundreds of calls a second the server spent its time
queueing for those rather than working. Here one writer thread takes every call that is waiting, ingests
them as one `Pipeline.ingest`, and tells each caller what became of its own events. A quiet server pays
nothing for this: a lone call is a group of one, taken at once.

Each caller learns what it would have learnt alone:
- its accepted and duplicate counts, by messageId (when two waiting calls carry the same messageId, the
  one that queued first stores it);
- the PQLs its events created. When events from two calls of one group together qualify a user, the PQL
  is named to the later of them, the call that completed it, so each PQL is still named exactly once.
A group the store fails on is retried call by call, so a call the store cannot take fails alone and the
others are stored.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from bot.pipeline import Ingested, Pipeline
from scoring import Event


@dataclass(slots=True)
class Outcome:
    """What became of one call's events."""

    accepted: int = 0
    duplicates: int = 0
    pqls: list[int] = field(default_factory=list)  # PQLs this call's events created, in the order they qualified


@dataclass(slots=True)
class _Call:
    events: list[Event]
    future: Future


class Intake:
    """The one writer of a process's ingestion calls. Its thread starts on demand and ends when idle."""

    def __init__(self, pipeline: Pipeline, *, max_events: int = 1000, idle_seconds: float = 5.0) -> None:
        self.pipeline, self.max_events, self.idle_seconds = pipeline, max_events, idle_seconds
        self._waiting: deque[_Call] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, events: Sequence[Event]) -> Future:
        """Queues one call's events; the future resolves to its `Outcome` (or the store's error)."""
        call = _Call(list(events), Future())
        self._queue(call)
        return call.future

    async def ingest(self, events: Sequence[Event]) -> Outcome:
        call = _Call(list(events), Future())
        answer = asyncio.wrap_future(call.future)  # before the writer can see the call, so it never waits on us
        self._queue(call)
        return await answer

    def _queue(self, call: _Call) -> None:
        with self._ready:
            self._waiting.append(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pqlbot-intake", daemon=True)
                self._thread.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._waiting:
                    self._ready.wait(self.idle_seconds)
                if not self._waiting:
                    self._thread = None  # under the lock, so a call queued from now on starts a new thread
                    return
                group = self._take()
            self._serve(group)

    def _take(self) -> list[_Call]:
        group, size = [], 0
        while self._waiting and (not group or size + len(self._waiting[0].events) <= self.max_events):
            call = self._waiting.popleft()
            if call.future.set_running_or_notify_cancel():  # False: its caller went away, so nobody waits
                group.append(call)
                size += len(call.events)
        return group

    def _serve(self, group: list[_Call]) -> None:
        if not group:
            return
        try:
            done = self.pipeline.ingest([event for call in group for event in call.events])
        except Exception as exc:  # noqa: BLE001 - each caller gets its own answer, error or not
            if len(group) == 1:
                group[0].future.set_exception(exc)
            else:
                for call in group:
                    self._serve([call])
            return
        for call, outcome in zip(group, _split(group, done), strict=True):
            call.future.set_result(outcome)


def _split(group: list[_Call], done: Ingested) -> list[Outcome]:
    outcomes = [Outcome() for _ in group]
    fresh, counted = done.stored.fresh, set()
    completed_by: dict[str, int] = {}  # user -> the last call in the group that stored one of their events
    for index, call in enumerate(group):
        for event in call.events:
            if event.message_id in fresh and event.message_id not in counted:
                counted.add(event.message_id)
                outcomes[index].accepted += 1
                completed_by[event.user_id] = index
            else:
                outcomes[index].duplicates += 1
    results = done.rescored.results
    for pql_id in done.rescored.triggered:
        index = completed_by.get(results[pql_id].user_id)
        if index is not None:
            outcomes[index].pqls.append(pql_id)
    return outcomes
