"""App Home: a rep's open leads and today's count against the cap (and the fast-lane leads beside it, which the cap
does not count), with the pause switch; the manager's queue, most urgent first (`by_urgency`), and the team, or each
team (bot/domain/teams.py) with its own cap and its leads waiting for a rep; what pqlbot is, for anyone else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from slack_sdk.models.blocks import Block, DividerBlock, SectionBlock
from slack_sdk.models.views import View as SlackView

from bot.domain.kit import MAX_TOUCHES
from bot.slack.blocks.parts import (
    HOME_LIST_MAX,
    STATE_LABELS,
    TIER_LABELS,
    VIEW_BLOCKS_MAX,
    button,
    clock,
    context,
    fields,
    header,
    section,
    sla_text,
    words,
)
from bot.slack.ids import Action
from templates import esc, say


@dataclass(slots=True, frozen=True)
class HomeLead:
    ref: str  # PQL-42
    pql_id: int
    who: str
    company: str | None
    tier: str
    state: str  # a PqlState value
    sla_due_at: datetime | None
    touches: int
    next_touch_due_at: datetime | None
    rep_id: str | None = None  # assigned to (unclaimed leads in the manager's queue); None: waiting for a rep
    team: str | None = None  # its team's label, with teams


@dataclass(slots=True, frozen=True)
class HomeRep:
    rep_id: str
    name: str | None
    paused: bool
    active_leads: int
    new_today: int
    fast_lane_today: int = 0  # not against the cap


@dataclass(slots=True, frozen=True)
class HomeTeam:
    """One team in the manager's per-team view: its reps (their counts on its day), its cap, its leads waiting."""

    label: str
    cap: int
    reps: list[HomeRep] = field(default_factory=list)
    waiting: int = 0  # its leads nobody has been given yet
    unclaimed: int = 0  # its leads given to someone who has not claimed them


_LATEST = datetime.max.replace(tzinfo=UTC)


def by_urgency(leads: list[HomeLead]) -> list[HomeLead]:
    """The manager's queue, most urgent first: fast-lane leads first (seed 000: speed is the only answer), then the
    least time left on the SLA (missed longest ago first), leads with no SLA clock yet last; then by reference."""
    return sorted(leads, key=lambda lead: (lead.tier != "fast_lane", lead.sla_due_at or _LATEST, lead.pql_id))


def home(*, rep_id: str | None, is_manager: bool, paused: bool, leads: list[HomeLead], today_count: int, cap: int,
         queue: list[HomeLead], paused_reps: list[str], reps: list[HomeRep], now: datetime, tz: tzinfo,
         fast_lane_today: int = 0, teams: list[HomeTeam] | None = None,
         routing_paused_by: str | None = None) -> dict:
    """The App Home tab: a rep's own leads and pause switch, the team view for the manager, else what pqlbot is;
    above all of it, while the manager has paused routing for the whole team, a banner saying so."""
    blocks: list[Block] = []
    if routing_paused_by and (rep_id or is_manager):
        blocks.append(section(say("routing_paused_banner", by=routing_paused_by)))
    if rep_id:
        blocks += _rep_home(paused=paused, leads=leads, today_count=today_count, cap=cap, now=now, tz=tz,
                            fast_lane_today=fast_lane_today)
    if is_manager:
        blocks += [DividerBlock()] if blocks else []
        blocks += _team_home(queue=queue, paused_reps=paused_reps, reps=reps, cap=cap, now=now, tz=tz, teams=teams)
    if not blocks:
        blocks = [header("pqlbot"), section(words("outsider")), context(words("how_to_join"))]
    return SlackView(type="home", blocks=blocks[:VIEW_BLOCKS_MAX]).to_dict()


def _rep_home(*, paused: bool, leads: list[HomeLead], today_count: int, cap: int, now: datetime,
              tz: tzinfo, fast_lane_today: int = 0) -> list[Block]:
    switch = button("Resume my assignments" if paused else "Pause my assignments", Action.PAUSE,
                     value="resume" if paused else "pause", style="primary" if paused else None)
    return [
        header("Your PQLs"),
        section(f"*{today_count} of {cap} new PQLs today*{_fast_lane(fast_lane_today)}"
                f"{' · ⏸ paused' if paused else ''}"),
        section(words("pause_explained", paused=paused, cap=cap), accessory=switch),
        DividerBlock(),
        section(f"*Your open leads ({len(leads)})*"),
        *_lead_rows(leads, words("no_open_leads"), now=now, tz=tz),
    ]


