"""What every Slack listener needs, built once per process: the store, settings, the gateway, a clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bot.domain.periods import parse_period
from bot.services import lead_view, leads
from bot.services.lead_view import LeadView
from bot.services.metrics import of_team
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.slack.gateway import Gateway
from templates import esc


class Answering:
    """The Slack requests this process is answering now, so background work can let a burst go first.

    Slack wants each click acked within 3 s, and a rep waits on it; an alert's edit or a thread reply can
    wait a moment. Fifty reps clicking at once took about 13 ms of CPU per click, mostly the deliverer
    re-rendering the alerts those clicks changed, and on one interpreter that work delayed the acks
    behind it. So the deliverer waits for a quiet moment (`wait_quiet`) before each message it sends, a
    second at most each time.
    """

    def __init__(self) -> None:
        self._count, self._last_done = 0, 0.0
        self._changed = threading.Condition()

    def __enter__(self) -> Answering:
        with self._changed:
            self._count += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._changed:
            self._count -= 1
            self._last_done = time.monotonic()
            self._changed.notify_all()

    def wait_quiet(self, settle: float = 0.05, at_most: float = 1.0) -> None:
        """Returns once nothing has been answered for `settle` seconds, or after `at_most` seconds."""
        deadline = time.monotonic() + at_most
        with self._changed:
            while (now := time.monotonic()) < deadline:
                quiet_for = now - self._last_done
                if self._count == 0 and quiet_for >= settle:
                    return
                self._changed.wait(min(deadline - now, settle if self._count else settle - quiet_for))


@dataclass
class Runtime:
    pipeline: Pipeline
    settings: Settings
    gateway: Gateway
    kick: Callable[[], None] = lambda: None  # ask the outbox to deliver now (serve runs a Deliverer)
    answering: Answering = field(default_factory=Answering)

    def now(self) -> datetime:
        return self.pipeline.clock()

    def session(self) -> Session:
        return self.pipeline.session()

    @property
    def router(self) -> Router:
        """The pipeline's router, or one over the settings' teams (a pipeline built without routing)."""
        settings = self.settings
        return self.pipeline.router or Router(settings.calendar, cap=settings.pql_daily_cap,
                                              manager=settings.pql_manager, fast_lane=settings.fast_lane,
                                              teams=settings.teams)

    def cap_for(self, team: str | None) -> tuple[int, tzinfo]:
        """The daily cap and the timezone of its day for a lead of `team`: its team's (with no teams file, the one
        team of PQL_DAILY_CAP and PQL_TIMEZONE; a teams file of one team, that team's)."""
        found = self.settings.teams.team(team)
        return found.daily_cap, found.calendar.tz

    def team_of(self, team: str | None) -> tuple[str, frozenset[str] | None] | None:
        """A lead's team's label and members (who may claim it); None with one team."""
        teams = self.settings.teams
        if teams.is_single:
            return None
        found = teams.team(team)
        return esc(found.title), found.member_ids

    def teams_of_rep(self, rep_id: str) -> sa.ColumnElement[bool] | None:
        """Leads of the rep's teams, as a condition (a bare /claim takes only those); None with one team."""
        teams = self.settings.teams
        if teams.is_single:
            return None
        return sa.or_(*(of_team(t.name, default_team=t.name == teams.default) for t in teams.teams_of(rep_id)),
                      sa.false())

    def cap_for_rep(self, rep_id: str) -> tuple[int, tzinfo]:
        """A rep's daily cap and day: their (first) team's with teams."""
        teams = self.settings.teams
        mine = [] if teams.is_single else teams.teams_of(rep_id)
        return self.cap_for(mine[0].name if mine else None)

    def actor(self, session: Session, user_id: str) -> leads.Actor:
        return leads.actor(session, user_id, manager=self.settings.pql_manager, teams=self.settings.teams)

    def lead(self, session: Session, pql_id: int, *, kit: bool = True) -> LeadView:
        view = lead_view.build(session, pql_id, tz=self.settings.tz, product_name=self.settings.product_name,
                               at=self.now(), kit=kit)
        view.handoff_teams = self.handoff_teams(view.team)
        return view

    def handoff_teams(self, team: str | None) -> dict[str, str]:
        """The teams a lead of `team` may be handed to (those taking hand-offs, but its own): name -> label."""
        teams = self.settings.teams
        own = teams.team(team).name
        return {t.name: t.title for t in teams.teams.values() if t.handoff is not None and t.name != own}

    def render_alert(self, session: Session, pql_id: int) -> tuple[str, list[dict]]:
        from bot.slack import blocks

        return blocks.alert(self.lead(session, pql_id, kit=False), now=self.now(), tz=self.settings.tz)

    def render_review(self, session: Session, week: str, *, note: str | None = None,
                      share: bool = False) -> tuple[str, list[dict], Path | None]:
        """A review as Slack shows it: (text, blocks, chart PNG). `week` is 2026-W45, this, last or a range;
        the PNG is a temporary file the caller removes."""
        from bot.review import chart, for_settings
        from bot.slack.blocks import review as review_blocks

        now = self.now()
        week, _, team = week.partition("|")  # "2026-W45|ae": one team's review (bot/sweeps/weekly_review.py)
        teams = self.settings.teams
        chosen = teams.team(team) if team and not teams.is_single else None
        tz = chosen.calendar.tz if chosen else self.settings.tz
        period = parse_period(week, today=now.astimezone(tz).date())
        shown = for_settings(session, period, settings=self.settings, now=now, team=chosen.name if chosen else None)
        if chosen:
            note = f"Team: {chosen.title}" + (f" · {note}" if note else "")
        text, blocks = review_blocks.blocks(shown, share=share, tz=tz, note=note)
        cap = chosen.daily_cap if chosen else self.settings.pql_daily_cap
        return text, blocks, chart.render(shown.metrics, cap=cap)
