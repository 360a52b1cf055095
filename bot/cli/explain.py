"""`pqlbot explain USER|EMAIL|PQL-N [--at T] [--json]`: a stored user's verdict with every signal and reason in the
team's time, and for a lead its routing and SLA trail (bot/services/explain.py), read from the store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from bot.cli.common import moment
from bot.settings import Settings

#: What each tier is called where people read it.
TIER_LABELS = {"fast_lane": "fast lane", "high": "high", "medium": "medium"}


def add(explain: argparse.ArgumentParser, name: str) -> None:
    explain.description = (
        "Read the store (DATABASE_URL) and say why a user is or is not a PQL: status, tier, points, every signal with "
        "its trial day, every reason (the trial is over, outside the ICP gate, ...), the triggers that fired, and for "
        "a lead who got it and why, the SLA clock, escalations, claims, touches and dispositions. Times are in "
        "PQL_TIMEZONE.")
    explain.add_argument("who", metavar="USER|EMAIL|PQL-N", help="a product user id, an email, or a lead (PQL-42)")
    explain.add_argument("--at", type=moment, help="judge again from the stored events as of this time (ISO 8601; "
                         "UTC unless it says) instead of showing the stored verdict")
    explain.add_argument("--json", action="store_true", help="one JSON object instead of text")
    explain.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import sqlalchemy as sa

    from bot.cli.db import _missing_sqlite_file, cannot_open
    from bot.clock import utc_now
    from bot.services.explain import NotFound, explain
    from bot.store import make_engine, session
    from scoring import load_rules

    if _missing_sqlite_file(settings.database_url):
        print(f"pqlbot explain: no store at {settings.database_url} yet (`pqlbot ingest` or `pqlbot serve` makes it)",
              file=sys.stderr)
        return 2
    rules = load_rules(settings.pql_rules_file)
    try:
        engine = make_engine(settings.database_url)
        with session(engine) as db:
            shown = explain(db, args.who, rules=rules, now=utc_now(), tz=settings.tz, at=args.at)
            values = _values(shown, settings)
    except NotFound as error:
        print(f"pqlbot explain: {error}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as error:
        return cannot_open("explain", settings.database_url, error)
    if args.json:
        print(json.dumps(_as_json(values), ensure_ascii=False, default=str))
    else:
        from templates import render

        print(render("cli/explain.txt.j2", **values).rstrip())
    return 0


def _values(shown, settings: Settings) -> dict:  # noqa: ANN001 - an Explanation
    """What the template (and --json) say, from the explanation: rep ids named, times kept as datetimes."""
    from bot.domain.lifecycle import CLOSED
    from templates import sentences

    bands = sentences("scoring/bands.j2").table("band_labels")
    verdict, user, tz = shown.verdict, shown.user, settings.tz
    company = (verdict.get("account") or {}).get("company_name") or user.company_name or user.domain
    size = verdict.get("company_size")
    lead = shown.lead

    def name(rep: str | None) -> str | None:
        return None if rep is None else shown.names.get(rep, rep)

    status = verdict.get("status", "excluded")
    reasons = verdict.get("reasons") or []
    why_no_lead = None
    if status == "below_threshold":
        why_no_lead = (f"{verdict.get('score', 0)} of {verdict.get('max_score', 10)} points; it takes "
                       f"{shown.qualify_at}, and no trigger fired")
    elif status == "held":
        why_no_lead = (f"exactly at the threshold with every signal on one day: held for {shown.hold_hours} h, then "
                       "monitor unless a signal lands on another day")
    elif status == "monitor":
        why_no_lead = ("it was held at the threshold with every signal on one day, and nothing came on another day: "
                       "watched, not routed")
    elif status != "qualified" and reasons:
        why_no_lead = reasons[0]["detail"]
    elif status != "qualified":
        why_no_lead = status.replace("_", " ")
    asks = [s for s in verdict.get("signals") or [] if s.get("name") == "explicit_ask"]
    fast_lane = (f"{asks[0]['evidence']}, day {asks[0]['day']}" if asks else "explicit ask") \
        if verdict.get("tier") == "fast_lane" else None
    return {
        "fast_lane": fast_lane,
        "who": user.email and f"{user.email} (user {user.user_id})" or user.user_id,
        "company": company and (f"{company}, {size:,} employees" if size is not None else f"{company}, size unknown"),
        "band": bands.get(verdict.get("band"), None) if verdict.get("band") != "unknown" else None,
        "acv": verdict.get("acv_potential"),
        "judged_again": shown.judged_again, "as_of": shown.as_of,
        "status": status, "tier": verdict.get("tier"), "tier_label": TIER_LABELS.get(verdict.get("tier") or "", ""),
        "score": verdict.get("score", 0), "max_score": verdict.get("max_score", 10), "qualify_at": shown.qualify_at,
        "trial_day": verdict.get("trial_day"), "days_left": verdict.get("days_left"),
        "why_no_lead": why_no_lead,
        "signals": verdict.get("signals") or [],
        "triggers": [t | {"at": datetime.fromisoformat(t["at"])} for t in verdict.get("triggers") or []],
        "reasons": reasons,
        "lead": lead and {
            "ref": lead.ref, "level": lead.level, "state": lead.state.replace("_", " "), "rep": name(lead.rep_id),
            "claimed": name(lead.claimed_by), "sla": lead.sla_due_at, "first_touch": shown.first_touch,
            "closed": lead.state in CLOSED,
            "disposition": lead.disposition,
            "account": shown.account_lead.ref if shown.account_lead else None},
        "trail": [{"at": step.at, "what": step.said(name)} for step in shown.trail],
        "t": lambda moment: f"{moment.astimezone(tz):%a %d %b %Y %H:%M %Z}",
    }


def _as_json(values: dict) -> dict:
    out = {k: v for k, v in values.items() if k not in ("t", "tier_label")}
    out["as_of"] = values["as_of"].isoformat()
    out["triggers"] = [t | {"at": t["at"].isoformat()} for t in values["triggers"]]
    out["trail"] = [{"at": s["at"].isoformat(), "what": s["what"]} for s in values["trail"]]
    if out["lead"]:
        out["lead"] = out["lead"] | {key: out["lead"][key].isoformat() for key in ("sla", "first_touch")
                                     if out["lead"][key] is not None}
    return out