def _team_home(*, queue: list[HomeLead], paused_reps: list[str], reps: list[HomeRep], cap: int, now: datetime,
               tz: tzinfo, teams: list[HomeTeam] | None = None) -> list[Block]:
    who_paused = ", ".join(f"<@{rep}>" for rep in paused_reps) or "nobody"
    waiting = sum(1 for lead in queue if lead.rep_id is None)  # given to nobody yet; the rest await a claim
    blocks: list[Block] = [
        header("Teams" if teams else "Team"),
        context(f"{waiting} waiting for a rep · {len(queue) - waiting} assigned, not claimed · paused: {who_paused}"),
        section(f"*Queue ({len(queue)})*, most urgent first"),
        *_lead_rows(by_urgency(queue), words("empty_queue"), now=now, tz=tz),
    ]
    if teams:
        for team in teams:
            blocks += [section(f"*{esc(team.label)}* · {team.waiting} waiting for a rep · {team.unclaimed} assigned, "
                               f"not claimed · cap {team.cap} a day"), *_rep_fields(team.reps, team.cap)]
        return blocks
    return [*blocks, section("*Reps*"), *_rep_fields(reps, cap)]


def _rep_fields(reps: list[HomeRep], cap: int) -> list[Block]:
    if not reps:
        return [section(words("no_reps"))]
    blocks: list[Block] = []
    rows = []
    for rep in reps[: HOME_LIST_MAX]:
        name = f"*{esc(rep.name)}* <@{rep.rep_id}>" if rep.name else f"<@{rep.rep_id}>"
        status = "⏸ paused" if rep.paused else "taking leads"
        rows += [name, f"{status} · {rep.active_leads} active · {rep.new_today} of {cap} new today"
                       f"{_fast_lane(rep.fast_lane_today)}"]
    blocks += [fields(*rows[i:i + 10]) for i in range(0, len(rows), 10)]  # a section holds 10 fields: 5 reps
    if len(reps) > HOME_LIST_MAX:
        blocks.append(context(f"…and {len(reps) - HOME_LIST_MAX} more reps"))
    return blocks


def _fast_lane(count: int) -> str:
    """Fast-lane leads on today's count, beside the cap they do not use up."""
    return f" · {TIER_LABELS['fast_lane']}: {count} (not capped)" if count else ""


def _lead_rows(leads: list[HomeLead], empty: str, *, now: datetime, tz: tzinfo) -> list[Block]:
    if not leads:
        return [context(empty)]
    rows: list[Block] = [_lead_row(lead, now=now, tz=tz) for lead in leads[:HOME_LIST_MAX]]
    if len(leads) > HOME_LIST_MAX:
        rows.append(context(f"…and {len(leads) - HOME_LIST_MAX} more"))
    return rows


def _lead_row(lead: HomeLead, *, now: datetime, tz: tzinfo) -> SectionBlock:
    company = f", {esc(lead.company)}" if lead.company else ""
    head = f"*{esc(lead.ref)}* · {TIER_LABELS.get(lead.tier, esc(lead.tier))} · {esc(lead.who)}{company}"
    facts = [STATE_LABELS.get(lead.state, esc(str(lead.state)))]  # StrEnum keys match plain strings too
    if lead.team:
        facts.append(esc(lead.team))
    if lead.rep_id and lead.state in ("assigned", "queued", "alerted", "qualified"):
        facts.append(f"<@{lead.rep_id}>")
    if lead.touches == 0:
        facts.append(sla_text(lead.sla_due_at, now=now))
    facts.append(f"touches {lead.touches} of {MAX_TOUCHES}")
    if lead.touches >= MAX_TOUCHES:
        facts.append("set a disposition")
    elif due := lead.next_touch_due_at:
        when = clock(due, now=now, tz=tz)
        facts.append(f"next touch due {when}" if due >= now else f"next touch overdue since {when}")
    details = button("Details", Action.DETAILS, pql_id=lead.pql_id)
    return section(f"{head}\n{' · '.join(facts)}", accessory=details)
