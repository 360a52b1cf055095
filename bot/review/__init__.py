"""The weekly PQL review and the 4-week pilot scorecard: what the Friday meeting reads.

`build(metrics)` turns a `Metrics` (bot/metrics.py) into a `Review`: figures grouped by seed 002's Friday
agenda (Volume, Acceptance, Signals, Outreach), each marked against its pilot target, and the action items
the numbers call for. One `Review` renders as Block Kit (the Slack review, with a Share button when it is
shown privately), text (`pqlbot review`), JSON and CSV (one row per figure: name, value, target, status).

`scorecard(...)` scores the pilot's four weeks against seed 002 section 8: each success metric against its
target and minimum viable, guardrail breaches week by week, and the verdict (Scale, Iterate or Pause) with
its reasons.

A figure with nothing to divide by is None and reads "no data": nothing here divides by zero, and an empty
week is a review that says so. The words live in templates/review/*.j2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from sqlmodel import Session, select

from bot.domain import guardrails
from bot.domain import targets as bars
from bot.domain.business_time import BusinessCalendar
from bot.domain.guardrails import VOLUME_STREAK
from bot.domain.kit import DISPOSITION_LABELS
from bot.domain.lifecycle import TIERS
from bot.domain.periods import Period, parse_period, period_key
from bot.domain.sla import FIRST_TOUCH
from bot.domain.targets import Target
from bot.services.metrics import Metrics, compute
from bot.slack.ids import Action
from bot.store.models import Rep
from templates import ENV, clip, esc, sentences
from templates import table as _word_table

#: Seed 002's time-to-first-touch targets in business hours, from the SLA table (bot/domain/sla.py).
FIRST_TOUCH_HOURS = {tier: due.total_seconds() / 3600 for tier, due in FIRST_TOUCH.items()}
SIGNALS_SHOWN = 10  # signals listed in Slack and text; JSON and CSV carry all of them
# Slack limits (see bot/slack/blocks.py).
SECTION_MAX, HEADER_MAX, CONTEXT_MAX = 3000, 150, 2000


#: One sentence of templates/review/words.j2, on one line.
words = sentences("review/words.j2")


def _table(name: str) -> dict[str, str]:
    return _word_table("review/words.j2", name)


# Numbers -----------------------------------------------------------------------------------------------------

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


@dataclass
class Figure:
    section: str  # volume | acceptance | signals | outreach
    name: str  # stable key: acceptance, pqls.high, signal.invite_sent.acceptance
    label: str
    value: float | int | None
    unit: str  # count | rate | pp | hours | per_day | leads | money
    target: Target | None = None
    detail: str | None = None  # "6 of 11 dispositioned"
    indent: bool = False  # a breakdown of the figure above it
    shown: bool = True  # False: in JSON and CSV only (its value is in another figure's detail)

    @property
    def status(self) -> str:
        """ok | warn (misses its target) | no_data | info (no target)."""
        if self.value is None:
            return "no_data"
        if self.target is None:
            return "info"
        return "ok" if self.target.met(self.value) else "warn"

    @property
    def text(self) -> str:
        return fmt(self.value, self.unit)

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.name, "label": self.label, "value": _plain(self.value),
                "unit": self.unit, "target": self.target.spec if self.target else None, "status": self.status,
                "detail": self.detail}


def _plain(value: float | int | None) -> float | int | None:
    return round(value, 4) if isinstance(value, float) else value


def _of(part: int, whole: int, what: str) -> str | None:
    return f"{part} of {whole} {what}" if whole else None


def roster_size(session: Session, fallback: int = 0) -> int:
    """Reps on the roster in the store, else `fallback` (the PQL_REPS list before anything synced it)."""
    count = session.exec(select(sa.func.count()).select_from(Rep).where(Rep.on_roster)).one()
    return count or fallback


# The review --------------------------------------------------------------------------------------------------

@dataclass
class Review:
    metrics: Metrics
    figures: list[Figure]
    actions: list[str]
    cap: int
    as_of: datetime | None = None

    @property
    def key(self) -> str:
        return period_key(self.metrics.period)

    @property
    def title(self) -> str:
        return words("title", label=self.metrics.period.label)

    def context(self, tz: tzinfo | None = None) -> str:
        as_of = self.as_of.astimezone(tz) if self.as_of and tz else self.as_of
        when = f"{as_of:%a} {as_of.day} {as_of:%b %H:%M}" if as_of else "now"
        return words("context", reps=self.metrics.reps, as_of=when)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


def build(m: Metrics, *, cap: int = 5, as_of: datetime | None = None,
          workday: Callable[[date], bool] = lambda day: day.weekday() < 5) -> Review:
    """The review of `m`; `cap` is each rep's daily cap, `workday` says which days count for volume runs."""
    labels = _table("labels")
    figures: list[Figure] = []

    def add(section: str, name: str, value, unit: str, target: Target | None = None, *, label: str | None = None,
            **extra) -> None:
        figures.append(Figure(section, name, label or labels[name], value, unit, target, **extra))

    # 1. Volume
    add("volume", "pqls", m.pqls, "count")
    for tier in TIERS:
        add("volume", f"pqls.{tier}", m.by_tier.get(tier, 0), "count", indent=True)
    add("volume", "per_rep_per_day", m.per_rep_per_day, "per_day", Target("<=", cap, "per_day"))
    add("volume", "utilization", m.utilization, "leads", bars.UTILIZATION)

    # 2. Acceptance
    decided = sum(m.dispositions.values())
    accepted = m.dispositions.get("meeting_set", 0) + m.dispositions.get("converted_self_serve", 0)
    add("acceptance", "acceptance", m.acceptance, "rate", bars.ACCEPTANCE.target,
        detail=_of(accepted, decided, "dispositioned"))
    add("acceptance", "false_positive", m.false_positive, "rate", bars.FALSE_POSITIVE,
        detail=_of(m.dispositions.get("disqualified", 0), decided, "dispositioned"))
    for key in DISPOSITION_LABELS:
        if m.dispositions.get(key):
            add("acceptance", f"dispositions.{key}", m.dispositions[key], "count", indent=True)
    add("acceptance", "sla", m.sla_compliance, "rate", bars.SLA_COMPLIANCE.target)
    for tier in TIERS:
        mean = m.first_touch_hours.get(tier, (None, None))[0]
        if mean is not None or m.by_tier.get(tier):
            add("acceptance", f"first_touch_hours.{tier}", mean, "hours", Target("<", FIRST_TOUCH_HOURS[tier], "hours"))

    # 3. Signals: which predict, which are noise, and whether the touch is needed at all (seed 000)
    for signal in m.signals:
        name = words("signal_name", name=signal.signal)
        base = f"signal.{signal.signal}"
        detail = (f"{signal.pqls} PQL{'s' * (signal.pqls != 1)}, {signal.decided} dispositioned, "
                  f"{fmt(signal.false_positive, 'rate')} "
                  f"{labels['signal.false_positive']}, {fmt(signal.conversion, 'rate')} {labels['signal.conversion']}")
        add("signals", f"{base}.acceptance", signal.acceptance, "rate", bars.ACCEPTANCE.target,
            label=f"{name} · {labels['signal.acceptance']}", detail=detail)
        add("signals", f"{base}.pqls", signal.pqls, "count", label=f"{name} · {labels['signal.pqls']}", shown=False)
        add("signals", f"{base}.false_positive", signal.false_positive, "rate", bars.FALSE_POSITIVE,
            label=f"{name} · {labels['signal.false_positive']}", shown=False)
        add("signals", f"{base}.conversion", signal.conversion, "rate",
            label=f"{name} · {labels['signal.conversion']}", shown=False)
    add("signals", "pql_conversion", m.pql_conversion, "rate", bars.PQL_CONVERSION.target)
    add("signals", "non_pql_conversion", m.non_pql_conversion, "rate")
    add("signals", "dark_funnel", m.dark_funnel, "rate")
    add("signals", "assisted_lift", m.assisted_lift, "pp", bars.ASSISTED_LIFT,
        detail=_lift_detail(m))

    # 4. Outreach
    add("outreach", "reply_rate", m.reply_rate, "rate", bars.REPLY_RATE.target)
    for variant, row in m.variants.items():
        name = words("variant_name", variant=variant)
        base = f"variant.{variant}"
        add("outreach", f"{base}.reply_rate", row.get("reply_rate"), "rate", bars.REPLY_RATE.target,
            label=f"{name} · {labels['variant.reply_rate']}", indent=True,
            detail=f"{row.get('sent', 0)} {labels['variant.sent']}, {labels['variant.meeting_rate']} "
                   f"{fmt(row.get('meeting_rate'), 'rate')}")
        add("outreach", f"{base}.sent", row.get("sent", 0), "count", label=f"{name} · {labels['variant.sent']}",
            shown=False)
        add("outreach", f"{base}.meeting_rate", row.get("meeting_rate"), "rate", bars.MEETING_RATE.target,
            label=f"{name} · {labels['variant.meeting_rate']}", shown=False)
    add("outreach", "meeting_rate", m.meeting_rate, "rate", bars.MEETING_RATE.target)
    add("outreach", "assisted_conversion", m.contacted_conversion, "rate", bars.ASSISTED_CONVERSION,
        detail=_of(m.assisted_conversions, m.contacted, "contacted"))
    add("outreach", "assisted_mrr", m.assisted_mrr, "money")
    add("outreach", "complaints", m.complaints, "rate", bars.COMPLAINTS.target,
        detail=_of(m.opt_outs, m.contacted, "contacted"))

    return Review(m, figures, _actions(m, cap, workday), cap, as_of)


