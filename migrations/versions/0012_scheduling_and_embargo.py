"""Scheduled actions and embargoes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 16:00:00

- scheduled_actions: publish / unpublish / lift_embargo at a time, claimed in the
  database when due; embargoes: one row per embargo period of an article.
- published_articles.embargo_until, outbox_events.embargo_until: what partners
  without ``receives_embargoed`` must not see yet.
- deliveries.embargo (early | held | released), subscriptions.embargo (hold | send),
  partners.receives_embargoed. Both new settings change what a subscription sends,
  so the change-counter triggers watch them too (recreated with the longer lists).
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BUMP = "UPDATE subscription_changes SET version = version + 1 WHERE id = 1"
SUBSCRIPTIONS_0006 = ("url, format, enabled, max_in_flight, headers, event_types, sections, tags, languages,"
                      " secret, previous_secret, previous_secret_expires_at, deleted_at")
PARTNERS_0011 = "enabled, sections, tags, languages, deleted_at"
WATCHED = {
    "subscriptions": (SUBSCRIPTIONS_0006, SUBSCRIPTIONS_0006 + ", embargo", "subscriptions_changed"),
    "partners": (PARTNERS_0011, PARTNERS_0011 + ", receives_embargoed", "partners_changed"),
}
PENDING = sa.text("status = 'pending'")
OPEN = sa.text("ended_at IS NULL")


def _time(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _triggers(new):
    """Point each change-counter trigger at the column list of this revision (``new``) or the last."""
    pg = op.get_bind().dialect.name == "postgresql"
    for table, (old_columns, new_columns, function) in WATCHED.items():
        columns = new_columns if new else old_columns
        name = f"{table}_changed_columns"
        if pg:
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"CREATE TRIGGER {name} AFTER UPDATE OF {columns} ON {table}"
                       f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
            op.execute(f"CREATE TRIGGER {name} AFTER UPDATE OF {columns} ON {table} BEGIN {BUMP}; END")


def upgrade():
    op.create_table(
        'scheduled_actions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        _time('run_at'),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('correction_note', sa.Text(), nullable=True),
        _time('embargo_until', True),
        sa.Column('scheduled_by', sa.String(200), nullable=False),
        sa.Column('scheduled_role', sa.String(16), nullable=False),
        sa.Column('scheduled_key_id', sa.Uuid(), nullable=True),
        _time('created_at'),
        _time('updated_at'),
        _time('fired_at', True),
        sa.Column('lateness_seconds', sa.Float(), nullable=True),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_scheduled_actions_article_id_articles')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_actions')),
    )
    op.create_index('ix_scheduled_actions_due', 'scheduled_actions', ['run_at', 'id'],
                    postgresql_where=PENDING, sqlite_where=PENDING)
    op.create_index('ix_scheduled_actions_article', 'scheduled_actions', ['article_id', 'status'])
    op.create_table(
        'embargoes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('article_id', sa.Uuid(), nullable=False),
        _time('until'),
        _time('original_until'),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        _time('created_at'),
        sa.Column('created_by', sa.String(200), nullable=False),
        _time('ended_at', True),
        sa.Column('ended_by', sa.String(200), nullable=True),
        sa.Column('outcome', sa.String(16), nullable=True),
        sa.Column('end_event_id', sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_embargoes_article_id_articles')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_embargoes')),
    )
    op.create_index('uq_embargoes_open_article', 'embargoes', ['article_id'], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    op.create_index('ix_embargoes_article_created', 'embargoes', ['article_id', 'created_at'])
    op.add_column('articles', _time('embargo_until', True))
    op.add_column('published_articles', _time('embargo_until', True))
    op.add_column('outbox_events', _time('embargo_until', True))
    op.add_column('deliveries', sa.Column('embargo', sa.String(8), nullable=True))
    op.add_column('subscriptions', sa.Column('embargo', sa.String(8), nullable=False, server_default='hold'))
    op.add_column('partners', sa.Column('receives_embargoed', sa.Boolean(), nullable=False,
                                        server_default=sa.false()))
    _triggers(new=True)


def downgrade():
    _triggers(new=False)
    pg = op.get_bind().dialect.name == "postgresql"
    for table, column in (('partners', 'receives_embargoed'), ('subscriptions', 'embargo'),
                          ('deliveries', 'embargo'), ('outbox_events', 'embargo_until'),
                          ('published_articles', 'embargo_until'), ('articles', 'embargo_until')):
        if pg:
            op.drop_column(table, column)
        else:  # SQLite drops a plain column in place (batch mode would recreate the table and lose triggers)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index('ix_embargoes_article_created', table_name='embargoes')
    op.drop_index('uq_embargoes_open_article', table_name='embargoes')
    op.drop_table('embargoes')
    op.drop_index('ix_scheduled_actions_article', table_name='scheduled_actions')
    op.drop_index('ix_scheduled_actions_due', table_name='scheduled_actions')
    op.drop_table('scheduled_actions')
