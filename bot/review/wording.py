"""How the review states things: a figure as people read it (`fmt`) and as machines do (`plain`), the first-touch
targets in the business hours it reports, and its words (templates/review/words.j2, through `words` and `table`).

Every other module of the review builds on this one, and it imports none of them.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from bot.domain.sla import FIRST_TOUCH
from templates import sentences
from templates import table as _word_table

#: One sentence of templates/review/words.j2, on one line.
words = sentences("review/words.j2")

#: Seed 002's time-to-first-touch targets in business hours, from the SLA table (bot/domain/sla.py).
FIRST_TOUCH_HOURS = {tier: due.total_seconds() / 3600 for tier, due in FIRST_TOUCH.items()}


def table(name: str) -> dict[str, Any]:
    """A table templates/review/words.j2 sets: labels, sections, marks, metric_labels..."""
    return _word_table("review/words.j2", name)


def fmt(value: float | int | None, unit: str) -> str:
    """A figure as people read it: 55%, 4.5%, 1.2, 3.0 h, +4.0 pp, $1,250; None is "no data"."""
    if value is None:
        return words("no_data")
    if unit == "count":
        return f"{int(value):,}"
    if unit == "rate":
        return "0%" if value == 0 else f"{value:.1%}" if abs(value) < 0.1 else f"{value:.0%}"
    if unit == "pp":
        return f"{value * 100:+.1f} pp"
    if unit == "hours":
        return f"{value:.1f} h"
    if unit == "money":
        return f"${value:,.0f}"
    return f"{value:.1f}"


def plain(value: float | int | None) -> float | int | None:
    """A figure for JSON and CSV: rates stay fractions, rounded to 4 places."""
    return round(value, 4) if isinstance(value, float) else value


def context(reps: int, as_of: datetime | None, tz: tzinfo | None = None) -> str:
    """The line under a title: reps on the roster and when the figures were read ("Mon 9 Nov 12:00")."""
    local = as_of.astimezone(tz) if as_of and tz else as_of
    when = f"{local:%a} {local.day} {local:%b %H:%M}" if local else "now"
    return words("context", reps=reps, as_of=when)
