"""Partial indexes the claim, the sweep and lease expiry use on both databases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 05:30:00

SQLite only uses a partial index when the query's condition implies the index's:
"status = 'pending'" does not imply "status IN ('pending', 'in_flight')", so the
claim and sweep scanned every delivery there (87 ms at 50k rows, every second,
holding the write lock). These match the queries' conditions exactly.
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
IN_FLIGHT = sa.text("status = 'in_flight'")


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_due', ['next_attempt_at', 'created_at'], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)
        batch_op.create_index('ix_deliveries_leases', ['lease_expires_at'], unique=False,
                              postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_leases', postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)
        batch_op.drop_index('ix_deliveries_due', postgresql_where=PENDING, sqlite_where=PENDING)
