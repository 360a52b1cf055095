"""Terminal output for people: score tables and rules summaries (rich, so it reads well and pipes cleanly)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.services import alert_text
from scoring import Rules, ScoreResult, Status, Tier
from scoring.engine import ASK_OVERRIDES
from scoring.rules import SIZED_BANDS
from scoring.triggers import RESPONSE_WORDS
from templates import render, sentences

_bands = sentences("scoring/bands.j2")
_score = sentences("cli/score.j2")

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
TOP_REASONS = 5  # the reasons not to route that `pqlbot score` counts under its table


def signal_summary(result: ScoreResult) -> str:
    """"activated (day 2); invited 2 teammates (day 4)": the seed's signal summary, in trial days."""
    return alert_text.signal_summary((s.evidence, s.day) for s in result.signals)


def sort_key(result: ScoreResult) -> tuple:
    return (_ORDER[result.status], _TIER_ORDER[result.tier], -result.score, result.user_id)


def _company(result: ScoreResult) -> str:
    """"Acme Corp (800)", then its band and ACV potential: "Mid-market ≈$20,000"."""
    name = result.account.company_name or result.account.domain or "?"
    size = f"{result.company_size:,}" if result.company_size is not None else "size ?"
    band = _bands.table("band_labels").get(result.band, result.band)
    acv = f" ≈${result.acv_potential:,}" if result.acv_potential is not None else ""
    return f"{name} ({size})\n{band}{acv}"


def print_results(
    results: Sequence[ScoreResult],
    *,
    at: datetime,
    tz: tzinfo,
    rules: Rules,
    product_name: str,
    top: int,
    console: Console | None = None,
) -> None:
    """What a rep or an ops person reads after scoring a file:
    - a table of the first `top` users in reading order (qualified first, by tier and score; the hopeless last),
      and the suggested talk track of each qualified lead in it;
    - everyone counted: by status, the qualified by tier, the most frequent reasons not to route, and how to see
      those the table left out.
    Drawing a table costs over a millisecond a row (2.5 minutes for 100,000), so `top` keeps any file to a screenful."""
    console = console or Console()
    shown = sorted(results, key=sort_key)[:top]
    if top:
        _print_table(shown, title=f"PQL verdicts as of {at.astimezone(tz):%a %d %b %Y %H:%M %Z}", console=console)
        _print_talk_tracks([r for r in shown if r.status is Status.QUALIFIED], product_name, console)
    counts = Counter(r.status for r in results)
    summary = ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts[s])
    console.print(f"\n{len(results)} users ({summary}) under rules: {rules.name}")
    tiers = Counter(r.tier for r in results if r.status is Status.QUALIFIED)
    if tiers:
        console.print(_score("by_tier", tiers=[(TIER_LABEL[t], tiers[t]) for t in _TIER_ORDER if tiers[t]]))
    reasons = Counter(reason.code for r in results for reason in r.reasons)
    if reasons:
        console.print(_score("why_not", reasons=reasons.most_common(TOP_REASONS)))
    if len(shown) < len(results):
        console.print(_score("left_out", shown=len(shown), total=len(results)))


def _print_table(results: Sequence[ScoreResult], *, title: str, console: Console) -> None:
    # Five columns, so that a terminal of 80 to 120 columns shows them whole: the tier under the status, why not
    # under the signals (a lead has no why not; a user turned away reads it first), and a fast-lane lead's score is
    # its ask (its points are not what qualified it).
    table = Table(title=title, title_justify="left")
    for column in ("User", "Company, band, ACV", "Status", "Score", "Signals, and why not"):
        table.add_column(column, overflow="fold")
    for result in results:
        tier = TIER_LABEL.get(result.tier, "")
        why = f"[bold]why not:[/] {escape(_why_not(result))}" if result.reasons else ""
        table.add_row(
            result.email or result.user_id,
            _company(result),
            f"[{STATUS_STYLE[result.status]}]{result.status}[/]" + (f"\n{tier}" if tier else ""),
            "ask" if result.tier is Tier.FAST_LANE else f"{result.score}/{result.max_score}",
            "\n".join(filter(None, (why, escape(signal_summary(result))))),
        )
    console.print(table)


