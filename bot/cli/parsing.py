"""Parsing a big events file in worker processes while the command stores what they have parsed.

Parsing (JSON and validation) is about half of what `pqlbot ingest` does with each line; the other half, storing,
needs the parsed events in order. On two cores the two can overlap: workers parse, the command stores.

- The file is cut in blocks of `BLOCK` lines. Worker k of n parses blocks k, k + n, k + 2n, ... (each reads the
  whole file and skips the other blocks' lines: reading a line is cheap next to parsing it), and the command
  takes the blocks in file order. So it sees exactly what `parse_lines` yields, in the same order, with the same
  line numbers, a block at a time: its events, its rejected lines, its last line number.
- A worker parses at most `AHEAD` blocks ahead of the command, so memory stays flat however big the file.
- A file that stops being readable (not UTF-8, an I/O error) stops the command where `parse_lines` would: every
  line before it is handed over, then the same error is raised.
- Standard input, and files under `APART_FROM` bytes, are parsed in the command's own process (`parse_lines`):
  a worker costs more than it saves there, and standard input cannot be read twice.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import pickle
import signal
import stat
import sys
from collections.abc import Iterator
from functools import partial
from queue import Full
from typing import NamedTuple, TextIO

from bot.cli.common import UNREADABLE, open_text, parse_lines, position
from scoring import Event, EventError, Rules, parse_event, paused_gc

BLOCK = 2_000  # lines a worker hands over at once
AHEAD = 60  # blocks each worker may have parsed that the command has not taken yet: more than one of the command's
# transactions (bot/cli/ingest.py CHUNK, 50,000 events), so the worker parses the next while the command stores one
APART_FROM = 1 << 20  # bytes: a smaller file is parsed in the command's own process
PIPE_BYTES = 1 << 20  # a worker's pipe to the command: Linux's default limit for an unprivileged process
SWITCH_S = 0.0002  # seconds: how soon a worker's queue feeder gets the interpreter from its parsing thread


class Block(NamedTuple):
    """Up to BLOCK lines, parsed: the valid events in file order, the rejected lines (number, reason), and the
    number of the last non-blank line (None when there was none)."""

    events: list[Event]
    rejected: list[tuple[int, str]]
    last: int | None


def blocks_of(items: Iterator[tuple[int, Event | EventError]], size: int = BLOCK) -> Iterator[Block]:
    """`parse_lines`' items as blocks of the lines numbered 1 to size, size + 1 to 2 size, ... When the items stop
    with an error, the block under way is handed over first."""
    events: list[Event] = []
    rejected: list[tuple[int, str]] = []
    last, block = None, 0
    try:
        for number, item in items:
            if (number - 1) // size != block:
                if last is not None:
                    yield Block(events, rejected, last)
                events, rejected, last, block = [], [], None, (number - 1) // size
            if isinstance(item, EventError):
                rejected.append((number, str(item)))
            else:
                events.append(item)
            last = number
    except UNREADABLE:
        if last is not None:
            yield Block(events, rejected, last)
        raise
    if last is not None:
        yield Block(events, rejected, last)


def workers_for(cpus: int | None = None) -> int:
    """How many parsing workers: none on one CPU (nothing would overlap), else one (with the command, two
    processes for two cores; a second worker did not pay on two)."""
    return 0 if (cpus or os.cpu_count() or 1) < 2 else 1


class ParsedLines:
    """The blocks of `stream`'s lines, parsed as `parse_lines` parses them (`Block`), by `workers` processes when
    the stream is a big enough regular file. A context manager: the workers start on
    entering (before anything else starts a thread) and are stopped on leaving, however it is left. `position` is
    how many bytes of the file the workers have parsed (None when parsing in this process: the stream tells)."""

    def __init__(self, stream: TextIO, rules: Rules, *, workers: int) -> None:
        self.stream, self.rules = stream, rules
        self.path = _big_file(stream) if workers > 0 else None
        self.workers = workers if self.path else 0
        self.position: int | None = None
        self._queues: list = []
        self._processes: list = []

    def __enter__(self) -> ParsedLines:
        if self.workers:
            context = multiprocessing.get_context("fork")  # the rules and the loaded modules come along, unpickled
            self._queues = [context.Queue(maxsize=AHEAD) for _ in range(self.workers)]
            for queue in self._queues:
                _widen(queue)
            self._processes = [context.Process(target=_work, args=(self.path, self.rules, k, self.workers, queue),
                                               name=f"pqlbot-parse-{k}", daemon=True)
                               for k, queue in enumerate(self._queues)]
            for process in self._processes:
                process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # done, or stopped early: what it would still parse is not wanted
        for process in self._processes:
            process.join()
        for queue in self._queues:
            queue.close()
            queue.cancel_join_thread()

    def __iter__(self) -> Iterator[Block]:
        if not self.workers:
            yield from blocks_of(parse_lines(self.stream, self.rules))
            return
        block = 0
        while True:
            message = self._queues[block % self.workers].get()
            if message[0] == "end":
                return
            if message[0] == "stop":
                raise message[1]
            _, number, packed, self.position = message
            parsed = _unpacked(packed)
            if number != block:
                raise RuntimeError(f"parsing worker sent block {number} in place of {block}")
            if parsed.last is not None:
                yield parsed
            block += 1


def _widen(queue: multiprocessing.Queue) -> None:
    """Let the queue's pipe hold `PIPE_BYTES`, several blocks, where it holds 64 KiB by default (less than one): the
    worker's feeder thread then hands over what is parsed while the command is busy storing, not only when it asks.
    Where the system refuses (another OS, a lower limit), the default stands; only the pace changes."""
    try:
        fcntl.fcntl(queue._writer.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # noqa: SLF001 - the pipe has no other name
    except (OSError, AttributeError):
        pass


def _big_file(stream: TextIO) -> str | None:
    """The path of a regular file of at least APART_FROM bytes behind `stream`, else None."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size < APART_FROM or not isinstance(getattr(stream, "name", None),
                                                                                      str):
        return None
    return stream.name