def _lift_detail(m: Metrics) -> str | None:
    if m.contacted_conversion is None or m.uncontacted_conversion is None:
        return None
    return f"{fmt(m.contacted_conversion, 'rate')} vs {fmt(m.uncontacted_conversion, 'rate')}"


def busy_runs(daily: dict[date, dict[str, int]], reps: int, workday: Callable[[date], bool]) -> list[list[date]]:
    """The volume guardrail's runs (bot/domain/guardrails.py) over a review's days, counted from its tiers."""
    return guardrails.busy_runs({day: sum(tiers.values()) for day, tiers in daily.items()}, reps, workday)


def _actions(m: Metrics, cap: int, workday: Callable[[date], bool]) -> list[str]:
    """What the numbers call for, most pressing first (seed 002 agenda item 5 and escalation triggers)."""
    items: list[str] = []
    if m.pqls == 0:
        items.append(words("act_no_pqls"))
    elif m.per_rep_per_day is not None and m.per_rep_per_day * m.reps < bars.LOW_VOLUME_PER_DAY:
        items.append(words("act_low_volume", per_day=fmt(m.per_rep_per_day * m.reps, "per_day")))
    for run in busy_runs(m.daily, m.reps, workday):
        peak = max(sum(m.daily[day].values()) for day in run) / m.reps
        items.append(words("act_volume_guardrail", days=len(run), peak=fmt(peak, "per_day")))
    if m.per_rep_per_day is not None and m.per_rep_per_day > cap:
        items.append(words("act_over_capacity", value=fmt(m.per_rep_per_day, "per_day"), cap=cap))
    if m.utilization is not None and not bars.UTILIZATION.met(m.utilization):
        items.append(words("act_utilization", value=fmt(m.utilization, "leads")))
    if m.acceptance is not None and m.acceptance < bars.ACCEPTANCE_ESCALATION:
        items.append(words("act_acceptance_critical", value=fmt(m.acceptance, "rate")))
    elif m.acceptance is not None and not bars.ACCEPTANCE.target.met(m.acceptance):
        items.append(words("act_acceptance", value=fmt(m.acceptance, "rate")))
    noisy = [s for s in m.signals if s.decided >= bars.NOISY_MIN_DECIDED and s.acceptance is not None
             and not bars.ACCEPTANCE.target.met(s.acceptance)]
    for signal in sorted(noisy, key=lambda s: (s.acceptance, -(s.false_positive or 0)))[:3]:
        items.append(words("act_noisy_signal", signal=words("signal_name", name=signal.signal),
                           acceptance=fmt(signal.acceptance, "rate"), false_positive=fmt(signal.false_positive, "rate"),
                           decided=signal.decided))
    if m.false_positive is not None and not bars.FALSE_POSITIVE.met(m.false_positive):
        items.append(words("act_false_positive", value=fmt(m.false_positive, "rate")))
    if m.sla_compliance is not None and m.sla_compliance < bars.SLA_ESCALATION:
        items.append(words("act_sla", value=fmt(m.sla_compliance, "rate")))
    for tier in TIERS:
        mean = m.first_touch_hours.get(tier, (None, None))[0]
        if mean is not None and mean >= FIRST_TOUCH_HOURS[tier]:
            items.append(words("act_first_touch", tier=tier.replace("_", " "), hours=f"{mean:.1f}",
                               target=f"{FIRST_TOUCH_HOURS[tier]:g} h"))
    if m.reply_rate is not None and not bars.REPLY_RATE.target.met(m.reply_rate):
        replied = {v: row["reply_rate"] for v, row in m.variants.items() if row.get("reply_rate")}
        items.append(words("act_reply_rate", value=fmt(m.reply_rate, "rate"),
                           best=max(replied, key=replied.get) if replied else None))
    if m.meeting_rate is not None and not bars.MEETING_RATE.target.met(m.meeting_rate):
        items.append(words("act_meeting_rate", value=fmt(m.meeting_rate, "rate")))
    if m.dark_funnel is not None and m.dark_funnel >= bars.DARK_FUNNEL_HIGH:
        items.append(words("act_dark_funnel", value=fmt(m.dark_funnel, "rate")))
    if m.assisted_lift is not None and not bars.ASSISTED_LIFT.met(m.assisted_lift):
        items.append(words("act_no_lift", value=fmt(m.assisted_lift, "pp")))
    if m.complaints is not None and not bars.COMPLAINTS.target.met(m.complaints):
        items.append(words("act_complaints", value=fmt(m.complaints, "rate")))
    if not items:
        items.append(words("act_all_good"))
    return items


