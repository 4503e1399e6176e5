"""Partners and their keys; the published-content projection with full-text search;
change-feed positions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 14:00:00

- partners, partner_keys; subscriptions.partner_id (null: managed by the newsroom).
  Changing a partner's filters or enabled flag moves subscription_changes, as a
  subscription change does (workers reload their endpoints).
- published_articles (+ published_tags): each ever-published article as partners
  see it. PostgreSQL: a tsvector column with a GIN index; SQLite: an FTS5 table.
- outbox_events.feed_position and the feed_clock row. Existing article events get
  positions in the order they happened; existing published articles are projected
  and indexed here.
"""

import uuid

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BUMP = "UPDATE subscription_changes SET version = version + 1 WHERE id = 1"
WATCHED = "enabled, sections, tags, languages, deleted_at"
PG_TRIGGER = f"""
CREATE FUNCTION partners_changed() RETURNS trigger AS $$
BEGIN
    {BUMP};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER partners_changed_columns AFTER UPDATE OF {WATCHED} ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION partners_changed();
"""
SQLITE_TRIGGER = f"CREATE TRIGGER partners_changed_columns AFTER UPDATE OF {WATCHED} ON partners BEGIN {BUMP}; END"
LIVE = sa.text("state = 'published'")


def _uuid():
    return sa.Uuid()


def _time(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json():
    return sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def upgrade():
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        'partners',
        sa.Column('id', _uuid(), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('sections', _json(), nullable=False),
        sa.Column('tags', _json(), nullable=False),
        sa.Column('languages', _json(), nullable=False),
        sa.Column('max_subscriptions', sa.Integer(), nullable=False),
        sa.Column('rate_limit_per_minute', sa.Integer(), nullable=False),
        sa.Column('cursor_secret', sa.String(64), nullable=False),
        _time('created_at'), _time('updated_at'), _time('deleted_at', True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    )
    op.create_table(
        'partner_keys',
        sa.Column('id', _uuid(), nullable=False),
        sa.Column('partner_id', _uuid(), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('prefix', sa.String(16), nullable=False),
        sa.Column('key_hash', sa.String(64), nullable=False),
        _time('created_at'), _time('revoked_at', True),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_keys_partner_id_partners')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_partner_keys_key_hash')),
    )
    op.create_index(op.f('ix_partner_keys_partner_id'), 'partner_keys', ['partner_id'])
    if pg:
        op.add_column('subscriptions', sa.Column(
            'partner_id', _uuid(), sa.ForeignKey('partners.id', name='fk_subscriptions_partner_id_partners'),
            nullable=True))
        op.execute(PG_TRIGGER)
    else:  # SQLite adds a column without recreating the table (which would drop its triggers)
        op.add_column('subscriptions', sa.Column('partner_id', _uuid(), nullable=True))
        op.execute(SQLITE_TRIGGER)
    op.create_index(op.f('ix_subscriptions_partner_id'), 'subscriptions', ['partner_id'])

    op.create_table(
        'feed_clock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_clock')),
    )
    op.add_column('outbox_events', sa.Column('feed_position', sa.BigInteger(), nullable=True))
    last = _number_existing_events()
    op.execute(f"INSERT INTO feed_clock (id, position) VALUES (1, {last})")
    op.create_index(op.f('uq_outbox_events_feed_position'), 'outbox_events', ['feed_position'], unique=True)

    op.create_table(
        'published_articles',
        sa.Column('article_id', _uuid(), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('event_id', _uuid(), nullable=False),
        sa.Column('slug', sa.String(200), nullable=False),
        sa.Column('section_key', sa.String(100), nullable=True),
        sa.Column('language', sa.String(35), nullable=False),
        sa.Column('tag_keys', _json(), nullable=False),
        sa.Column('kill_reason', sa.Text(), nullable=True),
        _time('created_at'), _time('first_published_at'), _time('published_at'), _time('changed_at'),
        sa.Column('updated_by', sa.String(200), nullable=False),
        sa.Column('search_rowid', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['article_id'], ['articles.id'],
                                name=op.f('fk_published_articles_article_id_articles')),
        sa.PrimaryKeyConstraint('article_id', name=op.f('pk_published_articles')),
    )
    op.create_index('ix_published_articles_live', 'published_articles', ['published_at', 'article_id'],
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index(op.f('ix_published_articles_slug'), 'published_articles', ['slug'])
    op.create_index(op.f('ix_published_articles_section_key'), 'published_articles', ['section_key'])
    op.create_table(
        'published_tags',
        sa.Column('article_id', _uuid(), nullable=False),
        sa.Column('tag_key', sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['published_articles.article_id'], ondelete='CASCADE',
                                name=op.f('fk_published_tags_article_id_published_articles')),
        sa.PrimaryKeyConstraint('article_id', 'tag_key', name=op.f('pk_published_tags')),
    )
    op.create_index(op.f('ix_published_tags_tag_key'), 'published_tags', ['tag_key'])
    if pg:
        op.execute("ALTER TABLE published_articles ADD COLUMN search tsvector")
        op.execute("CREATE INDEX ix_published_articles_search ON published_articles USING gin (search)")
    else:
        op.execute("CREATE VIRTUAL TABLE published_search USING fts5("
                   "headline, standfirst, body, tokenize = 'porter unicode61 remove_diacritics 2')")
    _project_existing_articles()


def _number_existing_events():
    """Article events so far, numbered in the order they happened; returns the last number."""
    conn = op.get_bind()
    ids = [r[0] for r in conn.execute(sa.text(
        "SELECT id FROM outbox_events WHERE article_id IS NOT NULL ORDER BY occurred_at, id"))]
    update = sa.text("UPDATE outbox_events SET feed_position = :p WHERE id = :id")
    for start in range(0, len(ids), 1000):
        conn.execute(update, [{"p": start + i + 1, "id": event_id}
                              for i, event_id in enumerate(ids[start:start + 1000])])
    return len(ids)


def _project_existing_articles():
    """What the publishing commands would have written for each published article."""
    from cms.content.published import record_existing  # the commands' own projection code

    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT a.id FROM articles a WHERE a.published_version IS NOT NULL ORDER BY a.id")).all()
    for (article_id,) in rows:  # SQLite gives the id as hex text
        record_existing(conn, article_id if isinstance(article_id, uuid.UUID) else uuid.UUID(article_id))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER partners_changed_columns ON partners")
        op.execute("DROP FUNCTION partners_changed()")
    else:
        op.execute("DROP TRIGGER partners_changed_columns")
        op.execute("DROP TABLE published_search")
    op.drop_table('published_tags')
    op.drop_table('published_articles')
    op.drop_index(op.f('uq_outbox_events_feed_position'), table_name='outbox_events')
    with op.batch_alter_table('outbox_events') as batch_op:
        batch_op.drop_column('feed_position')
    op.drop_table('feed_clock')
    op.drop_index(op.f('ix_subscriptions_partner_id'), table_name='subscriptions')
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('fk_subscriptions_partner_id_partners', 'subscriptions', type_='foreignkey')
        op.drop_column('subscriptions', 'partner_id')
    else:
        op.execute("ALTER TABLE subscriptions DROP COLUMN partner_id")
    op.drop_index(op.f('ix_partner_keys_partner_id'), table_name='partner_keys')
    op.drop_table('partner_keys')
    op.drop_table('partners')
