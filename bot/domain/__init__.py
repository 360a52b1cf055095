"""The sales process's own rules: lifecycle, business time, SLAs and what is due, caps, guardrails.

Pure: no database, no Slack, no clock. Times come in as arguments."""
