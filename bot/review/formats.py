"""The review and the pilot scorecard as text (`pqlbot review`), JSON and CSV.

Text shows what a person reads: the shown figures by section (`sections`, which the Slack review lays out too),
marked against their targets, then the action items. JSON and CSV carry every figure, rates as fractions as the
targets are (CSV: one row per figure: name, value, target, status).
"""

from __future__ import annotations

import csv
import io
from datetime import tzinfo
from typing import Any

from bot.review import wording
from bot.review.model import SECTIONS, Review
from bot.review.pilot import GUARDRAIL_SPECS, GUARDRAILS, Scorecard, SuccessMetric
from bot.review.wording import fmt, plain, table, words
from templates import render

SIGNALS_SHOWN = 10  # signals listed in Slack and text; JSON and CSV carry all of them


def sections(review: Review) -> list[dict[str, Any]]:
    """The shown figures by section, ready for a template or for Slack lines."""
    marks, titles = table("marks"), table("sections")
    out = []
    for key in SECTIONS:
        figures = [f for f in review.figures if f.section == key and f.shown]
        signal_rows = [f for f in figures if f.name.startswith("signal.")]
        hidden = len(signal_rows) - SIGNALS_SHOWN
        if hidden > 0:
            figures = [f for f in figures if f not in signal_rows[SIGNALS_SHOWN:]]
        rows = [{"mark": marks[f.status], "label": f.label, "value": f.text, "detail": f.detail,
                 "target": f.target.text if f.target else None, "indent": f.indent} for f in figures]
        if hidden > 0:
            rows.append({"mark": "", "label": f"…and {hidden} more signals", "value": "see the JSON or CSV",
                         "detail": None, "target": None, "indent": False})
        out.append({"key": key, "title": titles[key], "rows": rows})
    return out


# The review --------------------------------------------------------------------------------------------------

def text(review: Review, tz: tzinfo | None = None) -> str:
    """For the terminal."""
    return render("review/review.txt.j2",
        title=review.title, context=review.context(tz), sections=sections(review),
        actions_title=table("sections")["actions"], actions=review.actions,
    ).strip() + "\n"


def to_json(review: Review) -> dict[str, Any]:
    m = review.metrics
    return {
        "period": {"key": review.key, "label": m.period.label, "start": m.period.start.isoformat(),
                   "end": m.period.end.isoformat()},
        "reps": m.reps,
        "daily_cap": review.cap,
        "as_of": review.as_of.isoformat() if review.as_of else None,
        "figures": [f.to_json() for f in review.figures],
        "action_items": review.actions,
        "daily": {day.isoformat(): tiers for day, tiers in sorted(m.daily.items())},
        "sla_by_day": {day.isoformat(): plain(value) for day, value in sorted(m.sla_by_day.items())},
        "to_come": [day.isoformat() for day in m.to_come],
        "triggers": [row.to_json() for row in m.triggers],
    }


def to_csv(review: Review) -> str:
    """One row per figure: name, value, target, status (rates as fractions, as the targets are)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "value", "target", "status"])
    for f in review.figures:
        writer.writerow([f.name, "" if f.value is None else plain(f.value), f.target.spec if f.target else "",
                         f.status])
    return out.getvalue()


# The pilot scorecard -----------------------------------------------------------------------------------------

def _metric_row(metric: SuccessMetric) -> dict[str, Any]:
    return {"label": metric.label, "value": fmt(metric.value, metric.unit), "counts": metric.counts,
            "target": metric.target.text, "minimum": metric.minimum.text,
            "status": table("status_words")[metric.status]}


def scorecard_text(card: Scorecard, tz: tzinfo | None = None) -> str:
    weeks = [{"number": w.number, "label": w.period.label, "breaches": [w.describe(g) for g in w.breached],
              "state": w.state} for w in card.weeks]
    return render("review/scorecard.txt.j2",
        title=words("scorecard_title", start=card.start.isoformat(), end=card.end.isoformat()),
        context=wording.context(card.reps, card.as_of, tz), metrics=[_metric_row(m) for m in card.metrics],
        weeks=weeks, verdict=table("verdict_words")[card.verdict], reasons=card.reasons,
        to_come=[w.number for w in card.weeks if w.state != "done"],
    ).strip() + "\n"


def scorecard_json(card: Scorecard) -> dict[str, Any]:
    before, after = card.self_serve
    return {
        "start": card.start.isoformat(), "end": card.end.isoformat(), "reps": card.reps,
        "as_of": card.as_of.isoformat() if card.as_of else None,
        "metrics": [{"name": m.name, "label": m.label, "value": plain(m.value), "unit": m.unit, "counts": m.counts,
                     "target": m.target.spec, "minimum": m.minimum.spec, "status": m.status} for m in card.metrics],
        "weeks": [{"week": w.number, "start": w.period.start.isoformat(), "end": w.period.end.isoformat(),
                   "values": {k: plain(v) for k, v in w.values.items()}, "breaches": w.breached, "state": w.state}
                  for w in card.weeks],
        "complete": card.complete,
        "self_serve": {"weeks_1_2": plain(before), "weeks_3_4": plain(after)},
        "verdict": card.verdict,
        "reasons": card.reasons,
    }


def scorecard_csv(card: Scorecard) -> str:
    """Rows: each success metric (value, target, minimum viable, status), each week's guardrails (breached or
    ok), then the verdict."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "value", "target", "minimum_viable", "status"])
    for m in card.metrics:
        writer.writerow([m.name, "" if m.value is None else plain(m.value), m.target.spec, m.minimum.spec, m.status])
    for week in card.weeks:
        for guardrail in GUARDRAILS:
            value = week.values.get(guardrail)
            status = "breached" if guardrail in week.breached else "no_data" if value is None else "ok"
            writer.writerow([f"week{week.number}.{guardrail}", "" if value is None else plain(value),
                             GUARDRAIL_SPECS[guardrail], "", status])
    writer.writerow(["verdict", card.verdict, "", "", " | ".join(card.reasons)])
    return out.getvalue()
