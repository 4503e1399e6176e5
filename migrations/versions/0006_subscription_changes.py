"""A change counter for subscriptions, kept by triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 05:00:00

Workers cache the subscriptions and reload them when this counter moves. It used to
be (count, max(updated_at)): an update stamped earlier than the maximum (another
process's clock) left the caches stale. The triggers fire on the columns a delivery
depends on, not on the health columns that every webhook outcome updates.
NOTE: recreating the subscriptions table on SQLite (batch mode) drops its triggers;
a migration that does so must create them again.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

WATCHED = ("url, format, enabled, max_in_flight, headers, event_types, sections, tags, languages,"
           " secret, previous_secret, previous_secret_expires_at, deleted_at")
BUMP = "UPDATE subscription_changes SET version = version + 1 WHERE id = 1"

PG_UP = f"""
CREATE FUNCTION subscriptions_changed() RETURNS trigger AS $$
BEGIN
    {BUMP};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER subscriptions_changed_rows AFTER INSERT OR DELETE OR TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_changed();
CREATE TRIGGER subscriptions_changed_columns AFTER UPDATE OF {WATCHED} ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_changed();
"""
SQLITE_UP = [
    f"CREATE TRIGGER subscriptions_changed_insert AFTER INSERT ON subscriptions BEGIN {BUMP}; END",
    f"CREATE TRIGGER subscriptions_changed_delete AFTER DELETE ON subscriptions BEGIN {BUMP}; END",
    f"CREATE TRIGGER subscriptions_changed_columns AFTER UPDATE OF {WATCHED} ON subscriptions"
    f" BEGIN {BUMP}; END",
]


def upgrade():
    op.create_table(
        'subscription_changes',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_changes')),
    )
    op.execute("INSERT INTO subscription_changes (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_UP)
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER subscriptions_changed_columns ON subscriptions")
        op.execute("DROP TRIGGER subscriptions_changed_rows ON subscriptions")
        op.execute("DROP FUNCTION subscriptions_changed()")
    else:
        for name in ("insert", "delete", "columns"):
            op.execute(f"DROP TRIGGER subscriptions_changed_{name}")
    op.drop_table('subscription_changes')
