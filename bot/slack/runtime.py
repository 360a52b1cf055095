"""What every Slack listener needs, built once per process: the store, settings, the gateway, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from bot import lead_view, leads
from bot.lead_view import LeadView
from bot.pipeline import Pipeline
from bot.settings import Settings
from bot.slack.gateway import Gateway


@dataclass
class Runtime:
    pipeline: Pipeline
    settings: Settings
    gateway: Gateway
    kick: Callable[[], None] = lambda: None  # ask the outbox to deliver now (serve runs a Deliverer)

    def now(self) -> datetime:
        return self.pipeline.clock()

    def session(self) -> Session:
        return self.pipeline.session()

    def actor(self, session: Session, user_id: str) -> leads.Actor:
        return leads.actor(session, user_id, manager=self.settings.pql_manager)

    def lead(self, session: Session, pql_id: int) -> LeadView:
        return lead_view.build(session, pql_id, tz=self.settings.tz, product_name=self.settings.product_name,
                               at=self.now())

    def render_alert(self, session: Session, pql_id: int) -> tuple[str, list[dict]]:
        from bot.slack import blocks

        return blocks.alert(self.lead(session, pql_id), now=self.now(), tz=self.settings.tz)

    def render_review(self, session: Session, week: str, *, note: str | None = None,
                      share: bool = False) -> tuple[str, list[dict], Path | None]:
        """A review as Slack shows it: (text, blocks, chart PNG). `week` is 2026-W45, this, last or a range;
        the PNG is a temporary file the caller removes."""
        from bot import review

        return review.render_review(session, week, settings=self.settings, now=self.now(), note=note, share=share)
