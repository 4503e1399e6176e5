"""API keys and the role matrix."""

from __future__ import annotations

import pytest

from cms.platform.actors import Role
from cms.platform.extensions import db
from tests.helpers import create

AID = "{aid}"
# (method, path, body, lowest role allowed)
MATRIX = [
    ("GET", "/api/v1/articles", None, Role.READER),
    ("GET", f"/api/v1/articles/{AID}", None, Role.READER),
    ("GET", f"/api/v1/articles/{AID}/versions", None, Role.READER),
    ("GET", f"/api/v1/articles/{AID}/versions/1", None, Role.READER),
    ("GET", f"/api/v1/articles/{AID}/diff?from=1&to=1", None, Role.READER),
    ("GET", f"/api/v1/articles/{AID}/integrity", None, Role.READER),
    ("POST", "/api/v1/articles", {"headline": "New"}, Role.WRITER),
    ("PATCH", f"/api/v1/articles/{AID}", {"headline": "Edited"}, Role.WRITER),
    ("POST", f"/api/v1/articles/{AID}/versions/1/restore", {}, Role.WRITER),
    ("POST", f"/api/v1/articles/{AID}/publish", {}, Role.EDITOR),
    ("POST", f"/api/v1/articles/{AID}/unpublish", {}, Role.EDITOR),
    ("POST", f"/api/v1/articles/{AID}/kill", {"reason": "legal"}, Role.EDITOR),
    ("GET", "/api/v1/api-keys", None, Role.ADMIN),
    ("POST", "/api/v1/api-keys", {"name": "k", "role": "reader"}, Role.ADMIN),
    ("DELETE", "/api/v1/api-keys/00000000-0000-4000-8000-000000000000", None, Role.ADMIN),
]
RANK = [Role.READER, Role.WRITER, Role.EDITOR, Role.ADMIN]


@pytest.mark.parametrize(("method", "path", "body", "lowest"), MATRIX)
def test_role_matrix(client, keys, method, path, body, lowest):
    article = create(client, keys.auth(Role.WRITER))
    url = path.replace(AID, article["id"])
    for role in RANK:
        headers = {**keys.auth(role), "If-Match": '"v1"'}
        r = client.open(url, method=method, json=body, headers=headers)
        if RANK.index(role) < RANK.index(lowest):
            assert r.status_code == 403, (role, r.get_json())
            problem = r.get_json()
            assert problem["required_role"] == lowest and problem["role"] == role
        else:
            # Allowed: anything but an auth error (some calls are illegal transitions: 409).
            assert r.status_code not in (401, 403), (role, r.get_json())
            assert r.status_code < 500


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer cms_not-a-real-key", "Bearer " + "x" * 5000],
)
def test_missing_or_invalid_key_is_401(client, keys, header):
    headers = {"Authorization": header} if header is not None else {}
    r = client.get("/api/v1/articles", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.headers["Content-Type"] == "application/problem+json"


def test_api_key_lifecycle(client, keys):
    admin = keys.auth(Role.ADMIN)
    r = client.post("/api/v1/api-keys", json={"name": "Partner desk", "role": "editor"}, headers=admin)
    assert r.status_code == 201
    created = r.get_json()
    raw = created["key"]
    assert raw.startswith("cms_") and len(raw) > 40
    assert created["prefix"] == raw[:12] and created["role"] == "editor"

    listing = client.get("/api/v1/api-keys", headers=admin).get_json()["items"]
    mine = [k for k in listing if k["id"] == created["id"]]
    assert mine and "key" not in mine[0] and "key_hash" not in mine[0]
    assert mine[0]["prefix"] == raw[:12]
    assert raw not in client.get("/api/v1/api-keys", headers=admin).get_data(as_text=True)

    new_key = {"Authorization": f"Bearer {raw}"}
    assert client.post("/api/v1/articles", json={"headline": "x"}, headers=new_key).status_code == 201

    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/articles", headers=new_key).status_code == 401
    assert created["id"] not in [
        k["id"] for k in client.get("/api/v1/api-keys", headers=admin).get_json()["items"]
    ]
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin).status_code == 404

    for bad in (
        {"name": "x", "role": "superuser"},
        {"name": "", "role": "reader"},
        {"role": "reader"},
        {"name": "x", "role": "reader", "key": "chosen"},
    ):
        assert client.post("/api/v1/api-keys", json=bad, headers=admin).status_code == 422, bad


def test_last_admin_key_cannot_be_revoked(client, keys):
    admin = keys.auth(Role.ADMIN)
    listing = client.get("/api/v1/api-keys", headers=admin).get_json()["items"]
    admin_ids = [k["id"] for k in listing if k["role"] == "admin"]
    assert len(admin_ids) == 1
    r = client.delete(f"/api/v1/api-keys/{admin_ids[0]}", headers=admin)
    assert r.status_code == 409
    assert client.get("/api/v1/api-keys", headers=admin).status_code == 200


def test_revocation_reaches_other_processes_without_the_cache(committed_app):
    """Another process (here: another app on the same database) honours a revocation at
    once with CMS_AUTH_CACHE_SECONDS=0, and the revoking process always does."""
    from tests.factories import Keys, make_app

    keys = Keys(committed_app)
    admin = keys.auth(Role.ADMIN)
    a = committed_app.test_client()
    created = a.post("/api/v1/api-keys", json={"name": "temp", "role": "reader"}, headers=admin).get_json()
    temp = {"Authorization": f"Bearer {created['key']}"}
    other_app = make_app(committed_app.config["CMS_DATABASE_URL"], CMS_AUTH_CACHE_SECONDS=0)
    b = other_app.test_client()
    assert a.get("/api/v1/articles", headers=temp).status_code == 200  # now cached in process A
    assert b.get("/api/v1/articles", headers=temp).status_code == 200
    assert a.delete(f"/api/v1/api-keys/{created['id']}", headers=admin).status_code == 204
    assert a.get("/api/v1/articles", headers=temp).status_code == 401
    assert b.get("/api/v1/articles", headers=temp).status_code == 401
    with other_app.app_context():
        db.engine.dispose()
