"""The read pool behind GET /articles/{id} on PostgreSQL: connections are reused,
a dead one is replaced without failing the request, domain errors keep them."""

from __future__ import annotations

import psycopg
import pytest

from cms.db import ReadPool
from cms.models import Role
from tests.conftest import Keys
from tests.dbs import PG_ADMIN_DSN
from tests.helpers import create


@pytest.fixture
def pg_app(pg_databases):
    from cms.extensions import db
    from tests.conftest import make_app

    app = make_app(pg_databases.copy_url())
    yield app
    app.extensions["cms_read_pool"].close()
    with app.app_context():
        db.engine.dispose()


def backend_pids(pool: ReadPool) -> list[int]:
    pids = []
    while True:
        try:
            born, conn = pool._idle.get_nowait()
        except Exception:
            break
        pids.append((born, conn))
    for item in pids:
        pool._idle.put(item)
    return [conn.info.backend_pid for _born, conn in pids]


def test_reads_reuse_connections_and_survive_a_dropped_one(pg_app):
    keys = Keys(pg_app)
    client = pg_app.test_client()
    reader = keys.auth(Role.READER)
    article = create(client, keys.auth(Role.WRITER))
    pool: ReadPool = pg_app.extensions["cms_read_pool"]
    for _ in range(5):
        assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200
    [pid] = backend_pids(pool)  # one request at a time: one connection, reused

    # The server drops it (restart, idle timeout, failover): the next read still works.
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    r = client.get(f"/api/v1/articles/{article['id']}", headers=reader)
    assert r.status_code == 200 and r.get_json()["id"] == article["id"]
    [new_pid] = backend_pids(pool)
    assert new_pid != pid

    # A 404 is the article's fault, not the connection's: it goes back to the pool.
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/api/v1/articles/{missing}", headers=reader).status_code == 404
    assert backend_pids(pool) == [new_pid]


def test_pool_keeps_at_most_max_idle(pg_databases):
    url = pg_databases.copy_url()
    pool = ReadPool(url, max_idle=2)
    taken = [pool._take() for _ in range(4)]
    for born, conn, _fresh in taken:
        pool._give_back(born, conn)
    assert len(backend_pids(pool)) == 2
    assert sum(conn.closed for _b, conn, _f in taken) == 2
    pool.close()
