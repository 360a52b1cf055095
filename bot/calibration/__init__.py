"""The calibration loop (seeds 000 and 001): replay a history through a rules file and read, per trigger, who
converted, whether reps were needed, and whether the volume fits the team. Pure: events, rules and a calendar in,
figures out; no database, Slack or clock (`bot/cli/backtest.py` reads the file or the store and prints)."""
