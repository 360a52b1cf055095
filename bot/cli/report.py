"""Terminal output for people: score tables and rules summaries (rich, so it reads well and pipes cleanly)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, tzinfo

from rich.console import Console
from rich.table import Table

from bot.services import alert_text
from scoring import Rules, ScoreResult, Status, Tier

#: Routable leads first, the hopeless last: the order a rep would read them in.
_ORDER = {
    Status.QUALIFIED: 0,
    Status.HELD: 1,
    Status.DO_NOT_TOUCH: 2,
    Status.MONITOR: 3,
    Status.BELOW_THRESHOLD: 4,
    Status.EXCLUDED: 5,
}
_TIER_ORDER = {Tier.FAST_LANE: 0, Tier.HIGH: 1, Tier.MEDIUM: 2, None: 3}
STATUS_STYLE = {
    Status.QUALIFIED: "bold green",
    Status.HELD: "yellow",
    Status.DO_NOT_TOUCH: "magenta",
    Status.MONITOR: "yellow",
    Status.BELOW_THRESHOLD: "dim",
    Status.EXCLUDED: "red",
}
TIER_LABEL = {Tier.FAST_LANE: "⚡ fast lane", Tier.HIGH: "🔥 high", Tier.MEDIUM: "medium"}


def signal_summary(result: ScoreResult) -> str:
    """"activated (day 2); invited 2 teammates (day 4)": the seed's signal summary, in trial days."""
    return alert_text.signal_summary((s.evidence, s.day) for s in result.signals)


def sort_key(result: ScoreResult) -> tuple:
    return (_ORDER[result.status], _TIER_ORDER[result.tier], -result.score, result.user_id)


def _company(result: ScoreResult) -> str:
    name = result.account.company_name or result.account.domain or "?"
    size = f"{result.company_size:,}" if result.company_size is not None else "size ?"
    return f"{name} ({size})"


def print_results(
    results: Sequence[ScoreResult],
    *,
    at: datetime,
    tz: tzinfo,
    rules: Rules,
    product_name: str,
    console: Console | None = None,
) -> None:
    from bot.services import outreach

    console = console or Console()
    table = Table(title=f"PQL verdicts as of {at.astimezone(tz):%a %d %b %Y %H:%M %Z}", title_justify="left")
    for column in ("User", "Company", "Status", "Tier", "Score", "Signals", "Why not"):
        table.add_column(column, overflow="fold")
    for result in sorted(results, key=sort_key):
        table.add_row(
            result.email or result.user_id,
            _company(result),
            f"[{STATUS_STYLE[result.status]}]{result.status}[/]",
            TIER_LABEL.get(result.tier, ""),
            f"{result.score}/{result.max_score}",
            signal_summary(result),
            "; ".join(r.detail for r in result.reasons),
        )
    console.print(table)

    qualified = [r for r in sorted(results, key=sort_key) if r.status is Status.QUALIFIED]
    if qualified:
        console.print("\n[bold]Suggested talk tracks[/]")
    for result in qualified:
        context = outreach.LeadContext.from_result(result, product_name=product_name)
        console.print(f"  [green]{result.email}[/]: {outreach.talk_track(context)}")
    counts = Counter(r.status for r in results)
    summary = ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts[s])
    console.print(f"\n{len(results)} users ({summary}) under rules: {rules.name}")


def print_rules(rules: Rules, *, source: str, console: Console | None = None) -> None:
    console = console or Console()
    g, w, t = rules.gates, rules.window, rules.tiers
    console.print(f"[bold]{rules.name}[/]  ({source})")
    console.print(f"Gates: {g.activation_event}; company size {g.company_size_min:,}-{g.company_size_max:,}")
    console.print(f"Window: first {w.days} days of a {w.trial_length_days}-day trial")
    console.print(f"Qualify at {t.qualify} of {rules.max_score} points; high from {t.high}")
    table = Table("Signal", "Counts", "Met when", "Points")
    for key, s in sorted(rules.signals.items(), key=lambda kv: kv[1].rank):
        counts = s.event + (f" (distinct {s.distinct})" if s.distinct else "")
        table.add_row(f"{s.label} [dim]{key}[/]", counts, f">= {s.min_count} on >= {s.min_days} day(s)", str(s.points))
    console.print(table)
    console.print(f"Fast lane: {', '.join(rules.fast_lane.events) or 'off'}")
    console.print(f"Single-day hold: {rules.hold.hours} h; billing paths: {', '.join(rules.events.billing_paths)}")
