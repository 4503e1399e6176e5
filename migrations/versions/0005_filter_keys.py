"""Case-insensitive section and tag filters: case-folded copies, indexed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:20:00

The keys are folded in Python (str.casefold), not with SQL lower(): SQLite's and
a C-locale PostgreSQL's lower() leave non-ASCII letters alone ("Русия").
Existing rows are filled in here, in batches.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BATCH = 1000


def _backfill(table, key_column, source, primary_key):
    conn = op.get_bind()
    t = sa.table(table, *(sa.column(c) for c in (*primary_key, source, key_column)))
    rows = conn.execute(sa.select(*(t.c[c] for c in primary_key), t.c[source])
                        .where(t.c[source].is_not(None))).all()
    update = (sa.update(t).where(*(t.c[c] == sa.bindparam(f"pk_{c}") for c in primary_key))
              .values({key_column: sa.bindparam("key")}))
    for start in range(0, len(rows), BATCH):
        conn.execute(update, [
            {**{f"pk_{c}": r[i] for i, c in enumerate(primary_key)}, "key": r[-1].casefold()}
            for r in rows[start:start + BATCH]
        ])


def upgrade():
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('section_key', sa.String(length=100), nullable=True))
    with op.batch_alter_table('article_tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tag_key', sa.String(length=100), nullable=True))
    _backfill('articles', 'section_key', 'section', ('id',))
    _backfill('article_tags', 'tag_key', 'tag', ('article_id', 'tag'))
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_section')
        batch_op.create_index(batch_op.f('ix_articles_section_key'), ['section_key'], unique=False)
    with op.batch_alter_table('article_tags', schema=None) as batch_op:
        batch_op.alter_column('tag_key', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_index('ix_article_tags_tag')
        batch_op.create_index(batch_op.f('ix_article_tags_tag_key'), ['tag_key'], unique=False)


def downgrade():
    with op.batch_alter_table('article_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_article_tags_tag_key'))
        batch_op.create_index('ix_article_tags_tag', ['tag'], unique=False)
        batch_op.drop_column('tag_key')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_section_key'))
        batch_op.create_index('ix_articles_section', ['section'], unique=False)
        batch_op.drop_column('section_key')
