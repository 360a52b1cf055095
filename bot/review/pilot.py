"""The 4-week pilot scorecard (seed 002, section 8): each success metric against its target and minimum viable,
the guardrails week by week, and the verdict (Scale, Iterate or Pause) with its reasons.

`score(...)` is pure: it is given the pilot's figures (`periods(start)` names the spans they cover) and returns a
`Scorecard`; bot/review/load.py reads them from the store. The bars are bot/domain/targets.py's and the volume
guardrail is bot/domain/guardrails.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.domain import guardrails
from bot.domain import targets as bars
from bot.domain.guardrails import VOLUME_STREAK
from bot.domain.periods import Period
from bot.domain.targets import Target
from bot.review.actions import busy_runs
from bot.review.wording import fmt, share_of, table, words
from bot.services.metrics import Metrics

#: The scale trigger's bars: the minimum viable values of trial-to-paid and acceptance, and a sustainable SLA.
SCALE_CONVERSION = bars.PQL_CONVERSION.minimum_viable.value
SCALE_ACCEPTANCE = bars.ACCEPTANCE.minimum_viable.value
SUSTAINABLE_SLA = bars.SLA_COMPLIANCE.minimum_viable.value
SELF_SERVE_TOLERANCE = -bars.SELF_SERVE_CHANGE.minimum_viable.value  # "no decline > 1 percentage point"
GUARDRAILS = ("volume", "acceptance", "complaints", "sla")
#: Each guardrail as the CSV states it.
GUARDRAIL_SPECS = {"volume": f">{guardrails.VOLUME_PER_REP} for {VOLUME_STREAK}+ days",
                   "acceptance": f"<{bars.ACCEPTANCE_GUARDRAIL:g} for 2 weeks",
                   "complaints": f">{bars.COMPLAINTS_GUARDRAIL:g}", "sla": f"<{bars.SLA_GUARDRAIL:g}"}


@dataclass
class SuccessMetric:
    name: str
    value: float | None
    unit: str
    target: Target
    minimum: Target
    counts: str | None = None  # what the value is made of ("1 of 16 trials"), beside it

    @property
    def label(self) -> str:
        return table("metric_labels")[self.name]

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
    state: str = "done"  # done | under_way | to_come, as of the scorecard's day


    @property
    def period(self) -> Period:
        return self.metrics.period

    def describe(self, guardrail: str) -> str:
        unit = "per_day" if guardrail == "volume" else "rate"
        return f"{table('guardrail_labels')[guardrail]} ({fmt(self.values.get(guardrail), unit)})"


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

    @property
    def complete(self) -> bool:
        """Whether the four weeks are over: until then the verdict is the one so far."""
        return all(week.state == "done" for week in self.weeks)

    def metric(self, name: str) -> SuccessMetric:
        return next(m for m in self.metrics if m.name == name)


@dataclass(frozen=True)
class Periods:
    """The spans a pilot from `start` is judged over."""

    overall: Period  # the 28 days
    weeks: list[Period]  # weeks 1-4, each 7 days from `start`
    early: Period  # weeks 1-2 and 3-4: self-serve conversion before and after
    late: Period


def periods(start: date) -> Periods:
    end = start + timedelta(days=27)
    weeks = [Period(start + timedelta(days=7 * n), start + timedelta(days=7 * n + 6)) for n in range(4)]
    return Periods(Period(start, end), weeks, Period(start, start + timedelta(days=13)),
                   Period(start + timedelta(days=14), end))


def score(overall: Metrics, weeks: list[Metrics], early: Metrics, late: Metrics, *, reps: int,
          workday: Callable[[date], bool], as_of: datetime | None = None, today: date | None = None) -> Scorecard:
    """The pilot's scorecard from its figures over `periods(start)`: `overall`, each week, and weeks 1-2 and 3-4
    (`early`, `late`); `workday` says which days count for the volume guardrail; `today` (the team's date as of
    `as_of`): weeks after it are to come, not weeks without breaches (None: all four are over)."""
    pilot_weeks = [PilotWeek(n + 1, m, state=_state(m.period, today)) for n, m in enumerate(weeks)]
    _guardrails(pilot_weeks, overall, reps, workday)
    before, after = early.non_pql_conversion, late.non_pql_conversion
    change = after - before if before is not None and after is not None else None
    o = overall
    # Each rate with the counts it is made of, as the weekly review gives them.
    rates = [("pql_conversion", o.pql_conversion, bars.PQL_CONVERSION, o.pql_converted, o.pql_cohort, "trials"),
             ("acceptance", o.acceptance, bars.ACCEPTANCE, o.accepted, o.decided, "worked and dispositioned"),
             ("sla", o.sla_compliance, bars.SLA_COMPLIANCE, o.sla_met, o.sla_due, "due"),
             ("meeting_rate", o.meeting_rate, bars.MEETING_RATE, o.meetings, o.contacted, "contacted"),
             ("reply_rate", o.reply_rate, bars.REPLY_RATE, o.replied, o.emails, "emails"),
             ("complaints", o.complaints, bars.COMPLAINTS, o.opt_outs, o.contacted, "contacted")]
    metrics = [SuccessMetric(name, value, "rate", *_bars(bar), share_of(part, whole, what))
               for name, value, bar, part, whole, what in rates]
    metrics += [SuccessMetric("self_serve", change, "pp", *_bars(bars.SELF_SERVE_CHANGE)),
                SuccessMetric("nps", o.nps_change, "points", *_bars(bars.NPS_CHANGE))]
    verdict, reasons = _verdict(overall, pilot_weeks, before, after, change)
    return Scorecard(overall.period.start, overall.period.end, reps, overall, pilot_weeks, metrics, (before, after),
                     verdict, reasons, as_of)


def _state(period: Period, today: date | None) -> str:
    if today is None or period.end < today:
        return "done"
    return "to_come" if period.start > today else "under_way"


def _bars(metric: bars.Bars) -> tuple[Target, Target]:
    return metric.target, metric.minimum_viable


def _guardrails(weeks: list[PilotWeek], overall: Metrics, reps: int, workday: Callable[[date], bool]) -> None:
    runs = busy_runs(overall.daily, reps, workday)
    # A run breaches from its third day on, in whichever week that day falls.
    breaching_days = {day for run in runs for day in run[VOLUME_STREAK - 1:]}
    previous: PilotWeek | None = None
    for week in weeks:
        m = week.metrics
        workdays = [d for d in week.period.days() if workday(d)]
        week.values = {
            "volume": max((sum(m.daily.get(d, {}).values()) / reps for d in workdays), default=None) if reps else None,
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
    labels = table("metric_labels")

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
                           minimum=fmt(SCALE_CONVERSION, "rate")))
    if acceptance is not None and acceptance < SCALE_ACCEPTANCE:
        pause.append(words("reason_missed_minimum", label=labels["acceptance"], value=fmt(acceptance, "rate"),
                           minimum=fmt(SCALE_ACCEPTANCE, "rate")))
    pause += [words("reason_week4_breach", breach=weeks[3].describe(g)) for g in weeks[3].breached]
    if pause:
        return "Pause", pause
    return "Iterate", [sentence for holds, sentence in conditions if not holds]
