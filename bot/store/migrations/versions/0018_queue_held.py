"""queue on hold: a partial index on pqls (state, team, tier) of the leads on a do-not-touch hold, so routing counts
the held leads of the queue (which wait in it without holding back the leads behind them) from the few held leads
alone, and the holds sweep finds the held leads without reading every open lead

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 09:50:00.000000

An index only: SQLite and PostgreSQL add it without copying pqls.
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_HELD = "held_since IS NOT NULL"


def upgrade() -> None:
    op.create_index('ix_pqls_held', 'pqls', ['state', 'team', 'tier'], sqlite_where=sa.text(_HELD),
                    postgresql_where=sa.text(_HELD))


def downgrade() -> None:
    op.drop_index('ix_pqls_held', 'pqls')
