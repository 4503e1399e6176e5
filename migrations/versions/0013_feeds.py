"""Feed tokens (a partner's private feeds); the built-in WebSub hub's subscribers

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
    op.create_table(
        'websub_subscriptions',
        sa.Column('topic_url', sa.Text(), nullable=False),
        sa.Column('callback_url', sa.Text(), nullable=False),
        sa.Column('secret', sa.String(200), nullable=True),
        sa.Column('lease_seconds', sa.Integer(), nullable=False),
        sa.Column('pending', sa.String(16), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('topic_url', 'callback_url', name=op.f('pk_websub_subscriptions')),
    )
    op.create_table(
        'websub_topics',
        sa.Column('topic_url', sa.Text(), nullable=False),
        sa.Column('etag', sa.String(64), nullable=False),
        sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('topic_url', name=op.f('pk_websub_topics')),
    )
    op.create_table(
        'websub_clock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_websub_clock')),
    )
    op.execute("INSERT INTO websub_clock (id, position) VALUES (1, 0)")


def downgrade():
    for table in ('websub_clock', 'websub_topics', 'websub_subscriptions'):
        op.drop_table(table)
    op.drop_index(op.f('ix_feed_tokens_partner_id'), table_name='feed_tokens')
    op.drop_table('feed_tokens')
