"""wake: trial_users.wake_at, when a verdict next turns with time alone (a trigger's "not completed within N days"
wait ending, a do-not-touch window closing), indexed so the wake sweep reads only the users due

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 23:20:00.000000

A nullable column and its index: no row is copied on PostgreSQL; SQLite's batch mode copies trial_users once. Every
stored verdict starts with none: the next full rescore (the rescore sweep, daily) sets it for the users who wait.
"""

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trial_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wake_at', bot.store.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_trial_users_wake_at', ['wake_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('trial_users', schema=None) as batch_op:
        batch_op.drop_index('ix_trial_users_wake_at')
        batch_op.drop_column('wake_at')
