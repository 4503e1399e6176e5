"""Partial indexes for open deliveries (ordering checks, in-flight caps)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 06:50:00

The full (subscription_id, article_id, sequence) index grew with the whole
delivery history and every finished delivery added an entry to it; the
ordering and cap checks only ever look at open deliveries.
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'in_flight')")
IN_FLIGHT = sa.text("status = 'in_flight'")


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_order')
        batch_op.create_index('ix_deliveries_open_order', ['subscription_id', 'article_id', 'sequence'],
                              unique=False, postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.create_index('ix_deliveries_open_article', ['article_id', 'subscription_id'],
                              unique=False, postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.create_index('ix_deliveries_in_flight', ['subscription_id'],
                              unique=False, postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_in_flight', postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)
        batch_op.drop_index('ix_deliveries_open_article', postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.drop_index('ix_deliveries_open_order', postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.create_index('ix_deliveries_order', ['subscription_id', 'article_id', 'sequence'], unique=False)