def _rows(review: Review) -> list[dict[str, Any]]:
    """The shown figures by section, ready for a template or for Slack lines."""
    marks, titles = _table("marks"), _table("sections")
    sections = []
    for key in ("volume", "acceptance", "signals", "outreach"):
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
        sections.append({"key": key, "title": titles[key], "rows": rows})
    return sections


# Renderings --------------------------------------------------------------------------------------------------

def text(review: Review, tz: tzinfo | None = None) -> str:
    """For the terminal."""
    return ENV.get_template("review/review.txt.j2").render(
        title=review.title, context=review.context(tz), sections=_rows(review),
        actions_title=_table("sections")["actions"], actions=review.actions,
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
        "sla_by_day": {day.isoformat(): _plain(value) for day, value in sorted(m.sla_by_day.items())},
    }


def to_csv(review: Review) -> str:
    """One row per figure: name, value, target, status (rates as fractions, as the targets are)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "value", "target", "status"])
    for f in review.figures:
        writer.writerow([f.name, "" if f.value is None else _plain(f.value), f.target.spec if f.target else "",
                         f.status])
    return out.getvalue()


def _line(row: dict[str, Any]) -> str:
    detail = f" ({esc(row['detail'])})" if row["detail"] else ""
    target = f" · target {esc(row['target'])}" if row["target"] else ""
    lead = "      " if row["indent"] else ""
    return f"{lead}{row['mark']} *{esc(row['label'])}*: {esc(row['value'])}{detail}{target}"


def blocks(review: Review, *, share: bool = False, tz: tzinfo | None = None,
           note: str | None = None) -> tuple[str, list[dict]]:
    """(notification text, blocks). With `share`, a Share button (for the private copy); `note` is an
    extra context line (mrkdwn, e.g. who shared it)."""
    m = review.metrics
    out: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"📊 {review.title}", HEADER_MAX), emoji=True)),
        ContextBlock(elements=[MarkdownTextObject(text=clip(esc(review.context(tz)), CONTEXT_MAX))]),
    ]
    for section in _rows(review):
        lines = "\n".join(_line(row) for row in section["rows"])
        out.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*{section['title']}*\n{lines}", SECTION_MAX))))
    out.append(DividerBlock())
    items = "\n".join(f"• {esc(item)}" for item in review.actions)
    out.append(SectionBlock(text=MarkdownTextObject(
        text=clip(f"*{_table('sections')['actions']}*\n{items}", SECTION_MAX))))
    if note:
        out.append(ContextBlock(elements=[MarkdownTextObject(text=clip(note, CONTEXT_MAX))]))
    if share:
        out.append(ActionsBlock(elements=[ButtonElement(
            text=words("share_button"), action_id=str(Action.SHARE_REVIEW), value=review.key, style="primary")]))
    fallback = words("fallback", label=m.period.label, pqls=m.pqls, acceptance=fmt(m.acceptance, "rate"),
                     sla=fmt(m.sla_compliance, "rate"))
    return fallback, [b.to_dict() for b in out]


# From the store ----------------------------------------------------------------------------------------------

def review_for(session: Session, period: Period, *, calendar: BusinessCalendar, reps: int, cap: int,
               now: datetime) -> Review:
    m = compute(session, period, calendar=calendar, reps=reps, now=now)
    return build(m, cap=cap, as_of=now, workday=calendar.is_business_day)


def for_settings(session: Session, period: Period, *, settings, now: datetime) -> Review:
    """The review of `period` with the team's calendar, roster and cap (bot.settings.Settings)."""
    return review_for(session, period, calendar=settings.calendar,
                      reps=roster_size(session, len(settings.roster)), cap=settings.pql_daily_cap, now=now)


