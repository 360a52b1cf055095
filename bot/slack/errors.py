"""One place where a listener's failure becomes words: a refusal is said privately to the person;
anything else is logged with an incident id they can quote. And the one way a private answer is said (`tell`).

Listeners are wrapped rather than left to Bolt's error handler: an exception escaping a listener
after its ack makes Bolt discard the ack and answer Slack late.

A private answer never waits out Slack's rate limit in the worker that says it (the after-ack workers are few,
and a claim queued behind a sleeping one would be stored late): it is said at once, unless Slack limits it, and
then it is queued in the outbox, which sends it when the limit has passed (bot/slack/delivery.py). A modal cannot
wait (its trigger expires in 3 seconds): the person is asked to try again when Slack allows.
"""

from __future__ import annotations

import functools
import logging
import math
import traceback
import uuid
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from bot.services import outbox
from bot.services.leads import Refused
from bot.slack.gateway import RateLimited, retry_after
from templates import say

log = logging.getLogger(__name__)


def guarded(listener: Callable) -> Callable:
    @functools.wraps(listener)  # Bolt reads the wrapped signature to know which arguments to pass
    def run(*args, **kwargs):
        try:
            return listener(*args, **kwargs)
        except Refused as refusal:
            _ack(kwargs)
            _say(kwargs, str(refusal))
        except RateLimited as limited:  # (a modal: its trigger would expire before the limit passes)
            _ack(kwargs)
            log.warning("%s: Slack's rate limit on %s; the person is asked to try again", listener.__name__,
                        limited.limited)
            _say(kwargs, say("slow_down", seconds=math.ceil(limited.retry_after)))
        except Exception as error:  # noqa: BLE001 (the last line of defence for one click)
            _ack(kwargs)
            incident = uuid.uuid4().hex[:8]
            _log_failure(listener.__name__, incident, error)
            _say(kwargs, f"Sorry, that didn't work (incident {incident}). It's logged; please try again or tell "
                         "your admin.")
        return None

    return run


def _ack(kwargs: dict) -> None:
    """Ack a request the listener failed before acking: otherwise Bolt waits out Slack's 3 seconds and
    answers 404, and Slack shows the person a connection error instead of what went wrong."""
    ack = kwargs.get("ack")
    if ack is not None and getattr(ack, "response", None) is None:
        ack()


def _log_failure(name: str, incident: str, error: Exception) -> None:
    """The traceback, for whoever reads the incident. A store error's text is left out: SQLAlchemy quotes
    the statement's parameters in it (what people typed, emails included), and the driver's message may
    quote a row's values."""
    if isinstance(error, SQLAlchemyError):
        frames = "".join(traceback.format_tb(error.__traceback__))
        cause = type(getattr(error, "orig", None) or error).__name__
        log.error("%s failed (incident %s): %s (%s; its text is not logged, it quotes values)\n%s", name,
                  incident, type(error).__name__, cause, frames.rstrip())
        return
    log.error("%s failed (incident %s): %s", name, incident, type(error).__name__, exc_info=error)


def _say(kwargs: dict, text: str) -> None:
    """Tell the person privately; a failure to say it is logged, never raised (Bolt would log it as unhandled)."""
    try:
        _tell(kwargs, text)
    except Exception as error:  # noqa: BLE001
        log.warning("could not tell the person what happened: %s", type(error).__name__)


def _tell(kwargs: dict, text: str) -> None:
    body, respond, runtime = kwargs.get("body") or {}, kwargs.get("respond"), kwargs.get("runtime")
    if respond is not None and body.get("response_url"):
        answered = respond(text=text, response_type="ephemeral", replace_original=False)
        if getattr(answered, "status_code", None) == 429 and runtime is not None:
            log.warning("Slack rate-limited a response_url answer: it goes out from the outbox instead")
            _later(runtime, body, text, retry_after(answered.headers))
    elif runtime is not None:
        tell(runtime, body, text)


def tell(runtime, body: dict, text: str) -> None:
    """A private answer where the person acted: ephemeral in a channel, a DM from App Home or a modal. Said at
    once, or, while Slack limits it, queued in the outbox (see the module docstring)."""
    try:
        _where(body, lambda channel, user: runtime.gateway.ephemeral(channel, user, text),
               lambda user: runtime.gateway.dm(user, text))
    except RateLimited as limited:
        _later(runtime, body, text, limited.retry_after)


def _where(body: dict, in_channel, in_dm) -> None:  # noqa: ANN001
    """`in_channel(channel, user)` for a click in a channel, `in_dm(user)` elsewhere; nothing without a user."""
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    if not user:
        return
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if channel:
        in_channel(channel, user)
    else:
        in_dm(user)


def _later(runtime, body: dict, text: str, seconds: float) -> None:  # noqa: ANN001
    """Queue the answer in the outbox: the deliverer says it as soon as Slack allows (`seconds`: the limit met)."""
    now, key = runtime.now(), f"answer:{uuid.uuid4().hex}"
    with runtime.session() as session, session.begin():
        _where(body, lambda channel, user: outbox.ephemeral(session, channel, user, key, text, now=now),
               lambda user: outbox.dm(session, user, key, text, now=now))
    log.info("a private answer waits in the outbox for Slack's rate limit (%.0f s)", seconds)
    runtime.kick()
