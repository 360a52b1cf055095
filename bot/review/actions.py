"""The action items a week's numbers call for (seed 002's agenda item 5 and its escalation triggers).

Each is one sentence of templates/review/words.j2, most pressing first: no volume at all, the volume guardrail and
capacity, then acceptance and noisy signals, SLA and first touch, outreach, and whether the touch helps. A week
with nothing to act on says so (bot/review/model.py's `conclude` makes sure that is never said beside a flagged
figure).

A rate that estimates how leads behave (acceptance, false positives, a signal's acceptance, conversion, replies,
meetings, the dark funnel, the lift, complaints) calls for an action only on at least `bars.MIN_SAMPLE` leads (or
emails, or trials) behind it: one contacted lead converting no better is not a finding. What reps did (volume,
capacity, open leads, SLA compliance, time to first touch) is a fact of the week, and calls for one at any count.
The bars are seed 002's (bot/domain/targets.py, bot/domain/guardrails.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from bot.calibration.backtest import EXPLICIT_ASK, POINTS
from bot.domain import guardrails
from bot.domain import targets as bars
from bot.domain.lifecycle import TIERS
from bot.review.wording import FIRST_TOUCH_HOURS, fmt, words
from bot.services.metrics import Metrics


def busy_runs(daily: dict[date, dict[str, int]], reps: int, workday: Callable[[date], bool]) -> list[list[date]]:
    """The volume guardrail's runs (bot/domain/guardrails.py) over a review's days, counted from its tiers."""
    return guardrails.busy_runs({day: sum(tiers.values()) for day, tiers in daily.items()}, reps, workday)


def action_items(m: Metrics, cap: int, workday: Callable[[date], bool]) -> list[str]:
    """What the numbers call for, most pressing first; `cap` is each rep's daily cap, `workday` says which days
    count for the volume guardrail."""
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
    enough = bars.MIN_SAMPLE.__le__
    judged = enough(m.decided)
    if judged and m.acceptance is not None and m.acceptance < bars.ACCEPTANCE_ESCALATION:
        items.append(words("act_acceptance_critical", value=fmt(m.acceptance, "rate")))
    elif judged and m.acceptance is not None and not bars.ACCEPTANCE.target.met(m.acceptance):
        items.append(words("act_acceptance", value=fmt(m.acceptance, "rate")))
    noisy = [s for s in m.signals if s.decided >= max(bars.NOISY_MIN_DECIDED, bars.MIN_SAMPLE)
             and s.acceptance is not None and not bars.ACCEPTANCE.target.met(s.acceptance)]
    for signal in sorted(noisy, key=lambda s: (s.acceptance, -(s.false_positive or 0)))[:3]:
        items.append(words("act_noisy_signal", signal=words("signal_name", name=signal.signal),
                           acceptance=fmt(signal.acceptance, "rate"), false_positive=fmt(signal.false_positive, "rate"),
                           decided=signal.decided))
    if judged and m.false_positive is not None and not bars.FALSE_POSITIVE.met(m.false_positive):
        items.append(words("act_false_positive", value=fmt(m.false_positive, "rate")))
    if m.sla_compliance is not None and m.sla_compliance < bars.SLA_ESCALATION:
        items.append(words("act_sla", value=fmt(m.sla_compliance, "rate")))
    for tier in TIERS:
        mean = m.first_touch_hours.get(tier, (None, None))[0]
        if mean is not None and mean >= FIRST_TOUCH_HOURS[tier]:
            items.append(words("act_first_touch", tier=tier.replace("_", " "), hours=f"{mean:.1f}",
                               target=f"{FIRST_TOUCH_HOURS[tier]:g} h"))
    if enough(m.emails) and m.reply_rate is not None and not bars.REPLY_RATE.target.met(m.reply_rate):
        replied = {v: row["reply_rate"] for v, row in m.variants.items() if row.get("reply_rate")}
        items.append(words("act_reply_rate", value=fmt(m.reply_rate, "rate"),
                           best=max(replied, key=replied.get) if replied else None))
    if enough(m.contacted) and m.meeting_rate is not None and not bars.MEETING_RATE.target.met(m.meeting_rate):
        items.append(words("act_meeting_rate", value=fmt(m.meeting_rate, "rate")))
    if (enough(m.pql_cohort) and m.pql_conversion is not None
            and not bars.PQL_CONVERSION.target.met(m.pql_conversion)):
        items.append(words("act_pql_conversion", value=fmt(m.pql_conversion, "rate"), converted=m.pql_converted,
                           cohort=m.pql_cohort))
    if enough(m.routed_converted) and m.dark_funnel is not None and m.dark_funnel >= bars.DARK_FUNNEL_HIGH:
        items.append(words("act_dark_funnel", value=fmt(m.dark_funnel, "rate")))
    if (enough(m.contacted) and enough(m.uncontacted) and m.assisted_lift is not None
            and not bars.ASSISTED_LIFT.met(m.assisted_lift)):
        items.append(words("act_no_lift", value=fmt(m.assisted_lift, "pp")))
    if enough(m.contacted) and m.complaints is not None and not bars.COMPLAINTS.target.met(m.complaints):
        items.append(words("act_complaints", value=fmt(m.complaints, "rate")))
    for row in m.triggers:
        # Seed 001, on at least the minimum sample (`recommend`). An explicit ask is always answered (seed 000's fast
        # lane): no advice to retire it; the points model is recalibrated, not removed.
        if row.recommendation == "retire" and row.name != EXPLICIT_ASK:
            items.append(words("act_retire_points" if row.name == POINTS else "act_retire_trigger",
                               name=words("signal_name", name=row.name), value=fmt(row.conversion_rate, "rate"),
                               converted=row.converted, fired=row.fired))
        elif row.recommendation == "too_early" and row.name != EXPLICIT_ASK:
            # Under 10 % so far, with most leads' 60 days still to run (a pilot's are): said, not acted on yet.
            points = row.name == POINTS
            items.append(words("act_retire_early", subject="Leads raised on seed 002's points" if points
                               else f'"{words("signal_name", name=row.name)}"', plural=points,
                               value=fmt(row.conversion_rate, "rate"), converted=row.converted, fired=row.fired,
                               open=row.open))
    if not items:
        items.append(words("act_all_good"))
    return items
