"""The read pool behind GET /articles/{id} on PostgreSQL: connections are reused,
a dead one is replaced without failing the request, domain errors keep them."""

from __future__ import annotations

import psycopg
import pytest

from cms.platform.actors import Role
from cms.platform.db import ReadPool
from tests.dbs import PG_ADMIN_DSN
from tests.factories import Keys
from tests.helpers import create


@pytest.fixture
def pg_app(pg_databases):
    from cms.platform.extensions import db
    from tests.factories import make_app

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


def test_libpq_read_path_returns_what_the_cursor_path_does(pg_app):
    """The pool's autocommit connections read through libpq directly (cms.platform.db_prepared);
    inside a transaction the cursor is used. Both give the same view, in every state."""
    import uuid

    from cms.content import reads as article_reads
    from tests.helpers import patch, post, seed_fields

    keys = Keys(pg_app)
    client = pg_app.test_client()
    editor = keys.auth(Role.EDITOR)
    draft = create(client, editor, headline="Проектобюджет за 2027 година")
    published = create(client, editor, **seed_fields())
    post(client, editor, published["id"], "publish")
    patch(client, editor, published, standfirst="Revised «standfirst»")
    killed = create(client, editor)
    post(client, editor, killed["id"], "publish")
    post(client, editor, killed["id"], "kill", reason="Legal: injunction")

    pool: ReadPool = pg_app.extensions["cms_read_pool"]
    dsn = pool.dsn
    with psycopg.connect(dsn) as in_transaction, psycopg.connect(dsn, autocommit=True) as direct:
        for article in (draft, published, killed):
            article_id = uuid.UUID(article["id"])
            fast = article_reads.read(direct, article_id)
            slow = article_reads.read(in_transaction, article_id)
            assert fast == slow
            assert fast.created_at.tzinfo is not None and fast.created_at.utcoffset().total_seconds() == 0
        assert in_transaction.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert article_reads._LATEST_PREPARED._decoders.get(in_transaction) is None  # never prepared there
        view = article_reads.read(direct, uuid.UUID(killed["id"]))
        assert (view.state, view.kill_reason, view.published_version) == ("killed", "Legal: injunction", 1)
        assert isinstance(view.content, str) and view.content_dict()["headline"] == killed["headline"]

        # A statement deallocated behind our back (a pooler's DISCARD ALL) is prepared again.
        direct.execute("DEALLOCATE ALL")
        assert article_reads.read(direct, uuid.UUID(draft["id"])).version == 1
        missing = uuid.UUID("00000000-0000-4000-8000-000000000000")
        with pytest.raises(article_reads.NotFound):
            article_reads.read(direct, missing)


def test_prepared_read_declines_unknown_types_and_raises_real_errors(pg_databases):
    from cms.platform.db_prepared import NOT_HANDLED, PreparedRead

    with psycopg.connect(ReadPool(pg_databases.copy_url()).dsn, autocommit=True) as conn:
        numeric = PreparedRead("test_numeric", "SELECT $1::int4 * 1.5", [23])
        assert numeric.fetch(conn, [(2).to_bytes(4, "big")]) is NOT_HANDLED  # numeric: no decoder
        ints = PreparedRead("test_ints", "SELECT $1::int4 + 1, NULL::text WHERE $1 > 0", [23])
        assert ints.fetch(conn, [(-5).to_bytes(4, "big", signed=True)]) is None
        assert ints.fetch(conn, [(41).to_bytes(4, "big")]) == (42, None)
        with pytest.raises(psycopg.errors.DivisionByZero):
            PreparedRead("test_div", "SELECT 1 / $1::int4", [23]).fetch(conn, [(0).to_bytes(4, "big")])
        assert ints.fetch(conn, [(1).to_bytes(4, "big")]) == (2, None)  # the connection is fine
        with pytest.raises(psycopg.errors.UndefinedTable):
            PreparedRead("test_missing", "SELECT id FROM no_such_table WHERE id = $1", [23]).fetch(
                conn, [(1).to_bytes(4, "big")]
            )

        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            ints.fetch(conn, [(1).to_bytes(4, "big")])
        assert conn.closed


def test_every_api_connection_dropped_at_once_fails_no_request(pg_app):
    """After pg_terminate_backend of all of the API's connections (a failover, a restart),
    reads, lists, writes and publishes all answer normally: nothing is a 500 or a 503."""
    keys = Keys(pg_app)
    client = pg_app.test_client()
    editor = keys.auth(Role.EDITOR)
    articles = [create(client, editor, headline=f"Story {i}") for i in range(3)]
    threads = 4  # fill both pools with several connections, as a busy server has

    def exercise() -> list[int]:
        statuses = []
        for article in articles:
            statuses.append(client.get(f"/api/v1/articles/{article['id']}", headers=editor).status_code)
        statuses.append(client.get("/api/v1/articles?tag=x", headers=editor).status_code)
        statuses.append(
            client.post(
                "/api/v1/articles", json={"headline": "New", "body": "<p>x</p>"}, headers=editor
            ).status_code
        )
        return statuses

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        assert all(s < 300 for batch in pool.map(lambda _: exercise(), range(threads)) for s in batch)
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 'cms-api%%'",
            [database],
        ).fetchone()[0]
    assert killed >= 2  # the ORM pool's and the read pool's
    statuses = exercise()
    assert statuses == [200, 200, 200, 200, 201], statuses
    r = client.post(f"/api/v1/articles/{articles[0]['id']}/publish", headers=editor)
    assert r.status_code == 200, r.get_json()