def render_review(session: Session, key: str, *, settings, now: datetime, share: bool = False,
                  note: str | None = None, chart: bool = True) -> tuple[str, list[dict], Path | None]:
    """(text, blocks, chart PNG path or None) for the period named `key` (2026-W45, a range, this, last).
    The caller owns the PNG (a temporary file) and removes it when done."""
    period = parse_period(key, today=now.astimezone(settings.tz).date())
    review = for_settings(session, period, settings=settings, now=now)
    fallback, rendered = blocks(review, share=share, tz=settings.tz, note=note)
    path = None
    if chart:
        from bot.review import chart as charts

        path = charts.render(review.metrics, cap=settings.pql_daily_cap)
    return fallback, rendered, path


# The pilot scorecard (seed 002, section 8) -------------------------------------------------------------------

#: The scale trigger's bars: the minimum viable values of trial-to-paid and acceptance, and a sustainable SLA.
SCALE_CONVERSION = bars.PQL_CONVERSION.minimum_viable.value
SCALE_ACCEPTANCE = bars.ACCEPTANCE.minimum_viable.value
SUSTAINABLE_SLA = bars.SLA_COMPLIANCE.minimum_viable.value
SELF_SERVE_TOLERANCE = -bars.SELF_SERVE_CHANGE.minimum_viable.value  # "no decline > 1 percentage point"
GUARDRAILS = ("volume", "acceptance", "complaints", "sla")


