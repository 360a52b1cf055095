"""The folder tree is the architecture, and imports keep it honest: each package imports only from the layers
below it, and no two modules import each other, however indirectly (docs/architecture.md).

The imports are read from the source (every `import`, at the top of a module or inside a function, and under
TYPE_CHECKING too), so a late import cannot hide an arrow pointing up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "scoring", "templates")

#: Lowest first. A module may import from its own layer and the layers before it, never from a later one.
LAYERS: list[tuple[str, ...]] = [
    ("bot.clock", "bot.domain", "bot.calibration", "scoring", "templates"),  # pure: rules, words, the clock; backtests
    ("bot.settings", "bot.store"),  # configuration, and the store (models, migrations, bulk writers, queries)
    ("bot.services",),  # what people and events do to leads: a session and `now` in
    ("bot.review",),  # the weekly review and the pilot scorecard: a model, then renderings
    ("bot.sweeps",),  # scheduled jobs that queue typed notices
    ("bot.slack",),  # the Slack surface: listeners, Block Kit, the gateway, delivery
    ("bot.integrations",),  # the CRM and the webhook: their clients and their sender, fed by the outbox
    ("bot.web",),  # the HTTP server: ingestion, health, and the Slack route mounted beside them
    ("bot.cli", "bot.demo", "bot"),  # the command line and the demo: they assemble everything
]
#: Outside libraries a layer must not reach for: the pure layer knows no database, Slack or web framework.
FORBIDDEN_LIBRARIES = {
    0: ("sqlalchemy", "sqlmodel", "alembic", "psycopg", "sqlite3", "slack_sdk", "slack_bolt", "starlette",
        "uvicorn", "apscheduler"),
    2: ("slack_sdk", "slack_bolt", "starlette", "uvicorn"),  # services
    3: ("slack_sdk", "slack_bolt", "starlette", "uvicorn"),  # review
    4: ("slack_sdk", "slack_bolt", "starlette", "uvicorn"),  # sweeps
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports (resolved to the deepest module of ours, or the outside library's top name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_ours(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..store import y
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                found.add(_ours(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else _ours(base))
    found.discard(name)
    return found


def _ours(name: str) -> str:
    """The deepest module of ours `name` is or lies in; for an outside library, its top-level name."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return name.split(".")[0]


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer(module: str) -> int:
    best, rank = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    if rank is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return rank


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_nothing_from_a_layer_above_it(module):
    mine = layer(module)
    upward = sorted(dep for dep in GRAPH[module] if dep in MODULES and layer(dep) > mine)
    assert upward == [], f"{module} (layer {mine}) imports from layers above it: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_lower_layers_reach_for_no_database_slack_or_web_library(module):
    banned = FORBIDDEN_LIBRARIES.get(layer(module), ())
    assert sorted(dep for dep in GRAPH[module] if dep in banned) == []


def test_scoring_imports_nothing_of_the_bot():
    assert sorted(dep for name in MODULES if name.startswith("scoring") for dep in GRAPH[name]
                  if dep == "bot" or dep.startswith("bot.")) == []


def test_no_modules_import_each_other_however_indirectly():
    """Tarjan's strongly connected components over our modules: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in GRAPH[node]:
            if dep not in MODULES or dep == node:
                continue
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    assert cycles == [], "modules importing each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_layer_rules_catch_an_upward_import(tmp_path):
    """The checker itself: a domain module importing the store would be reported."""
    assert layer("bot.domain.sla") < layer("bot.store.models")
    assert layer("bot.sweeps.runner") < layer("bot.slack.blocks")
    assert layer("bot.services.leads") < layer("bot.slack.gateway")
