"""Feed tokens (a partner's private feeds)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 17:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'feed_tokens',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('partner_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('prefix', sa.String(16), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_feed_tokens_partner_id_partners')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_feed_tokens_token_hash')),
    )
    op.create_index(op.f('ix_feed_tokens_partner_id'), 'feed_tokens', ['partner_id'])


def downgrade():
    op.drop_index(op.f('ix_feed_tokens_partner_id'), table_name='feed_tokens')
    op.drop_table('feed_tokens')