@dataclass
class SuccessMetric:
    name: str
    value: float | None
    unit: str
    target: Target
    minimum: Target

    @property
    def label(self) -> str:
        return _table("metric_labels")[self.name]

    @property
    def status(self) -> str:
        """target | minimum (met the minimum viable only) | missed | no_data."""
        if self.value is None:
            return "no_data"
        if self.target.met(self.value):
            return "target"
        return "minimum" if self.minimum.met(self.value) else "missed"


@dataclass
class PilotWeek:
    number: int  # 1..4
    metrics: Metrics
    values: dict[str, float | None] = field(default_factory=dict)  # guardrail -> the week's figure
    breached: list[str] = field(default_factory=list)  # guardrail names, in GUARDRAILS order

    @property
    def period(self) -> Period:
        return self.metrics.period

    def describe(self, guardrail: str) -> str:
        unit = "per_day" if guardrail == "volume" else "rate"
        return f"{_table('guardrail_labels')[guardrail]} ({fmt(self.values.get(guardrail), unit)})"


@dataclass
class Scorecard:
    start: date
    end: date
    reps: int
    overall: Metrics
    weeks: list[PilotWeek]
    metrics: list[SuccessMetric]
    self_serve: tuple[float | None, float | None]  # non-PQL conversion, weeks 1-2 and weeks 3-4
    verdict: str  # Scale | Iterate | Pause
    reasons: list[str]
    as_of: datetime | None = None

    def metric(self, name: str) -> SuccessMetric:
        return next(m for m in self.metrics if m.name == name)


def _bars(metric: bars.Bars) -> tuple[Target, Target]:
    return metric.target, metric.minimum_viable


