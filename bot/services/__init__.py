"""What people and events do to leads: a session and `now` in, what changed out (audited, outbox written)."""
