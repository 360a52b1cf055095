"""indexes for a store with history: what routing, delivery, the sweeps and the review read often, so that
their cost does not grow with the leads of past years (bench/history.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:33:00

Plain CREATE INDEX, not batch mode: no table is copied, however big (the events table above all).
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_BEHIND = "version > posted_version"  # an alert to edit
_CONVERSION = "name = 'trial_converted'"


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_index('ix_assignments_rep_at', 'assignments', ['rep_id', 'at'])
    op.create_index('ix_events_conversions', 'events', ['user_id'], **_partial(_CONVERSION))
    op.create_index('ix_pqls_rep_state', 'pqls', ['rep_id', 'state'])
    op.create_index('ix_pqls_state_updated', 'pqls', ['state', 'updated_at'])
    op.drop_index('ix_pqls_state', 'pqls')  # ix_pqls_state_updated serves whatever it served
    op.create_index('ix_pqls_created_at', 'pqls', ['created_at'])
    op.create_index('ix_pqls_dispositioned_at', 'pqls', ['dispositioned_at'])
    op.create_index('ix_pqls_alert_behind', 'pqls', ['id'], **_partial(_BEHIND))
    op.create_index('ix_trial_users_signup_at', 'trial_users', ['signup_at'])


def downgrade() -> None:
    op.drop_index('ix_trial_users_signup_at', 'trial_users')
    op.drop_index('ix_pqls_alert_behind', 'pqls')
    op.drop_index('ix_pqls_dispositioned_at', 'pqls')
    op.drop_index('ix_pqls_created_at', 'pqls')
    op.create_index('ix_pqls_state', 'pqls', ['state'])
    op.drop_index('ix_pqls_state_updated', 'pqls')
    op.drop_index('ix_pqls_rep_state', 'pqls')
    op.drop_index('ix_events_conversions', 'events')
    op.drop_index('ix_assignments_rep_at', 'assignments')
