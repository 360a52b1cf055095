"""Fault tests: Slack misbehaving, `pqlbot serve` killed mid-burst, two processes on one store.

- test_slack_faults.py: Slack answering 429, 500 and dropping connections (before and after it acted) on
  30% of calls; every alert and thread reply is delivered exactly once.
- test_serve_crash.py: `pqlbot serve` SIGKILLed mid-burst (with an alert posted but not recorded) and
  restarted; nothing lost, nothing doubled.
- test_two_processes.py: two sweepers at once run each scheduled step once; two `pqlbot serve` processes
  on one PostgreSQL store alert and assign each lead once.
- Twenty reps clicking Claim on one lead at once, one winner: tests/slack/test_app.py::
  test_twenty_reps_clicking_claim_at_once_make_one_winner (on every store backend, PostgreSQL included).
"""
