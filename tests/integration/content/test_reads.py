"""GET /articles/{id} as it runs in production: the request's session on the engine's
pool, psycopg's server-side prepared statements; dropped connections are replaced,
and what cannot be served is a 503 problem, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event

from cms.platform.actors import Role
from cms.platform.extensions import db
from tests.conftest import Keys, make_app
from tests.dbs import PG_ADMIN_DSN
from tests.helpers import create, patch, post, seed_fields

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def pg_app_with(pg_databases: Any) -> Iterator[Callable[..., Flask]]:
    """Apps on their own committed PostgreSQL databases, with settings overridden."""
    apps: list[Flask] = []

    def make(**settings: Any) -> Flask:
        app = make_app(pg_databases.copy_url(), **settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def pg_app(pg_app_with: Callable[..., Flask]) -> Flask:
    return pg_app_with()


def database_of(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]


def api_backends(app: Flask) -> list[int]:
    """The server processes behind the app's pooled connections."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'cms-api'",
            [database_of(app)],
        ).fetchall()
    return sorted(pid for (pid,) in rows)


def terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["type"].endswith("/unavailable")


def test_reads_reuse_a_pooled_connection_and_survive_a_dropped_one(pg_app):
    keys = Keys(pg_app)
    client = pg_app.test_client()
    reader = keys.auth(Role.READER)
    article = create(client, keys.auth(Role.WRITER))
    for _ in range(5):
        assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200
    [pid] = api_backends(pg_app)  # one request at a time: one connection, reused

    # The server drops it (restart, idle timeout, failover): the pre-ping at checkout
    # notices, and the read runs on a new connection.
    terminate(pid)
    r = client.get(f"/api/v1/articles/{article['id']}", headers=reader)
    assert r.status_code == 200 and r.get_json()["id"] == article["id"]
    [new_pid] = api_backends(pg_app)
    assert new_pid != pid

    # A 404 is the article's fault, not the connection's: it stays in the pool.
    assert client.get(f"/api/v1/articles/{MISSING}", headers=reader).status_code == 404
    assert api_backends(pg_app) == [new_pid]


def test_reads_run_a_statement_prepared_on_the_server(pg_app_with):
    """SQLAlchemy sends the same text every time, so psycopg prepares it once
    (after CMS_DB_PREPARE_THRESHOLD executions) and later reads reuse it."""
    app = pg_app_with(CMS_DB_PREPARE_THRESHOLD="2")
    keys = Keys(app)
    client = app.test_client()
    reader = keys.auth(Role.READER)
    articles = [create(client, keys.auth(Role.WRITER), headline=f"Story {i}") for i in range(3)]
    for _ in range(4):
        for article in articles:
            assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200
    with app.app_context():
        connection = db.session.connection()
        prepared = connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
        reads = [s for (s,) in prepared if "LATERAL" in s and "article_versions" in s]
        # The reads ran in autocommit (a ROLLBACK would have dropped the statement);
        # the pool gave the connection back transactional, as writes need it.
        assert not connection.connection.driver_connection.autocommit
    assert len(reads) == 1, reads


def test_read_is_the_articles_view_in_every_state(app, db_session, keys):
    """The one-statement read gives what the ORM objects give, on both backends."""
    from cms.content import reads
    from cms.content.models import Article, ArticleVersion

    client = app.test_client()
    editor = keys.auth(Role.EDITOR)
    draft = create(client, editor, headline="Проектобюджет за 2027 година")
    published = create(client, editor, **seed_fields())
    post(client, editor, published["id"], "publish")
    patch(client, editor, published, standfirst="Revised «standfirst»")
    killed = create(client, editor)
    post(client, editor, killed["id"], "publish")
    post(client, editor, killed["id"], "kill", reason="Legal: injunction")
    with app.app_context():
        for created in (draft, published, killed):
            article_id = uuid.UUID(created["id"])
            view = reads.read(db.session, article_id)
            article = db.session.get(Article, article_id)
            version = db.session.get(ArticleVersion, (article_id, article.current_version))
            assert view.as_dict() == reads.view_of(article, version).as_dict()
            assert isinstance(view.content, str)  # decoded only when a body is rendered
            assert view.created_at.tzinfo is not None and view.created_at.utcoffset().total_seconds() == 0
        view = reads.read(db.session, uuid.UUID(killed["id"]))
        assert (view.state, view.kill_reason, view.published_version) == ("killed", "Legal: injunction", 1)
        with pytest.raises(reads.NotFound):
            reads.read(db.session, uuid.UUID(MISSING))


def test_a_connection_dropped_mid_request_answers_503_not_500(pg_app):
    """The pre-ping passed, then the server went away: the statement fails, and the
    request answers 503 problem+json with Retry-After; the next one is served."""
    keys = Keys(pg_app)
    client = pg_app.test_client()
    reader = keys.auth(Role.READER)
    article = create(client, keys.auth(Role.WRITER))
    assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200
    with pg_app.app_context():
        engine = db.engine

    dropped: list[int] = []

    def drop_once(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not dropped:
            dropped.append(dbapi_connection.info.backend_pid)
            terminate(dropped[0])

    event.listen(engine, "checkout", drop_once)
    try:
        assert_unavailable(client.get(f"/api/v1/articles/{article['id']}", headers=reader))
    finally:
        event.remove(engine, "checkout", drop_once)
    assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200


def test_a_request_waits_for_a_free_connection_at_most_the_pool_timeout(pg_app_with):
    app = pg_app_with(CMS_DB_POOL_SIZE="1", CMS_DB_MAX_OVERFLOW="0", CMS_DB_POOL_TIMEOUT="0.2")
    keys = Keys(app)
    client = app.test_client()
    reader = keys.auth(Role.READER)
    article = create(client, keys.auth(Role.WRITER))
    with app.app_context():
        held = db.engine.connect()  # the pool's only connection
        try:
            assert_unavailable(client.get(f"/api/v1/articles/{article['id']}", headers=reader))
        finally:
            held.close()
    assert client.get(f"/api/v1/articles/{article['id']}", headers=reader).status_code == 200


def test_every_api_connection_dropped_at_once_fails_no_request(pg_app):
    """After pg_terminate_backend of all of the API's connections (a failover, a restart),
    reads, lists, writes and publishes all answer normally: nothing is a 500 or a 503."""
    keys = Keys(pg_app)
    client = pg_app.test_client()
    editor = keys.auth(Role.EDITOR)
    articles = [create(client, editor, headline=f"Story {i}") for i in range(3)]
    threads = 4  # fill the pool with several connections, as a busy server has

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

    with ThreadPoolExecutor(threads) as pool:
        assert all(s < 300 for batch in pool.map(lambda _: exercise(), range(threads)) for s in batch)
    backends = api_backends(pg_app)
    assert backends
    for pid in backends:
        terminate(pid)
    statuses = exercise()
    assert statuses == [200, 200, 200, 200, 201], statuses
    r = client.post(f"/api/v1/articles/{articles[0]['id']}/publish", headers=editor)
    assert r.status_code == 200, r.get_json()
