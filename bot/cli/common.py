"""Helpers the sub-commands share: reading JSON lines and parsing times."""

from __future__ import annotations

import argparse
import contextlib
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


def open_lines(name: str) -> contextlib.AbstractContextManager[TextIO]:
    """A file by name, or standard input for `-`."""
    return contextlib.nullcontext(sys.stdin) if name == "-" else open(name, encoding="utf-8")


def parse_lines(stream: TextIO, rules: Rules) -> Iterator[tuple[int, Event | EventError]]:
    """(line number, event or the error) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line, rules)
        except EventError as exc:
            yield number, exc
