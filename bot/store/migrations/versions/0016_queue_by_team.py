"""queue by team: the index on pqls (state, tier) becomes (state, team, tier), so routing with a teams file counts
each team's queue by tier from the index alone, as it already did with one team

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 06:20:00.000000

An index only: SQLite and PostgreSQL add it without copying pqls.
"""

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.create_index('ix_pqls_state_team_tier', ['state', 'team', 'tier'], unique=False)
        batch_op.drop_index('ix_pqls_state_tier')


def downgrade() -> None:
    with op.batch_alter_table('pqls', schema=None) as batch_op:
        batch_op.create_index('ix_pqls_state_tier', ['state', 'tier'], unique=False)
        batch_op.drop_index('ix_pqls_state_team_tier')
