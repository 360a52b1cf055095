"""The weekly PQL review and the 4-week pilot scorecard: what the Friday meeting reads.

A pure model, then its renderers:

- `wording`: how figures read (`fmt`, `plain`) and the review's words (templates/review/*.j2);
- `model`: `build(metrics)` turns a `Metrics` (bot/services/metrics.py) into a `Review` of `Figure`s, one step
  per section of seed 002's Friday agenda (volume, acceptance, signals, outreach), each against its target;
- `actions`: the action items the numbers call for;
- `pilot`: the pilot scorecard (seed 002 section 8): success metrics, guardrails week by week, the verdict;
- `formats`: the review and the scorecard as text, JSON and CSV;
- `load`: both read from the store (`review_for`, `for_settings`, `scorecard`, `roster_size`);
- `chart`: the review's PNG (imported on demand: it loads matplotlib).

Slack shows the review through bot/slack/blocks/review.py; nothing here knows Slack. A figure with nothing to
divide by is None and reads "no data": nothing here divides by zero, and an empty week is a review that says so.
"""

from bot.review.actions import action_items, busy_runs
from bot.review.formats import scorecard_csv, scorecard_json, scorecard_text, sections, text, to_csv, to_json
from bot.review.load import for_settings, review_for, roster_size, scorecard
from bot.review.model import Figure, Review, build
from bot.review.pilot import PilotWeek, Scorecard, SuccessMetric
from bot.review.wording import fmt, words

__all__ = [
    "Figure", "PilotWeek", "Review", "Scorecard", "SuccessMetric", "action_items", "build", "busy_runs", "fmt",
    "for_settings", "review_for", "roster_size", "scorecard", "scorecard_csv", "scorecard_json", "scorecard_text",
    "sections", "text", "to_csv", "to_json", "words",
]
