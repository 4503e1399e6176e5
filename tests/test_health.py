"""Probes: /healthz answers while the process lives; /readyz checks the database, the
migrations and the broker, and says why it is not ready (503)."""

from __future__ import annotations

import socket

from tests.conftest import make_app
from tests.stack import REDIS_URL, require_redis


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