def scorecard(session: Session, start: date, calendar: BusinessCalendar, reps: int, now: datetime) -> Scorecard:
    """The 4-week pilot from `start` against seed 002 section 8, and the verdict with its reasons."""
    end = start + timedelta(days=27)
    overall = compute(session, Period(start, end), calendar=calendar, reps=reps, now=now)
    weeks = [PilotWeek(n + 1, compute(session, Period(start + timedelta(days=7 * n), start + timedelta(days=7 * n + 6)),
                                      calendar=calendar, reps=reps, now=now)) for n in range(4)]
    early = compute(session, Period(start, start + timedelta(days=13)), calendar=calendar, reps=reps, now=now)
    late = compute(session, Period(start + timedelta(days=14), end), calendar=calendar, reps=reps, now=now)
    _guardrails(weeks, overall, reps, calendar)
    before, after = early.non_pql_conversion, late.non_pql_conversion
    change = after - before if before is not None and after is not None else None
    metrics = [
        SuccessMetric("pql_conversion", overall.pql_conversion, "rate", *_bars(bars.PQL_CONVERSION)),
        SuccessMetric("acceptance", overall.acceptance, "rate", *_bars(bars.ACCEPTANCE)),
        SuccessMetric("sla", overall.sla_compliance, "rate", *_bars(bars.SLA_COMPLIANCE)),
        SuccessMetric("meeting_rate", overall.meeting_rate, "rate", *_bars(bars.MEETING_RATE)),
        SuccessMetric("reply_rate", overall.reply_rate, "rate", *_bars(bars.REPLY_RATE)),
        SuccessMetric("complaints", overall.complaints, "rate", *_bars(bars.COMPLAINTS)),
        SuccessMetric("self_serve", change, "pp", *_bars(bars.SELF_SERVE_CHANGE)),
        SuccessMetric("nps", None, "points", *_bars(bars.NPS_CHANGE)),
    ]
    verdict, reasons = _verdict(overall, weeks, before, after, change)
    return Scorecard(start, end, reps, overall, weeks, metrics, (before, after), verdict, reasons, now)


def _guardrails(weeks: list[PilotWeek], overall: Metrics, reps: int, calendar: BusinessCalendar) -> None:
    runs = busy_runs(overall.daily, reps, calendar.is_business_day)
    # A run breaches from its third day on, in whichever week that day falls.
    breaching_days = {day for run in runs for day in run[VOLUME_STREAK - 1:]}
    previous: PilotWeek | None = None
    for week in weeks:
        m = week.metrics
        workdays = [d for d in week.period.days() if calendar.is_business_day(d)]
        week.values = {
            "volume": max((sum(m.daily[d].values()) / reps for d in workdays), default=None) if reps else None,
            "acceptance": m.acceptance, "complaints": m.complaints, "sla": m.sla_compliance,
        }
        if any(week.period.start <= day <= week.period.end for day in breaching_days):
            week.breached.append("volume")
        floor = bars.ACCEPTANCE_GUARDRAIL
        if (m.acceptance is not None and m.acceptance < floor and previous is not None
                and previous.metrics.acceptance is not None and previous.metrics.acceptance < floor):
            week.breached.append("acceptance")
        if m.complaints is not None and m.complaints > bars.COMPLAINTS_GUARDRAIL:
            week.breached.append("complaints")
        if m.sla_compliance is not None and m.sla_compliance < bars.SLA_GUARDRAIL:
            week.breached.append("sla")
        previous = week


def _verdict(overall: Metrics, weeks: list[PilotWeek], before: float | None, after: float | None,
             change: float | None) -> tuple[str, list[str]]:
    conversion, acceptance = overall.pql_conversion, overall.acceptance
    util, sla = overall.utilization, overall.sla_compliance
    late = [f"week {w.number}: {w.describe(g)}" for w in weeks[2:] for g in w.breached]
    workload_known = util is not None and sla is not None
    workload_ok = workload_known and bars.UTILIZATION.met(util) and sla >= SUSTAINABLE_SLA
    self_serve_ok = change is not None and change >= -SELF_SERVE_TOLERANCE
    labels = _table("metric_labels")

    def bar(name: str, value: float | None, floor: float) -> tuple[bool, str]:
        if value is None:
            return False, words("reason_unknown", what=labels[name])
        return value >= floor, words(f"reason_{name.removeprefix('pql_')}", value=fmt(value, "rate"),
                                     met=value >= floor)

    # (holds, sentence) per scale-trigger condition, in the seed's order
    conditions = [
        bar("pql_conversion", conversion, SCALE_CONVERSION),
        bar("acceptance", acceptance, SCALE_ACCEPTANCE),
        (not late, words("reason_late_breaches", breaches="; ".join(late))),
        (workload_ok, words("reason_workload", utilization=fmt(util, "leads"), sla=fmt(sla, "rate"), met=workload_ok)
         if workload_known else words("reason_unknown", what=labels["workload"])),
        (self_serve_ok, words("reason_self_serve", before=fmt(before, "rate"), after=fmt(after, "rate"),
                              change=fmt(change, "pp"), met=self_serve_ok)
         if change is not None else words("reason_unknown", what=labels["self_serve"])),
    ]
    if all(holds for holds, _ in conditions):
        return "Scale", [sentence for _, sentence in conditions]

    pause = []
    if conversion is not None and conversion < SCALE_CONVERSION:
        pause.append(words("reason_missed_minimum", label=labels["pql_conversion"], value=fmt(conversion, "rate"),
                           minimum="12%"))
    if acceptance is not None and acceptance < SCALE_ACCEPTANCE:
        pause.append(words("reason_missed_minimum", label=labels["acceptance"], value=fmt(acceptance, "rate"),
                           minimum="40%"))
    pause += [words("reason_week4_breach", breach=weeks[3].describe(g)) for g in weeks[3].breached]
    if pause:
        return "Pause", pause
    return "Iterate", [sentence for holds, sentence in conditions if not holds]


