"""The periodic rescore: every user judged again when the clock or the rules have moved.

The heuristic (bot/services/pipeline.py, `rescore_if_due`):
- due when the last rescore is RESCORE_EVERY_HOURS old, or used another rules file (an edited file is reloaded
  first, so editing it is enough to recalibrate everyone); otherwise it does nothing;
- the rescore itself is a service (bot/services/rescore.py): new leads it makes are alerted there, and routed in
  its transaction, or on SQLite in one of their own right after it (bot/services/pipeline.py).
"""

from __future__ import annotations

from datetime import datetime

from bot.sweeps.common import SweepContext


def rescore(sweeps: SweepContext, now: datetime) -> int:
    """Rescore everyone if it is due; returns how many users were judged (0 when it was not due)."""
    report = sweeps.pipeline.rescore_if_due(at=now, every_hours=sweeps.settings.rescore_every_hours)
    return 0 if report is None else report.users
