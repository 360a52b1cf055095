"""queue by tier: an index on pqls (state, tier), so routing counts the leads waiting at or above a tier from the
index alone (a queue of 10,000 read row by row cost 20 ms a routing)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 19:20:00.000000

An index only: SQLite and PostgreSQL add it without copying pqls.
"""

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.create_index('ix_pqls_state_tier', ['state', 'tier'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.drop_index('ix_pqls_state_tier')