def _metric_row(metric: SuccessMetric) -> dict[str, Any]:
    return {"label": metric.label, "value": fmt(metric.value, metric.unit), "target": metric.target.text,
            "minimum": metric.minimum.text, "status": _table("status_words")[metric.status]}


def scorecard_text(card: Scorecard, tz: tzinfo | None = None) -> str:
    as_of = card.as_of.astimezone(tz) if card.as_of and tz else card.as_of
    context = words("context", reps=card.reps, as_of=f"{as_of:%a} {as_of.day} {as_of:%b %H:%M}" if as_of else "now")
    weeks = [{"number": w.number, "label": w.period.label, "breaches": [w.describe(g) for g in w.breached]}
             for w in card.weeks]
    return ENV.get_template("review/scorecard.txt.j2").render(
        title=words("scorecard_title", start=card.start.isoformat(), end=card.end.isoformat()), context=context,
        metrics=[_metric_row(m) for m in card.metrics], weeks=weeks, verdict=_table("verdict_words")[card.verdict],
        reasons=card.reasons,
    ).strip() + "\n"


def scorecard_json(card: Scorecard) -> dict[str, Any]:
    before, after = card.self_serve
    return {
        "start": card.start.isoformat(), "end": card.end.isoformat(), "reps": card.reps,
        "as_of": card.as_of.isoformat() if card.as_of else None,
        "metrics": [{"name": m.name, "label": m.label, "value": _plain(m.value), "unit": m.unit,
                     "target": m.target.spec, "minimum": m.minimum.spec, "status": m.status} for m in card.metrics],
        "weeks": [{"week": w.number, "start": w.period.start.isoformat(), "end": w.period.end.isoformat(),
                   "values": {k: _plain(v) for k, v in w.values.items()}, "breaches": w.breached}
                  for w in card.weeks],
        "self_serve": {"weeks_1_2": _plain(before), "weeks_3_4": _plain(after)},
        "verdict": card.verdict,
        "reasons": card.reasons,
    }


_GUARDRAIL_SPECS = {"volume": f">{guardrails.VOLUME_PER_REP} for {VOLUME_STREAK}+ days",
                    "acceptance": f"<{bars.ACCEPTANCE_GUARDRAIL:g} for 2 weeks",
                    "complaints": f">{bars.COMPLAINTS_GUARDRAIL:g}", "sla": f"<{bars.SLA_GUARDRAIL:g}"}


def scorecard_csv(card: Scorecard) -> str:
    """Rows: each success metric (value, target, minimum viable, status), each week's guardrails (breached or
    ok), then the verdict."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "value", "target", "minimum_viable", "status"])
    for m in card.metrics:
        writer.writerow([m.name, "" if m.value is None else _plain(m.value), m.target.spec, m.minimum.spec, m.status])
    for week in card.weeks:
        for guardrail in GUARDRAILS:
            value = week.values.get(guardrail)
            status = "breached" if guardrail in week.breached else "no_data" if value is None else "ok"
            writer.writerow([f"week{week.number}.{guardrail}", "" if value is None else _plain(value),
                             _GUARDRAIL_SPECS[guardrail], "", status])
    writer.writerow(["verdict", card.verdict, "", "", " | ".join(card.reasons)])
    return out.getvalue()
