"""One place where a listener's failure becomes words: a refusal is said privately to the person;
anything else is logged with an incident id they can quote.

Listeners are wrapped rather than left to Bolt's error handler: an exception escaping a listener
after its ack makes Bolt discard the ack and answer Slack late.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable

from bot.leads import Refused

log = logging.getLogger(__name__)


def guarded(listener: Callable) -> Callable:
    @functools.wraps(listener)  # Bolt reads the wrapped signature to know which arguments to pass
    def run(*args, **kwargs):
        try:
            return listener(*args, **kwargs)
        except Refused as refusal:
            _say(kwargs, str(refusal))
        except Exception as error:  # noqa: BLE001 (the last line of defence for one click)
            incident = uuid.uuid4().hex[:8]
            log.error("%s failed (incident %s): %s", listener.__name__, incident, type(error).__name__,
                      exc_info=error)
            _say(kwargs, f"Sorry, that didn't work (incident {incident}). It's logged; please try again or tell "
                         "your admin.")
        return None

    return run


def _say(kwargs: dict, text: str) -> None:
    body, respond, runtime = kwargs.get("body") or {}, kwargs.get("respond"), kwargs.get("runtime")
    if respond is not None and body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
        return
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if runtime is None or not user:
        return
    if channel:
        runtime.gateway.ephemeral(channel, user, text)
    else:
        runtime.gateway.dm(user, text)
