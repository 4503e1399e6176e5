"""The delivery log stays index-backed whatever the history: each list is read newest
first from an index, never sorted from a scan of the whole table."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from cms.platform.actors import Role
from cms.platform.extensions import db


def _statements(app, call) -> list[tuple[str, Any]]:
    executed: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM deliveries" in statement and "ORDER BY" in statement:
            executed.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return executed


def _plan(statement: str, parameters: Any) -> str:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        # Small test tables make a scan cheapest; forbid it to see what the indexes allow.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        return "\n".join(r[0] for r in cursor.fetchall())
    cursor = connection.connection.driver_connection.cursor()
    return "\n".join(r[-1] for r in cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall())


@pytest.mark.parametrize("query", ["", "?status=failed", "?status=succeeded&limit=5"])
def test_delivery_log_lists_read_an_index_newest_first(client, db_session, keys, query):
    admin = keys.auth(Role.ADMIN)
    with client.application.app_context():
        statements = _statements(
            client.application, lambda: client.get(f"/api/v1/deliveries{query}", headers=admin)
        )
        assert statements, "the list ran no query on deliveries"
        plan = _plan(*statements[0])
    expected = "ix_deliveries_status_created_id" if "status" in query else "ix_deliveries_created_id"
    assert expected in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert "Seq Scan on deliveries" not in plan and "SCAN deliveries\n" not in plan + "\n", plan
