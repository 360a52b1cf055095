"""touches by time: an index on touches (at), so the complaints guardrail reads the week's touches, not every touch
the store holds (bench/history.py: 4 ms a run at 2,000 past leads, 171 ms at 200,000 without it)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 06:40:00.000000

An index only: SQLite and PostgreSQL add it without copying touches.
"""

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.create_index('ix_touches_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_index('ix_touches_at')
