"""Counts per minute for the ops overview; a failing subscription's last error and next retry

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 19:00:00

- minute_tallies: (Unix minute, metric, shard) -> n. Outbox events are counted by a
  trigger (every writer, in its transaction); delivery attempts and latencies by the
  statement that records outcomes. On PostgreSQL the trigger runs once per statement
  and each connection adds to its own shard (backend pid mod 16), like delivery_counts.
- subscriptions.last_error / next_retry_at: of the latest failing batch, so the console
  lists failing subscriptions without searching their deliveries.
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

PG_UP = """
CREATE FUNCTION outbox_events_tallied() RETURNS trigger AS $$
BEGIN
    INSERT INTO minute_tallies AS t (minute, metric, shard, n)
    SELECT floor(extract(epoch FROM occurred_at) / 60)::bigint, 'events', pg_backend_pid() % 16, count(*)
    FROM new_rows GROUP BY 1 ORDER BY 1
    ON CONFLICT (minute, metric, shard) DO UPDATE SET n = t.n + EXCLUDED.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outbox_events_tallied AFTER INSERT ON outbox_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_tallied();
"""
PG_DOWN = """
DROP TRIGGER outbox_events_tallied ON outbox_events;
DROP FUNCTION outbox_events_tallied();
"""
# SQLite keeps naive UTC text; strftime('%s') reads it as UTC.
SQLITE_UP = (
    "CREATE TRIGGER outbox_events_tallied AFTER INSERT ON outbox_events BEGIN "
    "INSERT INTO minute_tallies (minute, metric, shard, n) "
    "VALUES (CAST(strftime('%s', NEW.occurred_at) AS INTEGER) / 60, 'events', 0, 1) "
    "ON CONFLICT (minute, metric, shard) DO UPDATE SET n = n + 1; END"
)


def upgrade():
    op.create_table(
        'minute_tallies',
        sa.Column('minute', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('minute', 'metric', 'shard', name=op.f('pk_minute_tallies')),
    )
    # Not in batch mode: on SQLite that recreates the table and loses its triggers.
    op.add_column('subscriptions', sa.Column('last_error', sa.Text(), nullable=True))
    op.add_column('subscriptions', sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_UP)
    else:
        op.execute(SQLITE_UP)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DOWN)
    else:
        op.execute("DROP TRIGGER outbox_events_tallied")
    for column in ('next_retry_at', 'last_error'):
        if op.get_bind().dialect.name == "postgresql":
            op.drop_column('subscriptions', column)
        else:  # in place (batch mode would recreate the table and lose its triggers)
            op.execute(f"ALTER TABLE subscriptions DROP COLUMN {column}")
    op.drop_table('minute_tallies')
