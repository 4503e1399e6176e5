"""The `cms` console script and the WSGI entry point, run as real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect

from cms.accounts import keys as api_keys
from cms.platform.extensions import db
from tests.dbs import DatabaseFactory
from tests.factories import make_app
from tests.helpers import free_port

BIN = Path(sys.executable).parent


def _cms(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMS_DATABASE_URL": url, "CMS_SECRET_KEY": "cli-test"}
    result = subprocess.run([str(BIN / "cms"), *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_on_an_empty_database_then_down_and_up_again(databases: DatabaseFactory):
    url = databases.fresh_url()
    _cms(url, "db", "upgrade")
    assert {"articles", "article_versions", "api_keys", "outbox_events", "idempotency_keys"} <= _tables(url)
    assert _cms(url, "db", "current").stdout.strip().endswith("(head)")
    _cms(url, "db", "downgrade", "base")
    assert _tables(url) <= {"alembic_version"}
    _cms(url, "db", "upgrade")
    assert "article_versions" in _tables(url)


def test_create_api_key_prints_the_key_last(databases: DatabaseFactory):
    url = databases.copy_url()
    out = _cms(url, "create-api-key", "--role", "editor", "--name", "Night desk").stdout
    key = out.strip().splitlines()[-1]
    assert key.startswith("cms_") and " " not in key
    assert _cms(url, "create-api-key", "--role", "chief", check=False).returncode != 0
    first = _cms(url, "ensure-admin-key").stdout.strip().splitlines()[-1]
    assert first.startswith("cms_")
    assert "already exists" in _cms(url, "ensure-admin-key").stdout


def test_admin_key_from_the_environment_is_accepted_only_if_it_can_authenticate(databases: DatabaseFactory):
    """CMS_ADMIN_KEY as a deployment sets it: refused at provisioning unless requests accept it."""
    url = databases.copy_url()
    env = {**os.environ, "CMS_DATABASE_URL": url, "CMS_SECRET_KEY": "cli-test"}
    bare = "k" * 48  # long enough, but without the cms_ prefix
    refused = subprocess.run(
        [str(BIN / "cms"), "ensure-admin-key"],
        env={**env, "CMS_ADMIN_KEY": bare},
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "must start with 'cms_'" in refused.stderr
    assert bare not in refused.stderr + refused.stdout
    good = "cms_" + "k" * 44
    provisioned = subprocess.run(
        [str(BIN / "cms"), "ensure-admin-key"],
        env={**env, "CMS_ADMIN_KEY": good},
        capture_output=True,
        text=True,
    )
    assert provisioned.returncode == 0, provisioned.stderr
    app = make_app(url)
    with app.app_context():
        assert api_keys.authenticate(db.session, good) is not None
        assert api_keys.authenticate(db.session, bare) is None
        db.engine.dispose()


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.parametrize("server", ["gunicorn", "cms-run"])
def test_served_over_real_http(databases: DatabaseFactory, server: str, tmp_path: Path):
    """gunicorn cms.wsgi:app (production) and `cms run` (development) serve the API,
    with one access line per request (werkzeug's own is not written) and no query string."""
    url = databases.copy_url()
    key = _cms(url, "create-api-key", "--role", "editor").stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "CMS_DATABASE_URL": url, "CMS_SECRET_KEY": "http-test", "CMS_PORT": str(port)}
    cmd = (
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "cms.wsgi:app"]
        if server == "gunicorn"
        else [str(BIN / "cms"), "run"]
    )
    out = tmp_path / "server.log"
    proc = subprocess.Popen(cmd, env=env, stdout=out.open("wb"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        _wait_for(base + "/openapi.json", proc)
        auth = {"Authorization": f"Bearer {key}"}
        r = requests.post(
            base + "/articles",
            json={"headline": "Над 40 000 души на протест в София", "language": "bg"},
            headers=auth,
            timeout=10,
        )
        assert r.status_code == 201
        assert r.json()["slug"] == "nad-40-000-dushi-na-protest-v-sofiia"
        r = requests.get(f"{base}/articles/{r.json()['id']}", headers=auth, timeout=10)
        assert r.status_code == 200 and r.headers["ETag"].startswith('"v1.')
        request_id = f"unauthorised{os.getpid()}"
        r = requests.get(base + "/articles?tag=secret-q", headers={"X-Request-Id": request_id}, timeout=10)
        assert r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json"
        deadline = time.monotonic() + 10
        while request_id not in out.read_text(errors="replace"):
            assert time.monotonic() < deadline, out.read_text(errors="replace")[-2000:]
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = out.read_text(errors="replace")
    assert text.count("GET /api/v1/articles 401") == 1 and "secret-q" not in text, text[-2000:]


def test_gunicorns_own_warnings_come_out(databases: DatabaseFactory, tmp_path):
    """gunicorn logs through its own format (with %(process)d): our logging setup must not
    break it, or "Invalid request" and "Worker exiting" turn into logging tracebacks."""
    url = databases.copy_url()
    port = free_port()
    env = {**os.environ, "CMS_DATABASE_URL": url, "CMS_SECRET_KEY": "log-test", "CMS_PORT": str(port)}
    env["CMS_API_WORKERS"] = "1"
    out = tmp_path / "gunicorn.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--config",
                "python:cms.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "cms.wsgi:app",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", proc)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"NOT A REQUEST LINE\r\n\r\n")
                assert s.recv(1024).startswith(b"HTTP/1.1 400")
            # A long URL (over gunicorn's default 4 KB request line) gets our problem, not an HTML page.
            long = requests.get(f"http://127.0.0.1:{port}/api/v1/articles?q={'x' * 6000}", timeout=10)
            assert long.status_code == 414 and long.headers["Content-Type"] == "application/problem+json"
            # Keep-alive (gthread workers): three requests, one after the other, on one connection.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                answers = b""
                for _ in range(3):
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    answers += _one_response(s)
                assert answers.count(b"HTTP/1.1 200") == 3 and b"Connection: close" not in answers
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = out.read_text()
    assert "Logging error" not in text and "Traceback" not in text, text[-2000:]
    # gunicorn's lines go through our handler: JSON like every other line.
    records = [json.loads(line) for line in text.splitlines()]
    gunicorn = [r for r in records if r["logger"] == "gunicorn.error"]
    assert any(r["message"].startswith("Invalid request from ip=127.0.0.1") for r in gunicorn), text
    assert any(r["message"].startswith(("Worker exiting", "Shutting down")) for r in gunicorn), text
    [long_url] = [r for r in records if r["logger"] == "cms.access" and r["status"] == 414]
    assert long_url["path"] == "/api/v1/articles" and "q=" not in long_url["message"]  # no query string


def _one_response(sock: socket.socket) -> bytes:
    """Read one HTTP response (headers and its Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body
