"""The embedded database (SQLite, WAL): reads never queue behind a writer, API commits
are durable, and the claim and sweep query uses an index."""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from cms.platform.actors import Role
from cms.platform.extensions import db
from cms.webhooks import dispatch, outcomes
from cms.webhooks.policy import policy as delivery_policy
from tests.factories import Keys, make_app
from tests.helpers import create


@pytest.fixture
def sqlite_app(tmp_path):
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'cms.sqlite3'}"
    app = make_app(url)
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_reads_do_not_wait_for_a_writer(sqlite_app, tmp_path):
    keys = Keys(sqlite_app)
    client = sqlite_app.test_client()
    auth = keys.auth(Role.EDITOR)
    article = create(client, auth, headline="Readable")
    url = f"/api/v1/articles/{article['id']}"
    assert client.get(url, headers=auth).status_code == 200  # auth cached, connection warm

    writer = sqlite3.connect(tmp_path / "cms.sqlite3", isolation_level=None, timeout=30)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock ...
    writer.execute("UPDATE articles SET headline = 'Being written' WHERE 1 = 0")
    results: list[tuple[str, int]] = []

    def read() -> None:
        for path in (url, "/api/v1/articles", f"{url}/versions"):
            results.append((path, client.get(path, headers=auth).status_code))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=20)
    try:
        # ... and every read answered while it still did: none queued behind it.
        assert not reader.is_alive(), "a GET waited for the writer"
        assert [status for _path, status in results] == [200, 200, 200]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()
    # Writes still take the write lock at BEGIN (they queue, they do not fail).
    assert (
        client.patch(url, json={"headline": "After"}, headers={**auth, "If-Match": '"v1"'}).status_code == 200
    )


def test_api_commits_are_durable_and_workers_relax(sqlite_app, tmp_path):
    with sqlite_app.app_context():
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        db.session.remove()
    worker_app = make_app(f"sqlite:///{tmp_path / 'cms.sqlite3'}", CMS_DB_SYNCHRONOUS_COMMIT=False)
    with worker_app.app_context():
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        db.session.remove()
        db.engine.dispose()


def _plans_of(app, work) -> list[tuple[str, list[str]]]:
    """Run ``work()`` and EXPLAIN QUERY PLAN each statement it sent, with its real parameters."""
    executed: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE")) and not executemany:
            executed.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            work()
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        raw = db.engine.raw_connection()
        try:
            plans = []
            for statement, parameters in executed:
                rows = raw.cursor().execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans.append((statement, [r[-1] for r in rows]))
            return plans
        finally:
            raw.close()


def test_claim_sweep_and_lease_expiry_use_indexes_not_scans(sqlite_app):
    """The queries that run every second, as they are sent: no full scan of deliveries."""
    policy = delivery_policy(sqlite_app.config)
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def work() -> None:
        dispatch.claim(db.session, now, policy, limit=100, endpoints={}, bodies=None)
        dispatch.claim(
            db.session, now, policy, limit=100, endpoints={}, bodies=None, subscription_ids=[uuid.uuid4()]
        )
        dispatch.has_due(db.session, now, [uuid.uuid4()])
        outcomes.expire_leases(db.session, now, policy)
        db.session.rollback()

    plans = _plans_of(sqlite_app, work)
    assert len(plans) >= 4
    # A walk of a partial index (open, due, in-flight rows) is bounded by the work to do;
    # a walk of the table or of an index over every delivery grows with the history.
    partial = ("ix_deliveries_due", "ix_deliveries_leases", "ix_deliveries_in_flight", "ix_deliveries_open")
    for statement, plan in plans:
        if "deliveries" not in statement:
            continue
        for line in plan:
            if re.match(r"SCAN (deliveries|earlier)\b", line):
                assert any(name in line for name in partial), (line, statement)
