"""Outbox inserts notify listening workers (PostgreSQL LISTEN/NOTIFY)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:20:00

"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# A statement-level trigger: one notification per INSERT, delivered when the
# inserting transaction commits (and never if it rolls back), so a worker wakes
# exactly when there is a committed event to relay.
PG_NOTIFY = """
CREATE FUNCTION outbox_events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('cms_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER outbox_events_notify
    AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify();
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_NOTIFY)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
        op.execute("DROP FUNCTION outbox_events_notify()")
