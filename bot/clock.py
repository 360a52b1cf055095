"""The one reading of the wall clock. Everything else takes `now` (or a `Clock`) as an argument, so tests freeze
time with freezegun or pass a clock of their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: What services and workers are given instead of reading the clock themselves.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)
