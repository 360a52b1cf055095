"""Helpers the sub-commands share: reading JSON lines and parsing times."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gzip
import os
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

from scoring import Event, EventError, Rules, parse_event


def moment(text: str) -> datetime:
    """An ISO 8601 time for --at; without a zone it means UTC, as every stored time is."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def some(text: str) -> int:
    """A whole number of things, 1 or more, for an option such as --processes."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {text!r}")
    return value


def count(text: str) -> int:
    """A whole number of things, 0 or more, for an option such as --cap or --top."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}")
    return value


#: The first bytes of a gzip file, and the byte-order marks a text file may start with.
_GZIP = b"\x1f\x8b"
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: What reading a file of events can fail with that is the file's fault: not text, a cut-off .gz, unreadable.
UNREADABLE = (UnicodeDecodeError, EOFError, OSError)


def open_text(path: str) -> TextIO:
    """A JSON-lines file as text: UTF-8, gzipped or not (Segment's and RudderStack's storage destinations write
    .gz files), or with a byte-order mark (UTF-16, as Windows tools write text). Only a regular file is looked
    into first: what is read from a pipe (`<(zcat ...)`) is gone for whoever reads it next."""
    if not _regular(path):
        return open(path, encoding="utf-8")
    with open(path, "rb") as probe:
        head = probe.read(4)
    if head.startswith(_GZIP):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding=next((name for bom, name in _BOMS if head.startswith(bom)), "utf-8"))


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def position(stream: TextIO) -> int:
    """How far into the file on disk `stream` has read (of a gzipped file, its compressed bytes)."""
    buffer = stream.buffer
    return getattr(buffer, "fileobj", buffer).tell()


def unreadable(error: BaseException) -> str:
    """Why a file of events could not be read through, in a few words."""
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(error, EOFError):
        return "it ends in the middle (a .gz file cut off?)"
    return getattr(error, "strerror", None) or str(error)


def not_json_lines(name: str) -> str | None:
    """What a file of events looks like instead, when its first line says it is not JSON lines (one event per line):
    a JSON array, a Segment batch document, or one JSON document over many lines, as exports and `json.dump` write
    them; None for JSON lines, standard input and anything unreadable (the command then says what)."""
    if name == "-" or not _regular(name):
        return None
    try:
        with open_text(name) as stream:
            head = stream.read(4096).lstrip()  # not a line: a one-line array may be the whole file
    except (*UNREADABLE, ValueError):
        return None
    first = head.split("\n", 1)[0].strip()
    fix = f"one event per line: jq -c '{{path}}' {name} > events.jsonl"
    if first.startswith("["):
        return "a JSON array, not JSON lines; write " + fix.format(path=".[]")
    if first.replace(" ", "").startswith('{"batch"'):
        return "a Segment batch document, not JSON lines; write " + fix.format(path=".batch[]")
    if first == "{":
        return "one JSON document over many lines, not JSON lines; write " + fix.format(path=".batch[]? // .")
    return None


def open_lines(name: str) -> contextlib.AbstractContextManager[TextIO]:
    """A file by name (`open_text`), or standard input for `-`."""
    return contextlib.nullcontext(sys.stdin) if name == "-" else open_text(name)


def parse_lines(stream: TextIO, rules: Rules) -> Iterator[tuple[int, Event | EventError]]:
    """(line number, event or the error) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line, rules)
        except EventError as exc:
            yield number, exc
