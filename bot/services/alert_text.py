"""The plain-text PQL alert: what a phone's lock screen shows of an alert (Slack's notification text beside the
Block Kit), and the alert the demo prints. One rendering of templates/alert.txt.j2 for both.

Link-free, and nothing about how often or how long anyone used the product: who they are, what they did that
matters, and what to say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.sla import FIRST_TOUCH
from scoring import ScoreResult
from scoring.triggers import RESPONSE_WORDS
from templates import render, sentences

TEMPLATE = "alert.txt.j2"
#: The talk track of an explicit ask's signal: its evidence is what the lead asked for ("requested a demo").
ASK_TRACK = "fast_lane"
_fired = sentences("scoring/triggers.j2")


@dataclass(slots=True, frozen=True)
class AlertFacts:
    """What the plain alert says, from a verdict (the demo) or from the stored lead (Slack)."""

    ref: str
    tier: str | None
    name: str
    title: str | None
    company_name: str | None
    company_size: int | None
    score: int
    max_score: int
    ask: str | None  # what a fast-lane lead asked for, in the scorer's words
    summary: str  # the signal summary
    trial_day: int | None
    days_left: int | None
    talk_track: str
    # What fired: the lead's family (buying | blocker), each trigger's line with its tier of response, and for an
    # account lead the account and how many users it has.
    family: str | None = None
    fired: tuple[str, ...] = ()
    account: str | None = None
    users: int = 0


def signal_summary(signals: Iterable[tuple[str, int]]) -> str:
    """"activated (day 2); invited 2 teammates (day 4)": seed 002's signal summary, from (evidence, trial day)."""
    return "; ".join(f"{evidence} (day {day})" for evidence, day in signals)


def plain_alert(facts: AlertFacts) -> str:
    """E.g. "🔥 High PQL-5 · Raj Malhotra, Data Engineer at Cobalt Freight (450 people) · 8/10", then the trial
    day, the signals with their trial days, and the talk track."""
    summary = facts.summary
    return render(TEMPLATE, ref=facts.ref, tier=facts.tier, name=facts.name, title=facts.title,
                  company_name=facts.company_name, company_size=facts.company_size, score=facts.score,
                  max_score=facts.max_score, ask=facts.ask, summary=summary[:1].upper() + summary[1:],
                  trial_day=facts.trial_day, days_left=facts.days_left, talk_track=facts.talk_track,
                  reply_within_hours=FIRST_TOUCH["fast_lane"].total_seconds() / 3600, family=facts.family,
                  fired=facts.fired, account=facts.account, users=facts.users)


def alert_text(pql_ref: str, result: ScoreResult, *, talk_track: str) -> str:
    """The plain alert of a verdict (the demo's, before anything is stored)."""
    named = {t.name for t in result.triggers}
    fired = sorted((t for t in result.triggers if t.routed), key=lambda t: t.response)  # nurture-only: no one's job
    return plain_alert(AlertFacts(
        ref=pql_ref, tier=None if result.tier is None else str(result.tier),
        name=result.profile.name or result.email or result.user_id, title=result.profile.title,
        company_name=result.account.company_name, company_size=result.company_size, score=result.score,
        max_score=result.max_score,
        ask=next((s.evidence for s in result.signals if s.talk_track == ASK_TRACK), None),
        summary=signal_summary((s.evidence, s.day) for s in result.signals if s.name not in named),
        trial_day=result.trial_day, days_left=result.days_left, talk_track=talk_track, family=result.family,
        fired=tuple(fired_line(t.label, t.response, t.evidence) for t in fired),
        account=(result.account.company_name or result.account.domain) if result.level == "account" else None,
        users=len(result.users),
    ))


def fired_line(label: str, response: int, evidence: str) -> str:
    """"Active buyer (tier 1, same day): ..." (templates/scoring/triggers.j2)."""
    return _fired("fired", label=label, response=response, words=RESPONSE_WORDS.get(response, ""), evidence=evidence)
