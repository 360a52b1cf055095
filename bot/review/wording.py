"""How the review states things: a figure as people read it (`fmt`) and as machines do (`plain`), the first-touch
targets in the business hours it reports, and its words (templates/review/words.j2, through `words` and `table`).

Every other module of the review builds on this one, and it imports none of them.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from bot.domain import guardrails
from bot.domain import targets as bars
from bot.domain.sla import FIRST_TOUCH
from templates import sentences

#: Seed 002's time-to-first-touch targets in business hours, from the SLA table (bot/domain/sla.py).
FIRST_TOUCH_HOURS = {tier: due.total_seconds() / 3600 for tier, due in FIRST_TOUCH.items()}


def _percent(value: float) -> str:
    return f"{round(value * 100, 2):g}%"


#: The bars the review's sentences quote, as they read them: written once, in bot/domain, never in the words.
BARS = {
    "acceptance_target": _percent(bars.ACCEPTANCE.target.value),
    "acceptance_scale": _percent(bars.ACCEPTANCE.minimum_viable.value),
    "acceptance_escalation": _percent(bars.ACCEPTANCE_ESCALATION),
    "acceptance_guardrail": _percent(bars.ACCEPTANCE_GUARDRAIL),
    "false_positive_limit": _percent(bars.FALSE_POSITIVE.value),
    "sla_target": _percent(bars.SLA_COMPLIANCE.target.value),
    "sla_sustainable": _percent(bars.SLA_COMPLIANCE.minimum_viable.value),
    "sla_guardrail": _percent(bars.SLA_GUARDRAIL),
    "reply_target": _percent(bars.REPLY_RATE.target.value),
    "meeting_target": _percent(bars.MEETING_RATE.target.value),
    "complaints_limit": _percent(bars.COMPLAINTS.target.value),
    "complaints_guardrail": _percent(bars.COMPLAINTS_GUARDRAIL),
    "conversion_scale": _percent(bars.PQL_CONVERSION.minimum_viable.value),
    "conversion_target": _percent(bars.PQL_CONVERSION.target.value),
    "min_sample": bars.MIN_SAMPLE,
    "utilization_max": f"{bars.UTILIZATION.value:g}",
    "volume_per_rep": guardrails.VOLUME_PER_REP,
    "volume_streak": guardrails.VOLUME_STREAK,
    "self_serve_tolerance": f"{-bars.SELF_SERVE_CHANGE.minimum_viable.value * 100:g} pp",
}

#: One sentence of templates/review/words.j2, on one line (`bars` in the words are BARS).
words = sentences("review/words.j2", context={"bars": BARS})


def table(name: str) -> dict[str, Any]:
    """A table templates/review/words.j2 sets: labels, sections, marks, metric_labels..."""
    return words.table(name)


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


def context(reps: int, as_of: datetime | None, tz: tzinfo | None = None, to_come: list | None = None) -> str:
    """The line under a title: reps on the roster and when the figures were read ("Mon 9 Nov 12:00"), and for a
    week still under way, the days still to come."""
    local = as_of.astimezone(tz) if as_of and tz else as_of
    when = f"{local:%a} {local.day} {local:%b %H:%M}" if local else "now"
    days = [f"{day:%a} {day.day} {day:%b}" for day in to_come or ()]
    return words("context", reps=reps, as_of=when, to_come=days)


def share_of(part: int, whole: int, what: str) -> str | None:
    """The counts beside a percentage ("2 of 5 due"); None when there is nothing to count."""
    return f"{part} of {whole} {what}" if whole else None
