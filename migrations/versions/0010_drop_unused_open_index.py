"""Drop ix_deliveries_open: no query uses it since 0007

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 12:00:00

The claim and the sweep find due deliveries through ix_deliveries_due and expired
leases through ix_deliveries_leases (0007); the fan-out benchmark's index statistics
show ix_deliveries_open never scanned. Every pending or in-flight row still paid an
entry in it: one index write fewer per new delivery and per claim.
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'in_flight')")


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_open', postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_open', ['status', 'next_attempt_at'], unique=False,
                              postgresql_where=OPEN, sqlite_where=OPEN)
