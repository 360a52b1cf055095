"""notice payload: a typed notice says what to render, as data ({"view": "manager_card", ...}), and its Block Kit
is built when it is delivered (bot/slack/blocks/notices.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:48:31.205098

A nullable column: notices queued before it keep their stored blocks, and SQLite adds it without copying the table.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('payload')
