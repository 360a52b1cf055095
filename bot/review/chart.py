"""The Friday review's chart: a PNG of the week at a glance.

Top panel: PQLs recorded each day, stacked by tier, against the team's capacity (reps x daily cap).
Bottom panel: SLA compliance of each day's leads, against its 80% target (bot/domain/targets.py); days with no
lead due yet leave a gap rather than pretending to 0%. Drawn with matplotlib's Agg canvas on a `Figure` of its
own (no pyplot, no global state), so it is safe from the deliverer's thread and needs no display.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.domain import lifecycle
from bot.domain.periods import period_key
from bot.domain.targets import SLA_COMPLIANCE
from bot.services.metrics import Metrics

#: Bottom to top of each bar: the tiers in the order a rep works them (fast lane on top).
TIERS = tuple(reversed(lifecycle.TIERS))
TIER_STYLE = {"medium": ("Medium", "#93c5fd"), "high": ("High", "#f97316"), "fast_lane": ("Fast lane", "#b91c1c")}
_TIER_NAMES = {label for label, _ in TIER_STYLE.values()}
SLA_TARGET = round(SLA_COMPLIANCE.target.value * 100)  # percent
INK, MUTED, SLA_COLOR = "#111827", "#6b7280", "#047857"


def render(m: Metrics, *, cap: int, path: Path | str | None = None) -> Path:
    """Draw `m`'s week (or range) to `path`, or to a new temporary PNG the caller removes; returns the path."""
    days = m.period.days()
    x = list(range(len(days)))
    figure = Figure(figsize=(10, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    volume, sla = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])

    totals = [0] * len(days)
    for tier in TIERS:
        counts = [m.daily.get(day, {}).get(tier, 0) for day in days]
        label, color = TIER_STYLE[tier]
        volume.bar(x, counts, bottom=totals, width=0.7, color=color, label=label, edgecolor="white", linewidth=0.5)
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
    capacity = m.reps * cap
    if capacity:
        volume.axhline(capacity, color=INK, linestyle="--", linewidth=1.4,
                       label=f"Team capacity: {m.reps} rep{'s' * (m.reps != 1)} × {cap} a day = {capacity}")
    for position, total in zip(x, totals, strict=True):
        if total:
            volume.annotate(str(total), (position, total), xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=9, color=INK)
    top = max(max(totals, default=0), capacity, 1)
    volume.set_ylim(0, top * 1.25)
    volume.yaxis.set_major_locator(MaxNLocator(integer=True))
    volume.set_ylabel("PQLs recorded")
    volume.set_title("Daily PQLs by tier vs team capacity", loc="left", fontsize=11, color=INK)
    handles, names = volume.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: -i if names[i] in _TIER_NAMES else -99)  # capacity, then tiers
    volume.legend([handles[i] for i in order], [names[i] for i in order], loc="upper left", ncols=4, fontsize=9,
                  frameon=False)
    for position, day in zip(x, days, strict=True):
        if day in m.to_come:  # a week still under way: no figures yet, not zeros
            volume.text(position, top * 0.05, "to come", ha="center", va="bottom", fontsize=9, color=MUTED,
                        rotation=90)
    if not m.pqls:
        volume.text(0.5, 0.45, "No PQLs recorded", transform=volume.transAxes, ha="center", va="center",
                    fontsize=12, color=MUTED)

    values = [m.sla_by_day.get(day) for day in days]
    points = [v * 100 if v is not None else math.nan for v in values]
    sla.plot(x, points, marker="o", linewidth=2, color=SLA_COLOR, label="SLA compliance")
    sla.axhline(SLA_TARGET, color=MUTED, linestyle=":", linewidth=1.4, label=f"Target {SLA_TARGET}%")
    for position, value in zip(x, values, strict=True):
        if value is not None:
            sla.annotate(f"{value:.0%}", (position, value * 100), xytext=(0, 6), textcoords="offset points",
                         ha="center", fontsize=8, color=SLA_COLOR)
    sla.set_ylim(-8, 118)  # room for a 0% point and a 100% label
    sla.yaxis.set_major_formatter(PercentFormatter(100))
    sla.set_ylabel("First touch in time")
    sla.set_title("SLA compliance by day the lead arrived", loc="left", fontsize=11, color=INK)
    sla.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=2, fontsize=9, frameon=False)
    if all(v is None for v in values):
        sla.text(0.5, 0.5, "No leads due yet: no data", transform=sla.transAxes, ha="center", va="center",
                 fontsize=11, color=MUTED)

    step = max(1, math.ceil(len(days) / 14))  # at most 14 labels: a 4-week range stays readable
    sla.set_xticks(x[::step], [f"{day:%a}\n{day.day} {day:%b}" for day in days[::step]])
    for axes in (volume, sla):
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)
    figure.suptitle(f"PQL review · {m.period.label}", fontsize=14, fontweight="bold", color=INK)

    if path is None:
        handle, name = tempfile.mkstemp(prefix=f"pql-review-{period_key(m.period).replace('..', '_')}-",
                                        suffix=".png")
        os.close(handle)
        path = name
    path = Path(path)
    figure.savefig(path, format="png")
    return path
