"""Build the Bolt app: one middleware puts the runtime in every listener's reach, and listeners are
registered per surface, each wrapped by bot.slack.errors.guarded."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.slack import actions, commands, home, manager
from bot.slack.runtime import Runtime

log = logging.getLogger(__name__)


def build_app(runtime: Runtime, *, listener_executor: Executor | None = None) -> App:
    """`listener_executor` runs listeners after their ack (Bolt's thread pool unless a test gives its own)."""
    settings = runtime.settings
    app = App(
        # Bolt's default pool has 5 threads; a burst of clicks on a busy morning needs more.
        listener_executor=listener_executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="slack"),
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
        client=runtime.gateway.client,
        token_verification_enabled=False,  # no auth.test round trip at start-up; a bad token shows on first call
        process_before_response=False,  # ack first; the work continues after Slack has its answer
    )

    @app.middleware
    def with_runtime(context, next):  # noqa: A002 (Bolt's name)
        context["runtime"] = runtime
        next()

    commands.register(app)
    actions.register(app)
    home.register(app)
    manager.register(app)
    return app


def slack_route(app: App, path: str = "/slack/events") -> Route:
    """Slack's requests over HTTP, served by the same server as ingestion (uvicorn), not Bolt's dev server."""

    async def endpoint(request: Request) -> Response:
        body = (await request.body()).decode("utf-8")
        bolt_request = BoltRequest(body=body, query=request.url.query, headers=dict(request.headers))
        # Bolt's listeners are synchronous (the store is): run them off the event loop.
        bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, bolt_request)
        return Response(bolt_response.body, status_code=bolt_response.status,
                        headers={k: v[0] for k, v in bolt_response.headers.items() if v})

    return Route(path, endpoint, methods=["POST"])
