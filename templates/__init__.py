"""Every sentence a person reads, and the one Jinja environment that loads them.

The `.j2` files beside this module are the words: talk tracks, the outreach emails, the alert, what pqlbot says in
Slack, the review, the scorer's reasons. Writers change them without touching code. Code reaches them only through
this module: `render` for a whole template, `sentences` for the one-line macros of a file (`say = sentences(
"slack/messages.j2")`, then `say("claimed", ref="PQL-4", rep="U123")`).

Most of the words are Slack mrkdwn (mentions are `<@U123>`), so the two helpers every caller needs live here too:
`esc` makes text people typed inert, and `clip` shortens text to a limit without cutting an entity or a mention.
`span` says a duration in words ("1 h 20 min"), for the sweeps that write sentences and the Block Kit alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, overload

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

FOLDER = Path(__file__).parent

ENV = Environment(
    loader=FileSystemLoader(FOLDER),
    undefined=StrictUndefined,  # a typo in a template must fail loudly, not send "Hi ,"
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
)


def render(template: str, /, **values: Any) -> str:
    """A whole template, e.g. render("alert.txt.j2", ref="PQL-4", ...)."""
    return ENV.get_template(template).render(**values)


@cache
def _module(name: str) -> Any:
    return ENV.get_template(name).module


class Sentences:
    """The macros of template file `name` as one function: `words(macro, **values)` renders one of them, on one
    line (runs of white space folded) unless `one_line` is False, when it is only stripped. `context` is what every
    macro of the file may read besides its arguments (say, the bars a sentence quotes, so a number is written once,
    in code, not again in the words); `table(variable)` reads a value the file sets at its top level."""

    def __init__(self, name: str, *, one_line: bool = True, context: Mapping[str, Any] | None = None) -> None:
        self.name, self.one_line, self.context = name, one_line, dict(context or {})
        self._loaded: Any = None

    def _macros(self) -> Any:
        if self._loaded is None:
            self._loaded = ENV.get_template(self.name).make_module(self.context) if self.context else \
                _module(self.name)
        return self._loaded

    def __call__(self, macro: str, /, **values: Any) -> str:
        text = str(getattr(self._macros(), macro)(**values))
        return " ".join(text.split()) if self.one_line else text.strip()

    def table(self, variable: str) -> Any:
        return getattr(self._macros(), variable)


def sentences(name: str, *, one_line: bool = True, context: Mapping[str, Any] | None = None) -> Sentences:
    """`Sentences` of template file `name`: say = sentences("slack/messages.j2"); say("claimed", ref="PQL-4", ...)."""
    return Sentences(name, one_line=one_line, context=context)


def table(name: str, variable: str) -> Any:
    """A value a template file sets at its top level ({% set labels = {...} %}), e.g. the review's labels."""
    return getattr(_module(name), variable)


@overload
def esc(text: str) -> str: ...
@overload
def esc(text: None) -> None: ...
def esc(text: str | None) -> str | None:
    """Text people typed (notes, reasons, names from product events) made inert for Slack's mrkdwn: `<!channel>` in
    a note must not ping the channel, nor `<@U123>` mention anyone. None stays None."""
    if text is None:
        return None
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when cut; never ends inside an &entity; or a <@mention>."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if (amp := cut.rfind("&")) > cut.rfind(";"):
        cut = cut[:amp]
    if (angle := cut.rfind("<")) > cut.rfind(">"):
        cut = cut[:angle]
    return cut.rstrip() + "…"


def span(delta: timedelta) -> str:
    """"35 min", "1 h 20 min", "2 d 3 h"."""
    days, minutes = divmod(max(0, round(delta.total_seconds() / 60)), 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


#: What pqlbot says in Slack: refusals, confirmations, thread replies and DMs (templates/slack/messages.j2).
say = sentences("slack/messages.j2")
