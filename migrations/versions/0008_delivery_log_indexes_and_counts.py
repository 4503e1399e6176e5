"""The delivery log and its counts stay fast whatever the history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:00:00

- GET /deliveries (unfiltered, or by status) walks an index newest first instead of
  scanning and sorting the whole table.
- delivery_counts holds the number of deliveries in each status, kept by triggers,
  so `cms deliveries status` no longer counts millions of rows. On PostgreSQL the
  triggers run once per statement (transition tables) and each connection adds to
  its own shard (backend pid mod 16), so concurrent workers do not queue on one
  counter row. Read it as SELECT status, sum(n) ... GROUP BY status.
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SHARDS = 16

PG_UP = f"""
CREATE FUNCTION delivery_counts_add(changes jsonb) RETURNS void AS $$
    INSERT INTO delivery_counts AS c (status, shard, n)
    SELECT key, pg_backend_pid() % {SHARDS}, value::bigint
    FROM jsonb_each_text(changes) WHERE value::bigint <> 0
    ORDER BY key
    ON CONFLICT (status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
$$ LANGUAGE sql;

CREATE FUNCTION deliveries_counted() RETURNS trigger AS $$
DECLARE
    changes jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_object_agg(status, n) INTO changes
        FROM (SELECT status, count(*) AS n FROM new_rows GROUP BY status) t;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_object_agg(status, -n) INTO changes
        FROM (SELECT status, count(*) AS n FROM old_rows GROUP BY status) t;
    ELSE
        SELECT jsonb_object_agg(status, n) INTO changes FROM (
            SELECT status, sum(d) AS n FROM (
                SELECT o.status, -1 AS d FROM old_rows o JOIN new_rows w ON w.id = o.id
                WHERE o.status <> w.status
                UNION ALL
                SELECT w.status, 1 FROM old_rows o JOIN new_rows w ON w.id = o.id
                WHERE o.status <> w.status
            ) moved GROUP BY status
        ) t;
    END IF;
    IF changes IS NOT NULL THEN
        PERFORM delivery_counts_add(changes);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_counted();
CREATE TRIGGER deliveries_counted_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_counted();
CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_counted();
"""
PG_DOWN = """
DROP TRIGGER deliveries_counted_delete ON deliveries;
DROP TRIGGER deliveries_counted_update ON deliveries;
DROP TRIGGER deliveries_counted_insert ON deliveries;
DROP FUNCTION deliveries_counted();
DROP FUNCTION delivery_counts_add(jsonb);
"""
_ADD = ("INSERT INTO delivery_counts (status, shard, n) VALUES ({s}, 0, {d})"
        " ON CONFLICT (status, shard) DO UPDATE SET n = n + {d}")
SQLITE_UP = [
    "CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries BEGIN "
    + _ADD.format(s="NEW.status", d=1) + "; END",
    "CREATE TRIGGER deliveries_counted_update AFTER UPDATE OF status ON deliveries"
    " WHEN OLD.status <> NEW.status BEGIN "
    + _ADD.format(s="OLD.status", d=-1) + "; " + _ADD.format(s="NEW.status", d=1) + "; END",
    "CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries BEGIN "
    + _ADD.format(s="OLD.status", d=-1) + "; END",
]


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_deliveries_status_created_id', ['status', 'created_at', 'id'], unique=False)
    op.create_table(
        'delivery_counts',
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('shard', sa.SmallInteger(), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('status', 'shard', name=op.f('pk_delivery_counts')),
    )
    op.execute("INSERT INTO delivery_counts (status, shard, n)"
               " SELECT status, 0, count(*) FROM deliveries GROUP BY status")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_UP)
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DOWN)
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER deliveries_counted_{name}")
    op.drop_table('delivery_counts')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_created_id')
        batch_op.drop_index('ix_deliveries_created_id')
