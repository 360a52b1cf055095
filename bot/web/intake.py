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

Under a stream of calls the writer waits up to `gather_seconds` (INGEST_GATHER_MS) for a group to fill:
at 1,000 events a second, 10 ms took a third off the server's CPU per event and nothing off alert latency
(bench/latency.py). A call that reaches a quiet server is stored at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from bot.services.pipeline import Ingested, Pipeline
from bot.store.grouped import GroupWriter, Waiting
from scoring import Event


@dataclass(slots=True)
class Outcome:
    """What became of one call's events."""

    accepted: int = 0
    duplicates: int = 0
    pqls: list[int] = field(default_factory=list)  # PQLs this call's events created, in the order they qualified


#: How long the writer waits for a group to fill under a stream of calls, unless told otherwise.
GATHER_SECONDS = 0.010


class Intake:
    """The one writer of a process's ingestion calls (a GroupWriter: its thread starts on demand)."""

    def __init__(self, pipeline: Pipeline, *, max_events: int = 1000, idle_seconds: float = 5.0,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        self.pipeline = pipeline
        self._writer: GroupWriter[list[Event]] = GroupWriter(
            self._serve, name="pqlbot-intake", idle_seconds=idle_seconds, weight=len, max_weight=max_events,
            gather_seconds=gather_seconds)

    @property
    def running(self) -> bool:
        return self._writer.running

    def submit(self, events: Sequence[Event]) -> Future:
        """Queues one call's events; the future resolves to its `Outcome` (or the store's error)."""
        return self._writer.submit(list(events))

    async def ingest(self, events: Sequence[Event]) -> Outcome:
        future: Future = Future()
        answer = asyncio.wrap_future(future)  # before the writer can see the call, so it never waits on us
        self._writer.submit(list(events), future)
        return await answer

    def _serve(self, group: Waiting) -> None:
        try:
            done = self.pipeline.ingest([event for events, _ in group for event in events])
        except Exception as exc:  # noqa: BLE001 - each caller gets its own answer, error or not
            if len(group) == 1:
                group[0][1].set_exception(exc)
            else:
                for call in group:
                    self._serve([call])
            return
        for (_, future), outcome in zip(group, _split([events for events, _ in group], done), strict=True):
            future.set_result(outcome)


def _split(calls: list[list[Event]], done: Ingested) -> list[Outcome]:
    outcomes = [Outcome() for _ in calls]
    fresh, counted = done.stored.fresh, set()
    completed_by: dict[str, int] = {}  # user -> the last call in the group that stored one of their events
    for index, events in enumerate(calls):
        for event in events:
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
