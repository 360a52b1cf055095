"""The sales process's own rules, each written once: the lead lifecycle, business time, the SLA clock and what
is due, the daily cap, the outreach kit, the volume guardrail, the review's bars, periods, the round-robin pick.

Pure: no database, no Slack, no clock. Times come in as arguments; services and sweeps apply these rules to the
store.
"""
