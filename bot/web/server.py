"""Everything `pqlbot serve` runs, assembled in one place (and testable without uvicorn).

- Slack: over HTTP at /slack/events, or over Socket Mode when SLACK_APP_TOKEN is set;
- ingestion: Segment's tracking API (/v1/track, /v1/batch, ...), /healthz;
- the outbox deliverer (a process of its own under `pqlbot serve`, a thread in tests) and the scheduled sweeps
  (APScheduler).
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field

from starlette.applications import Starlette

from bot.integrations import senders
from bot.integrations.delivery import IntegrationDeliverer
from bot.services import leads
from bot.services.pipeline import Pipeline, for_team
from bot.services.routing import Router
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.delivery import Deliverer
from bot.slack.delivery_process import DeliveryProcess
from bot.slack.gateway import Gateway
from bot.slack.runtime import Runtime
from bot.slack.socket_mode import Connection
from bot.store.health import open_writable
from bot.sweeps import scheduler
from bot.sweeps.runner import Sweeps
from bot.web.ingest import ingest_routes
from bot.web.slack_route import slack_route

log = logging.getLogger("pqlbot")


@dataclass
class Server:
    runtime: Runtime
    web: Starlette
    socket_mode: Connection | None = None
    background: list = field(default_factory=list)
    deliver_apart: bool = False  # the Slack deliverer in a process of its own (`pqlbot serve`), else a thread

    def start_background(self) -> None:
        """The deliverer and the sweeps; a test may leave them off and drive them by hand."""
        settings, pipeline = self.runtime.settings, self.runtime.pipeline
        router = pipeline.router or Router(settings.calendar, cap=settings.pql_daily_cap,
                                            manager=settings.pql_manager, fast_lane=settings.fast_lane,
                                            teams=settings.teams)
        self.background = [scheduler.start(Sweeps(pipeline, router, settings))]
        if settings.slack_bot_token:  # without Slack, notices wait in the outbox until it is configured
            if self.deliver_apart:
                deliverer = DeliveryProcess(settings).start()
            else:
                deliverer = Deliverer.of(self.runtime, settings.pql_alerts_channel,
                                         make_way=self.runtime.answering.wait_quiet).start()
            self.runtime.kick = deliverer.kick
            pipeline.on_new_work = deliverer.kick
            self.background.append(deliverer)
        if settings.sinks:  # the CRM and the webhook: their own thread, so neither waits on the other or on Slack
            integrations = IntegrationDeliverer(pipeline.engine, senders(settings),
                                                manager=settings.integrations_manager, clock=self.runtime.now).start()
            self.background.append(integrations)
            kick_slack, new_work = self.runtime.kick, pipeline.on_new_work

            def kick() -> None:
                kick_slack()
                integrations.kick()

            def on_new_work() -> None:
                new_work()
                integrations.kick()

            self.runtime.kick, pipeline.on_new_work = kick, on_new_work
        if self.socket_mode is not None:
            self.socket_mode.start()  # SocketModeRefused for a token Slack refuses; an outage is retried

    def stop_background(self) -> None:
        for part in self.background:
            (part.stop if hasattr(part, "stop") else part.shutdown)()
        if self.socket_mode is not None:
            self.socket_mode.close()


def build(settings: Settings, *, pipeline: Pipeline | None = None, gateway: Gateway | None = None,
          listener_executor: Executor | None = None, after_ack: Executor | None = None,
          deliver_apart: bool = False) -> Server:
    """`listener_executor` and `after_ack` are for tests (see bot/slack/app.py and bot/web/slack_route.py); `after_ack`
    defaults to the listener executor a test gives, else to slack_route's own pool. Without a `pipeline`, the
    store must open and take a write, or StoreUnusable says why (bot/store/health.py). `deliver_apart`: Slack's
    deliverer runs in a process of its own, on the settings' store and gateway (bot/slack/delivery_process.py), as
    `pqlbot serve` runs it; else a thread of this process, on this pipeline's clock and this gateway."""
    if pipeline is None:
        pipeline = for_team(open_writable(settings.database_url), settings)
    else:  # a test's own pipeline: its roster still comes from the settings
        with pipeline.session() as session, session.begin():
            leads.sync_roster(session, settings.roster, now=pipeline.clock())
    runtime = Runtime(pipeline, settings, gateway or Gateway.from_settings(settings))
    token = settings.ingest_token.get_secret_value() if settings.ingest_token else None
    shared = settings.segment_shared_secret.get_secret_value() if settings.segment_shared_secret else None
    if not token and not shared:
        log.warning("neither INGEST_TOKEN nor SEGMENT_SHARED_SECRET is set: ingestion (/v1/...) answers 503")
    routes = ingest_routes(pipeline, token, shared_secret=shared, gather_seconds=settings.ingest_gather_ms / 1000)
    socket_mode = None
    if settings.slack_bot_token:
        app = build_app(runtime, listener_executor=listener_executor)
        if settings.slack_app_token:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            socket_mode = Connection(SocketModeHandler(app, settings.slack_app_token.get_secret_value()))
        else:
            routes.append(slack_route(app, answering=runtime.answering, after_ack=after_ack or listener_executor))
    else:
        log.warning("SLACK_BOT_TOKEN is not set: Slack is off (ingestion and scoring still run)")
    return Server(runtime, Starlette(routes=routes), socket_mode, deliver_apart=deliver_apart)
