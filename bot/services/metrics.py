"""The pilot's numbers, computed from the store for any week or date range (seed 002, sections 7-8).

One function, `compute`, reads what it needs once and returns a `Metrics` of plain figures; the review
in Slack, the Friday post, `pqlbot review` and the pilot scorecard all render the same object. A rate
with nothing to divide by is None ("no data"), never zero.

Definitions (the seed's, made exact):
- a lead counts in the range when it was recorded (triggered) in it; dispositions when they were set in it; a user
  lead merged into an account lead (one account, one conversation) is counted apart (`merged`), not as a lead: its
  SLA counts only if it came due before the merge, and it was open on its rep until then;
- acceptance = (Meeting Set + Converted) / dispositioned leads a rep worked (dispositioned by a rep, claimed or
  touched), where Converted is the disposition Converted (Self-Serve) or a worked lead stopped by its
  trial_converted event: a conversion nobody worked is the dark funnel's, not the reps' acceptance;
- SLA compliance = leads whose first touch came by their SLA due time / leads whose due time has passed
  or that were touched (a lead not yet due and untouched is still open, not a miss; a lead closed before
  its due time without a touch, say converted or opted out, owed no first touch and is left out);
- time to first touch is business time from when the lead was recorded;
- false-positive rate = Disqualified / dispositioned (per signal too, over the leads carrying it);
- volume per rep per day = leads / (reps x business days); None without reps;
- utilization = leads open on a rep at the end of each day (a lead closes when dispositioned, stopped or merged);
- complaints = contacted leads whose user opted out of sales contact (a sales_opt_out event) or answered with a
  negative or unsubscribe `sales_reply` after the first touch / contacted leads;
- reply rate = email touches the rep marked "They replied", or that a `sales_reply` event answered before the
  next touch / email touches;
- NPS = promoters (9-10) minus detractors (0-6) among each user's latest `nps_response` in the range, for the
  PQL cohort (users who had a lead) and the rest; the pilot's NPS change is the first minus the second;
- dark funnel = routed leads that converted with no touch before converting / routed leads that converted;
- assisted-conversion lift = conversion of contacted leads minus conversion of leads never contacted;
- the per-trigger table (seed 001's keep-or-retire, the same figures `pqlbot backtest` gives): over the leads
  recorded in the pilot so far (the `PILOT_WEEKS` weeks to the end of the range), per trigger that made a lead
  (each routed trigger; `points` for seed 002's points, `explicit_ask` for the fast lane): leads, converted within
  60 days of the lead, contacted or not, dark-funnel rate and lift (bot/calibration/).
- assisted conversions (and their MRR) = leads whose conversion source is sales-assisted: a touch came before the
  trial converted (Pql.conversion_source, set by the trial_converted event); a lead converted before pqlbot
  recorded sources counts when it was contacted at all, as it used to.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from bot.calibration.backtest import EXPLICIT_ASK, POINTS, TriggerFigures
from bot.domain.business_time import BusinessCalendar
from bot.domain.kit import ACCEPTED
from bot.domain.lifecycle import ABSORBED, STOPPED, PqlState
from bot.domain.periods import Period
from bot.store.events import from_us, to_us
from bot.store.models import EventRecord, Pql, Touch, TrialUser
from bot.store.queries import in_chunks, still_open
from scoring.engine import ACTIVATION

#: How a `sales_reply` that is a complaint reads (issue 19); the rest are answers.
COMPLAINING_REPLIES = ("negative", "unsubscribe")
#: The per-trigger table covers the leads of this many weeks to the end of the range: seed 002's 4-week pilot.
PILOT_WEEKS = 4
#: Closed with no disposition: stopped (converted, opted out) or merged into an account lead, when last updated.
_ENDED = STOPPED | ABSORBED


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class SignalReview:
    signal: str
    pqls: int
    acceptance: float | None
    conversion: float | None
    decided: int = 0  # leads carrying it that were dispositioned (or converted) in the range
    false_positive: float | None = None  # Disqualified / decided


@dataclass
class Metrics:
    period: Period
    pqls: int = 0  # leads recorded in the range, less those merged into account leads
    merged: int = 0  # user leads recorded in the range and since merged into an account lead
    by_tier: dict[str, int] = field(default_factory=dict)
    per_rep_per_day: float | None = None
    daily: dict[date, dict[str, int]] = field(default_factory=dict)  # day -> tier -> PQLs (for the chart)
    dispositions: dict[str, int] = field(default_factory=dict)
    acceptance: float | None = None
    false_positive: float | None = None
    decided: int = 0  # closed leads a rep worked: acceptance's and false positives' denominator
    accepted: int = 0
    disqualified: int = 0
    sla_compliance: float | None = None
    sla_by_day: dict[date, float | None] = field(default_factory=dict)
    first_touch_hours: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # mean, median
    utilization: float | None = None  # active leads per rep per day
    signals: list[SignalReview] = field(default_factory=list)
    pql_conversion: float | None = None  # trial-to-paid, PQL cohort
    non_pql_conversion: float | None = None
    dark_funnel: float | None = None
    contacted_conversion: float | None = None
    uncontacted_conversion: float | None = None
    assisted_lift: float | None = None
    assisted_conversions: int = 0
    assisted_mrr: float = 0.0
    meeting_rate: float | None = None
    reply_rate: float | None = None
    variants: dict[str, dict[str, float | int | None]] = field(default_factory=dict)  # A -> sent, reply, meeting
    sla_met: int = 0
    sla_due: int = 0
    pql_cohort: int = 0  # trials started in the range that became PQLs; pql_converted of them converted
    pql_converted: int = 0
    non_pql_cohort: int = 0
    non_pql_converted: int = 0
    routed_converted: int = 0  # routed leads that converted; dark of them with no touch
    dark: int = 0
    uncontacted: int = 0  # leads recorded in the range never touched; uncontacted_converted of them converted
    uncontacted_converted: int = 0
    emails: int = 0  # email touches; replied of them marked replied
    replied: int = 0
    meetings: int = 0  # contacted leads dispositioned Meeting Set
    touches_to_conversion: float | None = None  # mean touches of the contacted leads that converted
    nps_pql: float | None = None  # NPS of the PQL cohort's nps_response answers in the range
    nps_rest: float | None = None
    nps_pql_answers: int = 0
    nps_rest_answers: int = 0
    nps_change: float | None = None  # nps_pql - nps_rest, in points
    contacted: int = 0  # leads recorded in the range that got at least one touch
    opt_outs: int = 0  # of those, how many opted out of sales contact after the first touch
    complaints: float | None = None  # opt_outs / contacted
    reps: int = 0
    triggers: list[TriggerFigures] = field(default_factory=list)  # seed 001's table over the pilot so far
    to_come: list[date] = field(default_factory=list)  # the period's days after `now`'s: no figures yet, not zeros


def _closed_at(pql: Pql) -> datetime | None:
    """When the lead stopped needing a rep: its disposition, the conversion / opt-out that stopped it, or its
    becoming part of an account lead (whose own clocks carry the conversation on)."""
    return _closed(pql.dispositioned_at, pql.state, pql.updated_at)


def _closed(dispositioned_at: datetime | None, state: str, updated_at: datetime) -> datetime | None:
    if dispositioned_at is not None:
        return dispositioned_at
    return updated_at if state in _ENDED else None


def of_team(team: str | None, *, default_team: bool = False) -> sa.ColumnElement[bool]:
    """Leads of `team` (bot/domain/teams.py): those recording it, and for the default team those recording none
    (from before teams); every lead with no team asked for."""
    if team is None:
        return sa.true()
    return sa.or_(Pql.team == team, Pql.team.is_(None)) if default_team else Pql.team == team


def compute(session: Session, period: Period, *, calendar: BusinessCalendar, reps: int,
            now: datetime, team: str | None = None, default_team: bool = False) -> Metrics:
    """The period's figures; with `team`, that team's leads only (its volume, dispositions, SLA, utilisation; the
    trial cohorts' conversion is the product's, not a team's)."""
    tz = calendar.tz
    start, end = period.bounds(tz)
    m = Metrics(period, reps=reps)
    mine = of_team(team, default_team=default_team)
    leads = list(session.exec(select(Pql).where(Pql.created_at >= start, Pql.created_at < end, mine)))
    touches = defaultdict(list)
    for ids in in_chunks([p.id for p in leads]):
        for touch in session.exec(select(Touch).where(Touch.pql_id.in_(ids))):
            touches[touch.pql_id].append(touch)
    for of_lead in touches.values():
        of_lead.sort(key=lambda touch: (touch.at, touch.id))
    # The trials that started in the range (the conversion cohorts), and who of them or of the leads converted.
    cohort = list(session.exec(select(TrialUser.user_id).where(TrialUser.signup_at >= start,
                                                               TrialUser.signup_at < end)))
    converted_users = _converted_users(session, {p.user_id for p in leads} | set(cohort))

    # Volume. A period still under way (the Friday post reviews the week to date) counts the days so far: today,
    # under way, is one of them; the days after it are "to come", neither zeros nor a share of the rate.
    today = now.astimezone(tz).date()
    so_far = [d for d in period.days() if d <= today] or period.days()[:1]
    m.to_come = [d for d in period.days() if d > today]
    # A user lead merged into an account lead is one conversation with it, not a lead of its own (what it did
    # until then still counts: its SLA below, its rep's load, its signals).
    conversations = [p for p in leads if p.state != PqlState.ABSORBED]
    m.pqls, m.merged = len(conversations), len(leads) - len(conversations)
    m.by_tier = dict(Counter(p.tier for p in conversations))
    m.daily = {day: {} for day in so_far}
    for pql in conversations:
        day = pql.created_at.astimezone(tz).date()
        m.daily.setdefault(day, {})[pql.tier] = m.daily.get(day, {}).get(pql.tier, 0) + 1
    business_days = [d for d in so_far if calendar.is_business_day(d)] or so_far
    m.per_rep_per_day = rate(m.pqls, reps * len(business_days))

    # Dispositions and acceptance (dispositions set in the range)
    closed = list(session.exec(select(Pql).where(
        sa.or_(sa.and_(Pql.dispositioned_at >= start, Pql.dispositioned_at < end),
               sa.and_(Pql.state == PqlState.STOPPED_CONVERTED, Pql.updated_at >= start, Pql.updated_at < end)),
        mine)))
    outcome = {p.id: (p.disposition or "converted_self_serve") for p in closed}
    m.dispositions = dict(Counter(outcome.values()))
    # Acceptance and false positives judge the leads reps worked: a conversion nobody claimed or touched says
    # nothing about whether reps accept the leads (it is the dark funnel's).
    worked = _worked(session, closed)
    m.decided = len(worked)
    m.accepted = sum(1 for p in worked if outcome[p.id] in ACCEPTED)
    m.disqualified = sum(1 for p in worked if outcome[p.id] == "disqualified")
    m.acceptance = rate(m.accepted, m.decided)
    m.false_positive = rate(m.disqualified, m.decided)

    # SLA and time to first touch
    met = due = 0
    by_day: dict[date, list[bool]] = defaultdict(list)
    hours: dict[str, list[float]] = defaultdict(list)
    for pql in leads:
        first = touches[pql.id][0] if touches[pql.id] else None
        if first:
            hours[pql.tier].append(calendar.elapsed(pql.created_at, first.at).total_seconds() / 3600)
        if pql.sla_due_at is None or (first is None and now <= pql.sla_due_at):
            continue
        closed_at = _closed_at(pql)
        if first is None and closed_at is not None and closed_at <= pql.sla_due_at:
            continue  # closed before it was due (converted, opted out, dispositioned): no touch was owed
        ok = first is not None and first.at <= pql.sla_due_at
        due, met = due + 1, met + ok
        by_day[pql.created_at.astimezone(tz).date()].append(ok)
    m.sla_compliance = rate(met, due)
    m.sla_met, m.sla_due = met, due
    m.sla_by_day = {day: rate(sum(by_day[day]), len(by_day[day])) for day in period.days() if day not in m.to_come}
    m.first_touch_hours = {tier: (statistics.fmean(v), statistics.median(v)) for tier, v in hours.items()}

    m.utilization = _utilization(session, period, tz, reps, so_far, mine)
    m.signals = _signals(leads, outcome, converted_users)
    _conversion(session, m, leads, touches, converted_users, cohort)
    replies = _replies(session, leads, now)
    _outreach(m, leads, touches, outcome, replies)
    _complaints(session, m, leads, touches, now, replies)
    _nps(session, m, start, end, now)
    m.triggers = _trigger_table(session, end, now)
    return m


def _trigger_table(session: Session, end: datetime, now: datetime) -> list[TriggerFigures]:
    """Seed 001's keep-or-retire figures per trigger over the leads of the pilot so far (see the module docstring)."""
    since = end - timedelta(weeks=PILOT_WEEKS)
    leads = list(session.exec(select(Pql).where(Pql.created_at >= since, Pql.created_at < end,
                                                Pql.created_at <= now)))
    if not leads:
        return []
    touched = {pql_id for ids in in_chunks([p.id for p in leads])
               for pql_id in session.exec(select(Touch.pql_id).where(Touch.pql_id.in_(ids)))}
    paid: dict[str, datetime] = {}
    for ids in in_chunks(sorted({p.user_id for p in leads})):
        for user_id, at_us in session.exec(select(EventRecord.user_id, EventRecord.at_us).where(
                EventRecord.name == "trial_converted", EventRecord.user_id.in_(ids), EventRecord.at_us <= to_us(now))):
            paid[user_id] = min(paid.get(user_id, from_us(at_us)), from_us(at_us))
    rows: dict[str, TriggerFigures] = {}
    for pql in leads:
        converted_at = paid.get(pql.user_id)
        if pql.level == "account" and pql.converted_at is not None and pql.converted_at <= now:
            converted_at = min(converted_at or pql.converted_at, pql.converted_at)  # any of its people paying
        for name in _made_by(pql):
            # A lead's 60 days are over by now, or its conversion may still come (seed 001's `retire` waits).
            rows.setdefault(name, TriggerFigures(name, "")).count(pql.created_at, converted_at, pql.id in touched, now)
    return sorted(rows.values(), key=lambda row: (-row.fired, row.name))


def _made_by(pql: Pql) -> set[str]:
    """What made a lead, as `pqlbot backtest` names it: each routed trigger (a signal of its verdict worth no points
    that is neither the activation nor the ask); `explicit_ask` for the fast lane, else `points` when the points
    qualified it. A lead's strongest signal is a trigger's only when the triggers alone qualified it (its points
    short of the threshold: scoring/engine.py `judge`), so the threshold needs no rules file here."""
    triggers = {s["name"] for s in pql.signals if not s.get("points") and s["name"] not in (ACTIVATION, EXPLICIT_ASK)}
    if pql.tier == "fast_lane":
        return triggers | {EXPLICIT_ASK}
    if any(s.get("points") for s in pql.signals) and pql.strongest_signal not in triggers:
        return triggers | {POINTS}
    return triggers


def _worked(session: Session, closed: list[Pql]) -> list[Pql]:
    """The closed leads a rep worked: dispositioned by one, claimed, or touched."""
    touched = {pql_id for ids in in_chunks([p.id for p in closed])
               for pql_id in session.exec(select(Touch.pql_id).where(Touch.pql_id.in_(ids)))}
    return [p for p in closed if p.disposition or p.claimed_by or p.id in touched]


def _converted_users(session: Session, user_ids: set[str]) -> dict[str, dict]:
    """Of these users, those who converted: user id -> the trial_converted event's properties (plan, mrr,
    conversion_source). Looked up by user (ix_events_conversions): the whole store's conversions grow every week."""
    converted = {}
    for ids in in_chunks(sorted(user_ids)):
        rows = session.exec(select(EventRecord.user_id, EventRecord.props).where(
            EventRecord.name == "trial_converted", EventRecord.user_id.in_(ids)).order_by(EventRecord.id))
        converted.update((user_id, props or {}) for user_id, props in rows)
    return converted


def _utilization(session: Session, period: Period, tz, reps: int, days: list[date],
                 mine: sa.ColumnElement[bool] = sa.true()) -> float | None:  # noqa: B008 (an immutable clause)
    """Leads open on a rep at the end of each of `days` (the period's so far), averaged over reps and days."""
    if not reps:
        return None
    start, end = period.bounds(tz)
    # Only leads that can have been open in the period: still open, or closed (dispositioned or stopped) since
    # it began. Each term has an index; all leads ever assigned would be read otherwise.
    maybe_open = sa.or_(still_open(Pql.state), Pql.dispositioned_at >= start,
                        sa.and_(Pql.state.in_(sorted(_ENDED)), Pql.updated_at >= start))
    rows = session.exec(select(Pql.assigned_at, Pql.dispositioned_at, Pql.state, Pql.updated_at).where(
        maybe_open, Pql.rep_id.is_not(None), Pql.assigned_at < end, mine))  # columns, not leads: there can be thousands
    spans = [(assigned_at, _closed(dispositioned_at, state, updated_at))
             for assigned_at, dispositioned_at, state, updated_at in rows]
    totals = []
    for day in days:
        close = datetime.combine(day + timedelta(days=1), time(), tz)
        open_then = sum(1 for assigned_at, closed_at in spans if assigned_at < close
                        and not (closed_at and closed_at < close))
        totals.append(open_then / reps)
    return statistics.fmean(totals) if totals else None


def _signals(leads: list[Pql], outcome: dict[int, str], converted: dict[str, dict]) -> list[SignalReview]:
    carrying: dict[str, list[Pql]] = defaultdict(list)
    for pql in leads:
        for signal in pql.signals:
            if signal.get("points") or signal["name"] == "explicit_ask":
                carrying[signal["name"]].append(pql)
    review = []
    for name, group in sorted(carrying.items(), key=lambda kv: -len(kv[1])):
        decided = [outcome[p.id] for p in group if p.id in outcome]
        review.append(SignalReview(name, len(group), rate(sum(o in ACCEPTED for o in decided), len(decided)),
                                   rate(sum(p.user_id in converted for p in group), len(group)), len(decided),
                                   rate(sum(o == "disqualified" for o in decided), len(decided))))
    return review


def _conversion(session, m: Metrics, leads, touches, converted, cohort: list[str]) -> None:
    # The cohorts are the trials that started in the range: PQL ones whenever their lead was recorded.
    ever_pql = {user for ids in in_chunks(cohort)
                for user in session.exec(select(Pql.user_id).where(Pql.user_id.in_(ids)))}
    in_pql = [u for u in cohort if u in ever_pql]
    rest = [u for u in cohort if u not in ever_pql]
    m.pql_cohort, m.pql_converted = len(in_pql), sum(u in converted for u in in_pql)
    m.non_pql_cohort, m.non_pql_converted = len(rest), sum(u in converted for u in rest)
    m.pql_conversion = rate(m.pql_converted, m.pql_cohort)
    m.non_pql_conversion = rate(m.non_pql_converted, m.non_pql_cohort)
    routed = [p for p in leads if p.rep_id or p.claimed_by]
    routed_converted = [p for p in routed if p.user_id in converted]
    m.routed_converted = len(routed_converted)
    m.dark = sum(not _assisted(p, touches) for p in routed_converted)
    m.dark_funnel = rate(m.dark, m.routed_converted)
    contacted = [p for p in leads if touches[p.id]]
    untouched = [p for p in leads if not touches[p.id]]
    m.uncontacted, m.uncontacted_converted = len(untouched), sum(p.user_id in converted for p in untouched)
    m.contacted_conversion = rate(sum(p.user_id in converted for p in contacted), len(contacted))
    m.uncontacted_conversion = rate(m.uncontacted_converted, m.uncontacted)
    if m.contacted_conversion is not None and m.uncontacted_conversion is not None:
        m.assisted_lift = m.contacted_conversion - m.uncontacted_conversion
    assisted = [p for p in leads if p.user_id in converted and _assisted(p, touches)]
    m.assisted_conversions = len(assisted)
    # Seed 002's "average touches to conversion": the outreach touches before each contacted lead converted.
    m.touches_to_conversion = statistics.fmean(len(touches[p.id]) for p in assisted) if assisted else None
    m.assisted_mrr = sum(_money(converted[p.user_id].get("mrr")) for p in assisted)


def _assisted(pql: Pql, touches) -> bool:
    """Sales-assisted: the conversion source the trial_converted event set; without one (converted before it was
    recorded), contacted at all."""
    if pql.conversion_source is not None:
        return pql.conversion_source == "sales_assisted"
    return bool(touches[pql.id])


def _money(value) -> float:
    """An event's mrr as a number (billing systems send 49, 49.0 or "49.00"); anything else counts 0."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _replies(session: Session, leads, now: datetime) -> dict[str, list[tuple[datetime, str]]]:
    """The leads' users' `sales_reply` events by `now`: user -> [(when, sentiment)], in time order."""
    found: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for ids in in_chunks(sorted({p.user_id for p in leads})):
        for user_id, at_us, props in session.exec(select(EventRecord.user_id, EventRecord.at_us, EventRecord.props)
                                                  .where(EventRecord.name == "sales_reply",
                                                         EventRecord.user_id.in_(ids),
                                                         EventRecord.at_us <= to_us(now))):
            found[user_id].append((from_us(at_us), str((props or {}).get("sentiment", ""))))
    for listed in found.values():
        listed.sort()
    return found


def _answered(touch: Touch, after: datetime | None, replies: list[tuple[datetime, str]]) -> bool:
    """An email the rep marked replied, or one a `sales_reply` event answered before the next touch."""
    return touch.replied or any(touch.at <= at and (after is None or at < after) for at, _ in replies)


def _outreach(m: Metrics, leads, touches, outcome, replies) -> None:
    contacted = [p for p in leads if touches[p.id]]
    emails = [(t, nxt.at if nxt else None, replies.get(p.user_id, []))
              for p in leads if touches[p.id]
              for t, nxt in zip(touches[p.id], [*touches[p.id][1:], None], strict=True) if t.channel == "email"]
    m.meetings = sum(outcome.get(p.id) == "meeting_set" for p in contacted)
    m.emails, m.replied = len(emails), sum(_answered(t, after, said) for t, after, said in emails)
    m.meeting_rate = rate(m.meetings, len(contacted))
    m.reply_rate = rate(m.replied, m.emails)
    by_variant: dict[str, list[Pql]] = defaultdict(list)
    for pql in contacted:
        first_email = next((t for t in touches[pql.id] if t.email_key == "email1" and t.variant), None)
        if first_email:
            by_variant[first_email.variant].append(pql)
    m.variants = {
        variant: {"sent": len(group),
                  "reply_rate": rate(sum(any(t.replied for t in touches[p.id]) for p in group), len(group)),
                  "meeting_rate": rate(sum(outcome.get(p.id) == "meeting_set" for p in group), len(group))}
        for variant, group in sorted(by_variant.items())
    }


def _complaints(session: Session, m: Metrics, leads, touches, now: datetime, replies) -> None:
    first_touch = {p.user_id: touches[p.id][0].at for p in leads if touches[p.id]}
    m.contacted = sum(1 for p in leads if touches[p.id])
    if not first_touch:
        return
    rows = session.exec(select(EventRecord.user_id, EventRecord.at_us).where(
        EventRecord.name == "sales_opt_out", EventRecord.user_id.in_(list(first_touch)),
        EventRecord.at_us <= to_us(now)))
    opted = {user_id for user_id, at_us in rows if from_us(at_us) >= first_touch[user_id]}
    # A negative or unsubscribe answer to outreach is a complaint too (seed 002: "negative replies or
    # unsubscribe requests from PQL outreach").
    opted |= {user_id for user_id, first in first_touch.items()
              if any(at >= first and said in COMPLAINING_REPLIES for at, said in replies.get(user_id, []))}
    m.opt_outs = sum(1 for p in leads if touches[p.id] and p.user_id in opted)
    m.complaints = rate(m.opt_outs, m.contacted)


def nps(scores: list[int]) -> float | None:
    """Net Promoter Score: promoters (9-10) minus detractors (0-6), in points of 100; None with no answers."""
    if not scores:
        return None
    return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


def _nps(session: Session, m: Metrics, start: datetime, end: datetime, now: datetime) -> None:
    """NPS of the `nps_response` answers in the range (each user's latest), the PQL cohort (users who ever had a
    lead) against the rest, and the difference: seed 002's "no degradation (within 5 points)"."""
    latest: dict[str, tuple[int, int]] = {}
    for user_id, at_us, props in session.exec(select(EventRecord.user_id, EventRecord.at_us, EventRecord.props).where(
            EventRecord.name == "nps_response", EventRecord.at_us >= to_us(start),
            EventRecord.at_us < to_us(min(end, now)))):
        score = (props or {}).get("score")
        if isinstance(score, int) and (user_id not in latest or at_us > latest[user_id][0]):
            latest[user_id] = (at_us, score)
    if not latest:
        return
    had_lead = {user for ids in in_chunks(sorted(latest))
                for user in session.exec(select(Pql.user_id).where(Pql.user_id.in_(ids)))}
    cohort = [score for user, (_, score) in latest.items() if user in had_lead]
    rest = [score for user, (_, score) in latest.items() if user not in had_lead]
    m.nps_pql, m.nps_rest, m.nps_pql_answers, m.nps_rest_answers = nps(cohort), nps(rest), len(cohort), len(rest)
    if m.nps_pql is not None and m.nps_rest is not None:
        m.nps_change = m.nps_pql - m.nps_rest
