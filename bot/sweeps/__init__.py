"""The scheduled jobs: idempotent sweeps over the store that queue typed notices."""
