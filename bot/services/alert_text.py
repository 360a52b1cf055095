"""The plain-text PQL alert: the `text` Slack shows in notifications beside the Block Kit blocks.

The wording lives in templates/alert.txt.j2, loaded through bot.outreach's one Jinja environment.
"""

from __future__ import annotations

from bot.cli.report import signal_summary
from scoring import ScoreResult
from templates import render

TEMPLATE = "alert.txt.j2"


def alert_text(pql_ref: str, result: ScoreResult, *, talk_track: str) -> str:
    """E.g. "🔥 High PQL-5 · Raj Malhotra, Data Engineer at Cobalt Freight (450 people) · 8/10", then
    the trial day, the signals with their trial days, and the talk track. Link-free; no usage counts."""
    summary = signal_summary(result)
    ask = next((s.evidence for s in result.signals if s.talk_track == "fast_lane"), None)
    return render(TEMPLATE,
        ref=pql_ref,
        tier=None if result.tier is None else str(result.tier),
        name=result.profile.name or result.email or result.user_id,
        title=result.profile.title,
        company_name=result.account.company_name,
        company_size=result.company_size,
        score=result.score,
        max_score=result.max_score,
        ask=ask,
        summary=summary[:1].upper() + summary[1:],
        trial_day=result.trial_day,
        days_left=result.days_left,
        talk_track=talk_track,
    )
