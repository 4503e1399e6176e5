"""Version history: list, read, diff, restore; immutability and the hash chain."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cms.content.models import ArticleVersion, ImmutableVersionError
from cms.content.reads import _LATEST_BY_ID, _LATEST_BY_ID_PG
from cms.platform.actors import Role
from cms.platform.extensions import db
from tests.helpers import create, patch


def _url(article, suffix=""):
    return f"/api/v1/articles/{article['id']}{suffix}"


def test_revise_diff_restore_keeps_history(client, keys):
    auth = keys.auth(Role.WRITER)
    v1 = create(client, auth, headline="First", tags=["a"], standfirst="S1")
    v2 = patch(client, auth, v1, headline="Second", tags=["a", "b"], message="Rework")
    v3 = patch(client, auth, v2, standfirst="S3")
    assert v3["version"] == 3

    r = client.get(_url(v1, "/diff?from=1&to=2"), headers=auth)
    assert r.status_code == 200
    diff = r.get_json()
    assert diff["from"] == 1 and diff["to"] == 2
    assert diff["changed"] == ["headline", "tags"]
    assert {"op": "replace", "path": "/headline", "value": "Second"} in diff["patch"]
    # Applying the patch to version 1 yields version 2 (RFC 6902).
    import jsonpatch

    snap1 = client.get(_url(v1, "/versions/1"), headers=auth).get_json()["content"]
    snap2 = client.get(_url(v1, "/versions/2"), headers=auth).get_json()["content"]
    assert jsonpatch.apply_patch(snap1, diff["patch"]) == snap2

    r = client.post(_url(v1, "/versions/1/restore"), json={}, headers={**auth, "If-Match": '"v3"'})
    assert r.status_code == 200, r.get_json()
    restored = r.get_json()
    assert restored["version"] == 4 and r.headers["ETag"].startswith('"v4.')
    assert restored["headline"] == "First" and restored["tags"] == ["a"] and restored["standfirst"] == "S1"
    v4 = client.get(_url(v1, "/versions/4"), headers=auth).get_json()
    assert v4["message"] == "Restored version 1"
    assert client.get(_url(v1, "/diff?from=1&to=4"), headers=auth).get_json()["changed"] == []

    listing = client.get(_url(v1, "/versions"), headers=auth).get_json()
    assert [v["number"] for v in listing["items"]] == [1, 2, 3, 4]
    assert listing["items"][1]["message"] == "Rework"
    assert listing["items"][1]["prev_hash"] == listing["items"][0]["content_hash"]


def test_restore_requires_current_etag(client, keys):
    auth = keys.auth(Role.WRITER)
    v2 = patch(client, auth, create(client, auth), headline="Two")
    url = _url(v2, "/versions/1/restore")
    assert client.post(url, json={}, headers=auth).status_code == 428
    r = client.post(url, json={}, headers={**auth, "If-Match": '"v1"'})
    assert r.status_code == 412 and r.get_json()["current_version"] == 2


def test_versions_pagination_and_missing_versions(client, keys):
    auth = keys.auth()
    article = create(client, auth)
    for i in range(4):
        article = patch(client, auth, article, headline=f"Rev {i}")
    numbers, cursor = [], None
    while True:
        r = client.get(
            _url(article, "/versions?limit=2" + (f"&cursor={cursor}" if cursor else "")), headers=auth
        )
        page = r.get_json()
        numbers += [v["number"] for v in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert numbers == [1, 2, 3, 4, 5]
    assert client.get(_url(article, "/versions/6"), headers=auth).status_code == 404
    assert client.get(_url(article, "/versions/99999999999"), headers=auth).status_code == 404
    assert client.get(_url(article, "/diff?from=1&to=6"), headers=auth).status_code == 404
    assert client.get(_url(article, "/diff?from=1"), headers=auth).status_code == 422
    r = client.get("/api/v1/articles/00000000-0000-0000-0000-000000000000/versions", headers=auth)
    assert r.status_code == 404


def _versions_of(article_id):
    return db.session.execute(
        text("SELECT number, content_hash FROM article_versions WHERE article_id = :a ORDER BY number"),
        {"a": article_id if db.engine.dialect.name == "postgresql" else article_id.replace("-", "")},
    ).all()


def _aid(article):
    return article["id"] if db.engine.dialect.name == "postgresql" else article["id"].replace("-", "")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE article_versions SET message = 'rewritten' WHERE article_id = :a",
        "DELETE FROM article_versions WHERE article_id = :a",
    ],
)
def test_database_refuses_to_change_versions(app, client, keys, statement):
    """Even SQL that bypasses the application cannot update or delete a version row."""
    article = create(client, keys.auth())
    with app.app_context():
        with pytest.raises(DBAPIError, match="immutable"), db.session.begin_nested():
            db.session.execute(text(statement), {"a": _aid(article)})
        count = db.session.execute(
            text("SELECT count(*) FROM article_versions WHERE article_id = :a"), {"a": _aid(article)}
        ).scalar()
    assert count == 1


def test_database_refuses_truncate_of_versions(app, client, keys, backend):
    """PostgreSQL also guards TRUNCATE; SQLite has no TRUNCATE (DELETE is guarded above)."""
    create(client, keys.auth())
    statement = (
        "TRUNCATE article_versions CASCADE" if backend == "postgresql" else "DELETE FROM article_versions"
    )
    with app.app_context(), pytest.raises(DBAPIError, match="immutable"), db.session.begin_nested():
        db.session.execute(text(statement))


def test_hash_chain_verifies_and_detects_tampering(app, client, keys, backend):
    auth = keys.auth()
    article = create(client, auth, headline="Original")
    for i in range(3):
        article = patch(client, auth, article, headline=f"Rev {i}")
    report = client.get(_url(article, "/integrity"), headers=auth).get_json()
    assert report == {"valid": True, "versions_checked": 4, "first_invalid_version": None, "reason": None}

    # Simulate someone with database superpowers rewriting version 2 behind our back.
    with app.app_context():
        if backend == "postgresql":
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            db.session.execute(text("DROP TRIGGER article_versions_no_update"))
        db.session.execute(
            text("UPDATE article_versions SET data = :d WHERE article_id = :a AND number = 2"),
            {"d": '{"headline": "Forged"}', "a": _aid(article)},
        )
        if backend == "postgresql":
            db.session.execute(text("SET LOCAL session_replication_role = origin"))
        db.session.commit()
    report = client.get(_url(article, "/integrity"), headers=auth).get_json()
    assert report["valid"] is False
    assert report["first_invalid_version"] == 2
    assert report["reason"] == "content does not match its hash"


def test_latest_version_read_cost_is_independent_of_history(app, client, keys, backend):
    """The read of the latest version is a primary-key lookup: the same plan for 1 or 300 versions."""
    auth = keys.auth()
    short = create(client, auth)
    long = create(client, auth)
    for i in range(300):
        long = patch(client, auth, long, headline=f"Rev {i}")
    assert client.get(_url(short), headers=auth).get_json()["version"] == 1
    assert client.get(_url(long), headers=auth).get_json()["headline"] == "Rev 299"

    def plan(article) -> str:
        with app.app_context():
            if backend == "postgresql":
                db.session.execute(text("ANALYZE articles; ANALYZE article_versions"))
                pg_sql = str(_LATEST_BY_ID_PG.compile(db.engine))
                pg_sql = pg_sql.replace("%(article_id)s::UUID", "CAST(:a AS UUID)")
                sql = "EXPLAIN (COSTS OFF) " + pg_sql
            else:
                sql = "EXPLAIN QUERY PLAN " + str(_LATEST_BY_ID.compile(db.engine)).replace("?", ":a")
            param = article["id"] if backend == "postgresql" else _aid(article)
            rows = db.session.execute(text(sql), {"a": param})
            return "\n".join(" | ".join(str(c) for c in row) for row in rows)

    one, many = plan(short), plan(long)
    if backend == "postgresql":
        for p in (one, many):
            assert "Index Scan using pk_article_versions on article_versions" in p
            assert "Index Cond: ((article_id = articles.id) AND (number = articles.current_version))" in p
            assert "Seq Scan on article_versions" not in p
    else:
        assert one == many
        assert "SEARCH article_versions USING INDEX" in many and "(article_id=? AND number=?)" in many


def test_application_layer_refuses_to_change_versions(app, client, keys):
    """The ORM refuses too, before any SQL is sent."""
    article = create(client, keys.auth())
    with app.app_context():
        version = db.session.get(ArticleVersion, (uuid.UUID(article["id"]), 1))
        version.message = "rewritten"
        with pytest.raises(ImmutableVersionError):
            db.session.flush()
        db.session.rollback()
        version = db.session.get(ArticleVersion, (uuid.UUID(article["id"]), 1))
        db.session.delete(version)
        with pytest.raises(ImmutableVersionError):
            db.session.flush()
