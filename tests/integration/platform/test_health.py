"""Probes: /healthz answers while the process lives; /readyz checks the database, the
migrations and the broker, and says why it is not ready (503)."""

from __future__ import annotations

from tests.factories import make_app
from tests.helpers import free_port as closed_port  # nothing listens there
from tests.stack import REDIS_URL, require_redis


def test_healthz_and_readyz(app, client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    body = ready.get_json()
    assert body["status"] == "ready" and body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("at head")


def test_readyz_checks_a_real_redis(databases):
    require_redis()
    app = make_app(databases.copy_url(), CMS_BROKER_URL=REDIS_URL)
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.get_json()["checks"]["broker"] == "ok"


def test_readyz_names_every_reason(databases, tmp_path):
    dead_broker = f"redis://127.0.0.1:{closed_port()}/0"
    app = make_app(databases.fresh_url(), CMS_BROKER_URL=dead_broker)  # never migrated
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.headers["Content-Type"] == "application/problem+json"
    assert r.headers["Retry-After"] == "5"
    body = r.get_json()
    assert body["checks"]["broker"].startswith("unreachable")
    assert body["checks"]["migrations"].startswith("not migrated")
    assert "broker" in body["detail"] and "migrations" in body["detail"]

    gone = make_app(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere", CMS_BROKER_URL="")
    r = gone.test_client().get("/readyz")
    assert r.status_code == 503 and r.get_json()["checks"]["database"].startswith("unreachable")
    assert gone.test_client().get("/healthz").status_code == 200


def test_api_index_links_to_docs_spec_and_health(client):
    for path in ("/api/v1", "/api/v1/"):
        r = client.get(path)
        assert r.status_code == 200 and r.is_json, path
        links = r.get_json()["links"]
    for name in ("docs", "openapi", "health", "ready"):
        assert client.get(links[name]).status_code in (200, 503), name  # /readyz may be 503 without a broker
    assert "/api/v1" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_unknown_routes_answer_a_problem_in_our_words(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    body = r.get_json()
    assert (
        body["detail"].startswith("Nothing here at /api/v1/nothing-here.")
        and "/api/v1/docs" in body["detail"]
    )
    assert "spelling" not in body["detail"]  # werkzeug's text
    r = client.delete("/api/v1/articles")
    assert (
        r.status_code == 405
        and r.get_json()["detail"] == "DELETE is not allowed here; allowed: GET, HEAD, OPTIONS, POST."
    )


def test_every_response_forbids_content_sniffing(client):
    for path in (
        "/api/v1",
        "/api/v1/articles",
        "/api/v1/nothing",
        "/healthz",
        "/api/v1/docs",
        "/api/v1/openapi.json",
    ):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path
