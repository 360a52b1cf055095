"""Build the Bolt app: one middleware puts the runtime in every listener's reach, and listeners are
registered per surface, each wrapped by bot.slack.errors.guarded. Over HTTP, bot/web/slack_route.py serves
Slack's requests to it, checked first by bot/slack/verify.py."""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App

from bot.slack.listeners import actions, commands, home, manager
from bot.slack.runtime import Runtime
from bot.slack.verify import SignedRequests

#: The signature checks of each app `build_app` made, for slack_route (bot/web/slack_route.py) to find.
_SIGNED: weakref.WeakKeyDictionary[App, SignedRequests] = weakref.WeakKeyDictionary()
#: The twin of each app build_app made, for requests slack_route has acked already.
_ACKED: weakref.WeakKeyDictionary[App, App] = weakref.WeakKeyDictionary()


class _QuietVerification(logging.Filter):
    """Bolt logs a refused request's whole body at INFO: for a slash command or a modal that is what
    people typed (emails included). Keep the line, drop the body and signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid request signature detected"):
            record.msg, record.args = "Invalid request signature detected", ()
        return True


def _quiet_bolt_verification() -> None:
    bolt_logger = logging.getLogger("slack_bolt.RequestVerification")
    if not any(isinstance(f, _QuietVerification) for f in bolt_logger.filters):
        bolt_logger.addFilter(_QuietVerification())


def build_app(runtime: Runtime, *, listener_executor: Executor | None = None) -> App:
    """`listener_executor` runs listeners after their ack (Bolt's thread pool unless a test gives its own).

    Beside the app, a twin with the same listeners serves what slack_route acked already (clicks, events):
    it runs each listener in the thread that dispatches it, since its ack goes nowhere, so the size of
    slack_route's after-ack pool bounds how much of that work runs at once, and this app's pool stays free
    for the slash commands and modal submissions that are still waiting for their answer."""
    settings = runtime.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    executor = listener_executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="slack")
    app = _bolt(runtime, secret, executor, process_before_response=False)  # ack first, then the work
    _ACKED[app] = _bolt(runtime, secret, executor, process_before_response=True)
    _SIGNED[app] = SignedRequests(secret, store=runtime.pipeline.engine)
    _quiet_bolt_verification()  # slack_route refuses bad signatures first; this covers any other way in
    return app


def _bolt(runtime: Runtime, secret: str | None, executor: Executor, *, process_before_response: bool) -> App:
    app = App(
        listener_executor=executor,
        signing_secret=secret,
        client=runtime.gateway.client,
        token_verification_enabled=False,  # no auth.test round trip at start-up; a bad token shows on first call
        process_before_response=process_before_response,
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


def acked_twin(app: App) -> App:
    """The twin build_app made beside `app`, for requests acked already (`app` itself for any other app)."""
    return _ACKED.get(app, app)


def signature_check(app: App) -> SignedRequests | None:
    """The signature check build_app made for `app`; None for an app it did not make."""
    return _SIGNED.get(app)
