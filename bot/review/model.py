"""The weekly review as data: a `Review` of `Figure`s grouped by seed 002's Friday agenda, and its action items.

`build(metrics)` turns a `Metrics` (bot/services/metrics.py) into a `Review` in one step per agenda section,
each figure marked against its pilot target (bot/domain/targets.py):

- `volume`: PQLs by tier, PQLs per rep per business day against the daily cap, open leads per rep;
- `acceptance`: acceptance, false positives, the dispositions, SLA compliance and time to first touch by tier;
- `signals`: each signal's acceptance (which predict, which are noise), the cohorts' trial-to-paid, the dark
  funnel and the assisted-conversion lift (is the touch needed at all, seed 000);
- `outreach`: reply rate overall and by email variant, meeting rate, assisted conversion and MRR, complaints;

then the action items (bot/review/actions.py). Pure: no store, no Slack, no rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from bot.domain import targets as bars
from bot.domain.kit import DISPOSITION_LABELS
from bot.domain.lifecycle import TIERS
from bot.domain.periods import period_key
from bot.domain.targets import Target
from bot.review import wording
from bot.review.actions import action_items
from bot.review.wording import FIRST_TOUCH_HOURS, fmt, plain, share_of, table, words
from bot.services.metrics import Metrics

#: The agenda's sections, in the order the meeting takes them; the action items come fifth.
SECTIONS = ("volume", "acceptance", "signals", "outreach")


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
        return {"section": self.section, "name": self.name, "label": self.label, "value": plain(self.value),
                "unit": self.unit, "target": self.target.spec if self.target else None, "status": self.status,
                "detail": self.detail}


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
        return wording.context(self.metrics.reps, self.as_of, tz, self.metrics.to_come)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


def build(m: Metrics, *, cap: int = 5, as_of: datetime | None = None,
          workday: Callable[[date], bool] = lambda day: day.weekday() < 5) -> Review:
    """The review of `m`; `cap` is each rep's daily cap, `workday` says which days count for volume runs."""
    figures = [*volume(m, cap), *acceptance(m), *signals(m), *outreach(m)]
    return Review(m, figures, conclude(action_items(m, cap, workday), figures), cap, as_of)


def conclude(items: list[str], figures: list[Figure]) -> list[str]:
    """The action items, never saying all is well beside a flagged figure: when no item was called for (each
    flagged figure stood on too few leads), the flagged figures are named instead."""
    flagged = [f.label for f in figures if f.status == "warn" and f.shown]
    if items != [words("act_all_good")] or not flagged:
        return items
    names = "; ".join(flagged[:-1]) + f" and {flagged[-1]}" if len(flagged) > 1 else flagged[0]
    return [words("act_flagged", names=names, count=len(flagged))]