def _put(queue: multiprocessing.Queue, parent: int, message: tuple) -> None:
    """Put `message` on the queue, waiting while it is full, unless the command is gone (killed: nobody would
    take it, and the worker would wait for ever)."""
    while True:
        try:
            queue.put(message, timeout=1)
            return
        except Full:
            if os.getppid() != parent:
                os._exit(1)  # at once: its queue's feeder would wait for ever to hand over what it holds


def _packed(block: Block) -> bytes:
    """A block as the worker hands it over: pickled in the worker's own thread (a queue's feeder thread would pickle
    it only when the command asks for it, after its commit, holding the interpreter lock the parsing needs), its
    events as plain tuples (a named tuple pickles through a Python method: twice the cost, as much as parsing)."""
    return pickle.dumps(([tuple(event) for event in block.events], block.rejected, block.last),
                        protocol=pickle.HIGHEST_PROTOCOL)


def _unpacked(packed: bytes) -> Block:
    events, rejected, last = pickle.loads(packed)
    return Block([_event(Event, event) for event in events], rejected, last)


_event = tuple.__new__  # an Event of its fields, without the named tuple's Python-level __new__


def _work(path: str, rules: Rules, k: int, n: int, queue: multiprocessing.Queue) -> None:
    """Worker k of n: parse blocks k, k + n, ... of the file and put each on `queue` as ("block", its number, the
    `Block`, bytes read so far), then ("end",); or, when the file cannot be read on, what it has of the block
    under way and ("stop", the error)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle: it stops the workers
    # The queue's feeder thread sends each block; with the default switch interval (5 ms) it waited that long for the
    # parsing thread to let go of the interpreter, block after block, and the command waited with it (5 of the 25 s
    # of a million-line `pqlbot ingest --no-score`).
    sys.setswitchinterval(SWITCH_S)
    put = partial(_put, queue, os.getppid())
    current, events, rejected, last = -1, [], [], None
    try:
        with paused_gc(), open_text(path) as stream:
            for number, line in enumerate(stream, start=1):
                block = (number - 1) // BLOCK
                if block % n != k:
                    continue
                if block != current:
                    if current >= 0:
                        put(("block", current, _packed(Block(events, rejected, last)), position(stream)))
                    current, events, rejected, last = block, [], [], None
                if not line.strip():
                    continue
                last = number
                try:
                    events.append(parse_event(line, rules))
                except EventError as exc:
                    rejected.append((number, str(exc)))
            if current >= 0:
                put(("block", current, _packed(Block(events, rejected, last)), position(stream)))
        put(("end",))
    except UNREADABLE as exc:
        if current >= 0:
            put(("block", current, _packed(Block(events, rejected, last)), None))
        put(("stop", exc))
