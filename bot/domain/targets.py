"""Seed 002's bars, named for which bar they are (sections 5, 7 and 8).

Several metrics have two: the pilot's *target* and its *minimum viable* value (the success-metrics table). Some
also trigger something when crossed: an *escalation* (section 5, to the sales manager, weekly) or a *guardrail*
(section 8, judged over the pilot). The review, the Friday sweeps and the pilot scorecard all read them here.
"""

from __future__ import annotations

from dataclasses import dataclass

_SIGNS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


@dataclass(frozen=True)
class Target:
    """A bar a figure should clear: `op` is one of >=, >, <=, <; `label` replaces the rendered bar."""

    op: str
    value: float
    unit: str = "rate"
    label: str | None = None

    def met(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.value
        if self.op == ">":
            return value > self.value
        if self.op == "<=":
            return value <= self.value
        return value < self.value

    @property
    def text(self) -> str:
        """For people: "≥ 50%", "< 2 h", "≤ 5", "> 0 pp"."""
        if self.label:
            return self.label
        if self.unit in ("rate", "pp"):
            bar = f"{round(self.value * 100, 2):g}{'%' if self.unit == 'rate' else ' pp'}"
        else:
            bar = f"{self.value:g}{' h' if self.unit == 'hours' else ''}"
        return f"{_SIGNS[self.op]} {bar}"

    @property
    def spec(self) -> str:
        """For machines (JSON, CSV): ">=0.5", in the figure's own unit."""
        return f"{self.op}{self.value:g}"


@dataclass(frozen=True)
class Bars:
    """A success metric's target and minimum viable value (seed 002, section 8)."""

    target: Target
    minimum_viable: Target


# Success metrics: target, and minimum viable.
PQL_CONVERSION = Bars(Target(">=", 0.15), Target(">=", 0.12))
ACCEPTANCE = Bars(Target(">=", 0.50), Target(">=", 0.40))
SLA_COMPLIANCE = Bars(Target(">=", 0.80), Target(">=", 0.70))
MEETING_RATE = Bars(Target(">=", 0.20), Target(">=", 0.15))
REPLY_RATE = Bars(Target(">=", 0.15), Target(">=", 0.10))
COMPLAINTS = Bars(Target("<", 0.02), Target("<", 0.05))
SELF_SERVE_CHANGE = Bars(Target(">=", 0, "pp", "no decline"), Target(">=", -0.01, "pp", "no decline > 1 pp"))
NPS_CHANGE = Bars(Target(">=", 0, "points", "no decline"), Target(">=", -5, "points", "no decline > 5 points"))

# Weekly figures with a target only (dashboards 1-3).
FALSE_POSITIVE = Target("<", 0.20)
ASSISTED_CONVERSION = Target(">=", 0.12)
ASSISTED_LIFT = Target(">", 0, "pp")
#: Active leads per rep per day: "3-5 (not > 5)".
UTILIZATION = Target("<=", 5, "leads")

# Escalation triggers (section 5): the sales manager is told.
#: Acceptance under this two completed weeks running: re-evaluate the signal definitions.
ACCEPTANCE_ESCALATION = 0.30
#: SLA compliance under this in a completed week: investigate capacity or process.
SLA_ESCALATION = SLA_COMPLIANCE.target.value

# Guardrails (section 8), judged week by week over the pilot.
#: Acceptance under this for 2 weeks.
ACCEPTANCE_GUARDRAIL = ACCEPTANCE_ESCALATION
#: Spam complaints over this: pause outreach.
COMPLAINTS_GUARDRAIL = COMPLAINTS.minimum_viable.value
#: SDR burnout: SLA compliance under this.
SLA_GUARDRAIL = 0.60

# Judgement calls the review makes (the seed's risks and signal review).
#: Fewer PQLs a business day than this and the pilot is inconclusive.
LOW_VOLUME_PER_DAY = 1
#: The fewest leads (or emails, or trials) behind a rate before it may call for an action item, and the fewest
#: fired before a backtest recommends keeping or retiring a trigger (issue 19): a figure on fewer is still shown,
#: with its count, and flagged against its target, but no one is told to act on it.
MIN_SAMPLE = 20
#: A signal is judged noisy only on at least this many dispositioned leads.
NOISY_MIN_DECIDED = 3
#: Converting leads nobody touched, at this share or more: some triggers fire on self-serve-ready accounts.
DARK_FUNNEL_HIGH = 0.5