@dataclass
class _Section:
    """The figures of one agenda section, labelled from templates/review/words.j2 unless given a label."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=lambda: table("labels"))

    def add(self, name: str, value, unit: str, target: Target | None = None, *, label: str | None = None,
            **extra) -> None:
        self.figures.append(Figure(self.name, name, label or self.labels[name], value, unit, target, **extra))


def volume(m: Metrics, cap: int) -> list[Figure]:
    """1. Volume: PQLs by tier (user leads merged into account leads said beside, not counted), PQLs per rep per
    business day against the cap, open leads per rep."""
    out = _Section("volume")
    out.add("pqls", m.pqls, "count", detail=words("pqls_merged", merged=m.merged) if m.merged else None)
    for tier in TIERS:
        out.add(f"pqls.{tier}", m.by_tier.get(tier, 0), "count", indent=True)
    out.add("per_rep_per_day", m.per_rep_per_day, "per_day", Target("<=", cap, "per_day"))
    out.add("utilization", m.utilization, "leads", bars.UTILIZATION)
    return out.figures


def acceptance(m: Metrics) -> list[Figure]:
    """2. Acceptance: acceptance and false positives of the dispositioned, each disposition, SLA compliance and
    the mean time to first touch of each tier that had leads."""
    out = _Section("acceptance")
    out.add("acceptance", m.acceptance, "rate", bars.ACCEPTANCE.target,
            detail=share_of(m.accepted, m.decided, "worked and dispositioned"))
    out.add("false_positive", m.false_positive, "rate", bars.FALSE_POSITIVE,
            detail=share_of(m.disqualified, m.decided, "worked and dispositioned"))
    for key in DISPOSITION_LABELS:
        if m.dispositions.get(key):
            out.add(f"dispositions.{key}", m.dispositions[key], "count", indent=True)
    out.add("sla", m.sla_compliance, "rate", bars.SLA_COMPLIANCE.target, detail=share_of(m.sla_met, m.sla_due, "due"))
    for tier in TIERS:
        mean = m.first_touch_hours.get(tier, (None, None))[0]
        if mean is not None or m.by_tier.get(tier):
            out.add(f"first_touch_hours.{tier}", mean, "hours", Target("<", FIRST_TOUCH_HOURS[tier], "hours"))
    return out.figures


def signals(m: Metrics) -> list[Figure]:
    """3. Signals: which predict and which are noise (each signal's acceptance, with its PQLs, false positives and
    conversion in JSON and CSV), then whether the touch is needed at all (seed 000): trial-to-paid of the PQL and
    non-PQL cohorts, the dark funnel and the assisted-conversion lift."""
    out = _Section("signals")
    labels = out.labels
    for signal in m.signals:
        name = words("signal_name", name=signal.signal)
        base = f"signal.{signal.signal}"
        # With nothing dispositioned there is no share disqualified to give ("no data disqualified" said nothing).
        disqualified = (f"{fmt(signal.false_positive, 'rate')} {labels['signal.false_positive']}, "
                        if signal.decided else "")
        detail = (f"{signal.pqls} PQL{'s' * (signal.pqls != 1)}, {signal.decided} dispositioned, {disqualified}"
                  f"{fmt(signal.conversion, 'rate')} {labels['signal.conversion']}")
        out.add(f"{base}.acceptance", signal.acceptance, "rate", bars.ACCEPTANCE.target,
                label=f"{name} · {labels['signal.acceptance']}", detail=detail)
        out.add(f"{base}.pqls", signal.pqls, "count", label=f"{name} · {labels['signal.pqls']}", shown=False)
        out.add(f"{base}.false_positive", signal.false_positive, "rate", bars.FALSE_POSITIVE,
                label=f"{name} · {labels['signal.false_positive']}", shown=False)
        out.add(f"{base}.conversion", signal.conversion, "rate",
                label=f"{name} · {labels['signal.conversion']}", shown=False)
    advice = table("recommendations")
    for row in m.triggers:
        interval = row.interval
        out.add(f"trigger.{row.name}.conversion", row.conversion_rate, "rate", label=words("trigger_label",
                name=row.name), detail=words(
                    "trigger_detail", converted=row.converted, fired=row.fired,
                    interval=f"{interval[0]:.0%}-{interval[1]:.0%}" if interval else None,
                    dark=fmt(row.dark_funnel_rate, "rate") + (f" ({row.alone_converted} of {row.fired})"
                                                               if row.dark_funnel_rate is not None else ""),
                    lift=fmt(row.assisted_lift, "pp") + (f" ({row.contacted_converted} of {row.contacted} contacted "
                                                         f"converted, {row.alone_converted} of {row.alone} not)"
                                                         if row.assisted_lift is not None else ""),
                    advice=advice[row.recommendation.value]))
    out.add("pql_conversion", m.pql_conversion, "rate", bars.PQL_CONVERSION.target,
            detail=share_of(m.pql_converted, m.pql_cohort, "trials"))
    out.add("non_pql_conversion", m.non_pql_conversion, "rate", detail=share_of(m.non_pql_converted, m.non_pql_cohort,
                                                                           "trials"))
    out.add("dark_funnel", m.dark_funnel, "rate", detail=share_of(m.dark, m.routed_converted, "routed and converted"))
    out.add("assisted_lift", m.assisted_lift, "pp", bars.ASSISTED_LIFT, detail=_lift_detail(m))
    return out.figures


def outreach(m: Metrics) -> list[Figure]:
    """4. Outreach: email reply rate overall and by variant (with each variant's sends and meeting rate), meeting
    rate, sales-assisted conversion and its MRR, and opt-outs after outreach."""
    out = _Section("outreach")
    labels = out.labels
    out.add("reply_rate", m.reply_rate, "rate", bars.REPLY_RATE.target, detail=share_of(m.replied, m.emails, "emails"))
    for variant, row in m.variants.items():
        name = words("variant_name", variant=variant)
        base = f"variant.{variant}"
        out.add(f"{base}.reply_rate", row.get("reply_rate"), "rate", bars.REPLY_RATE.target,
                label=f"{name} · {labels['variant.reply_rate']}", indent=True,
                detail=f"{row.get('sent', 0)} {labels['variant.sent']}, {labels['variant.meeting_rate']} "
                       f"{fmt(row.get('meeting_rate'), 'rate')}")
        out.add(f"{base}.sent", row.get("sent", 0), "count", label=f"{name} · {labels['variant.sent']}", shown=False)
        out.add(f"{base}.meeting_rate", row.get("meeting_rate"), "rate", bars.MEETING_RATE.target,
                label=f"{name} · {labels['variant.meeting_rate']}", shown=False)
    out.add("meeting_rate", m.meeting_rate, "rate", bars.MEETING_RATE.target,
            detail=share_of(m.meetings, m.contacted, "contacted"))
    out.add("assisted_conversion", m.contacted_conversion, "rate", bars.ASSISTED_CONVERSION,
            detail=share_of(m.assisted_conversions, m.contacted, "contacted"))
    out.add("assisted_mrr", m.assisted_mrr, "money")
    out.add("touches_to_conversion", m.touches_to_conversion, "touches",
            detail=f"{m.assisted_conversions} converted after a touch" if m.assisted_conversions else None)
    out.add("nps_pql", m.nps_pql, "points", detail=_answers(m.nps_pql_answers))
    out.add("nps_rest", m.nps_rest, "points", detail=_answers(m.nps_rest_answers))
    out.add("complaints", m.complaints, "rate", bars.COMPLAINTS.target,
            detail=share_of(m.opt_outs, m.contacted, "contacted"))
    return out.figures


def _answers(count: int) -> str | None:
    return f"{count} answer{'s' * (count != 1)}" if count else None


def _lift_detail(m: Metrics) -> str | None:
    if m.contacted_conversion is None or m.uncontacted_conversion is None:
        return None
    return (f"{fmt(m.contacted_conversion, 'rate')} of {m.contacted} contacted vs "
            f"{fmt(m.uncontacted_conversion, 'rate')} of {m.uncontacted} not")
