"""alerts outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:49:39.561074
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('pql_id', sa.Integer(), nullable=True),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('blocks', sa.JSON(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', bot.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', bot.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', bot.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['pql_id'], ['pqls.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_pql_id'), ['pql_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_state'), ['state'], unique=False)

    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('alert_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        # Existing leads: version 1, never posted (their alerts are owed, and the outbox will post them).
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default=sa.text('1')))
        batch_op.add_column(sa.Column('posted_version', sa.Integer(), nullable=False, server_default=sa.text('0')))



def downgrade() -> None:
    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.drop_column('posted_version')
        batch_op.drop_column('version')
        batch_op.drop_column('alert_ts')
        batch_op.drop_column('alert_channel')

    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_state'))
        batch_op.drop_index(batch_op.f('ix_notices_pql_id'))

    op.drop_table('notices')