def _print_talk_tracks(qualified: Sequence[ScoreResult], product_name: str, console: Console) -> None:
    from bot.services import outreach

    if qualified:
        console.print("\n[bold]Suggested talk tracks[/]")
    for result in qualified:
        context = outreach.LeadContext.from_result(result, product_name=product_name)
        console.print(f"  [green]{result.email}[/]: {outreach.talk_track(context)}")


def _why_not(result: ScoreResult) -> str:
    return "; ".join(r.detail for r in result.reasons)


#: `pqlbot score --all`'s columns: the JSON output's names where it has them.
ROW_COLUMNS = ("user_id", "email", "company", "company_size", "band", "acv_potential", "status", "tier", "score",
               "max_score", "signals", "why_not")


def write_rows(results: Sequence[ScoreResult], stream: TextIO) -> None:
    """Every user, one tab-separated line each under a header line, in the table's order: for grep, or a spreadsheet
    when 100,000 users are too many to read. Nothing is styled; a missing value is empty."""
    writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for r in sorted(results, key=sort_key):
        writer.writerow((r.user_id, r.email or "", r.account.company_name or r.account.domain or "",
                         "" if r.company_size is None else r.company_size, r.band,
                         "" if r.acv_potential is None else r.acv_potential, r.status, r.tier or "", r.score,
                         r.max_score, signal_summary(r), _why_not(r)))


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
    console.print(f"Fast lane: {', '.join(rules.fast_lane.events) or 'off'}, at any company size or none known; "
                  f"overrides {', '.join(sorted(ASK_OVERRIDES))}; other exclusions and do-not-touch (opt-out) stop it")
    _print_bands_and_acv(rules, console)
    console.print(f"Single-day hold: {rules.hold.hours} h; billing paths: {', '.join(rules.events.billing_paths)}")
    console.print(catalogue(rules), markup=False, highlight=False)


def catalogue(rules: Rules) -> str:
    """The trigger catalogue in words (templates/scoring/catalogue.txt.j2): per trigger its name and label, level,
    family, strength, tier of response, window, conditions and the seed row it cites."""
    triggers = [(name, trigger.model_dump(mode="json")) for name, trigger in rules.triggers.items()]
    return render("scoring/catalogue.txt.j2", triggers=triggers, response_words=RESPONSE_WORDS).strip("\n")


def _print_bands_and_acv(rules: Rules, console: Console) -> None:
    """The bands' bounds, the ACV model and seed 004's minimum ACV worked out from the file's inputs."""
    bands, acv = rules.bands, rules.acv
    labels = _bands.table("band_labels")
    console.print(f"Bands by company size: {labels['smb']} under {bands.mid_market_min:,} · {labels['mid_market']} "
                  f"{bands.mid_market_min:,}-{bands.mid_market_max:,} · {labels['enterprise']} over "
                  f"{bands.mid_market_max:,} · no size known: band unknown, no ACV estimate")
    minimum = acv.minimum
    bases = " · ".join(f"{labels[band]} ${acv.base[band]:,}" + (" (under the minimum)" if acv.base[band] < minimum
                                                                 else "") for band in SIZED_BANDS)
    console.print(f"ACV potential = base by band × industry × plan: {bases}")
    for name, factors in (("industry", acv.industry), ("plan", acv.plan)):
        listed = ", ".join(f"{key} ×{factor:g}" for key, factor in sorted(factors.items())) or "none (× 1)"
        console.print(f"  {name}: {listed}")
    console.print(_bands("minimum", amount=minimum, cost=acv.annual_sales_cost_per_account, win_rate=acv.win_rate,
                         retention=acv.retention))
