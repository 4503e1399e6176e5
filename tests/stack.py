"""The production topology in miniature: real Celery worker and beat processes on
real Redis and PostgreSQL, driven through the API, delivering to loopback receivers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from cms.accounts import keys as api_keys
from cms.platform.actors import Role
from cms.platform.broker import QUEUES
from cms.platform.extensions import db
from tests.dbs import IN_CI

REDIS_URL = os.environ.get("CMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]

# Fast clocks for real processes: retries after 0.5-1 s instead of 5 s-24 h.
FAST_SETTINGS = {
    "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "CMS_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,1,1,1",
    "CMS_WEBHOOK_TIMEOUT": "3",
    "CMS_WEBHOOK_CONNECT_TIMEOUT": "2",
    "CMS_WEBHOOK_LEASE_SECONDS": "6",
    "CMS_SWEEP_INTERVAL": "0.25",
    "CMS_RELAY_INTERVAL": "0.5",
}


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def require_redis() -> None:
    """Skip locally without Redis; in CI a missing server is a failure."""
    if redis_available():
        return
    if IN_CI:
        pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}")
    pytest.skip("Redis not reachable (set CI=true to make this a failure)")


@dataclass
class Stack:
    database_url: str
    tmp: Path
    broker_url: str = REDIS_URL
    prefix: str = field(default_factory=lambda: f"cmstest-{uuid.uuid4().hex[:8]}:")
    settings: dict[str, str] = field(default_factory=lambda: dict(FAST_SETTINGS))
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    app: Flask | None = None
    admin_key: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
        env.update(
            {
                "CMS_DATABASE_URL": self.database_url,
                "CMS_BROKER_URL": self.broker_url,
                "CMS_BROKER_PREFIX": self.prefix,
                "CMS_SECRET_KEY": "test",
                "CMS_VAR_DIR": str(self.tmp / "var"),
                "PYTHONUNBUFFERED": "1",
                **self.settings,
                **extra,
            }
        )
        return env

    def make_app(self) -> Flask:
        from cms.app import create_app

        self.app = create_app(
            {
                "CMS_DATABASE_URL": self.database_url,
                "CMS_SECRET_KEY": "test",
                "CMS_BROKER_URL": self.broker_url,
                "CMS_BROKER_PREFIX": self.prefix,
                **self.settings,
            }
        )
        with self.app.app_context():
            _key, self.admin_key = api_keys.create(db.session, name="e2e admin", role=Role.ADMIN)
            db.session.commit()
        return self.app

    @property
    def client(self) -> FlaskClient:
        assert self.app is not None
        return self.app.test_client()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_path = self.tmp / f"{name}-{len(self.processes)}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, proc, log_path))
        return proc

    def worker(self, concurrency: int = 2, wait: bool = True, **extra: str) -> subprocess.Popen[bytes]:
        args = [
            str(BIN / "celery"),
            "-A",
            "workers",
            "worker",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"test-{uuid.uuid4().hex[:6]}@%h",
            "-Q",
            ",".join(QUEUES),
        ]
        proc = self._spawn("worker", args, self.env(**extra))
        if wait:
            self.wait_log(proc, b"ready.")
        return proc

    def beat(self, **extra: str) -> subprocess.Popen[bytes]:
        args = [str(BIN / "celery"), "-A", "workers", "beat"]
        proc = self._spawn("beat", args, self.env(**extra))
        self.wait_log(proc, b"beat: Starting")
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> bytes:
        for _name, p, path in self.processes:
            if p is proc:
                return path.read_bytes()
        return b""

    def wait_log(self, proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.log_of(proc):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"process did not log {marker!r}:\n{self.log_of(proc).decode(errors='replace')[-4000:]}"
        )

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the process and everything it started (prefork children included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        # Prefork children and anything else left in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> str:
        out = []
        for name, _p, path in self.processes:
            out.append(
                f"----- {name} ({path.name}) -----\n" + path.read_bytes().decode(errors="replace")[-6000:]
            )
        return "\n".join(out)

    def close(self) -> None:
        for _name, proc, _path in self.processes:
            self.stop(proc)
        if self.app is not None:
            with self.app.app_context():
                db.engine.dispose()
        try:
            r = redis.Redis.from_url(self.broker_url)
            keys = list(r.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                r.delete(*keys)
        except redis.RedisError:
            pass

    # ----------------------------------------------------------------- API helpers

    def api(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        response = self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.get_json())
        return response

    def subscribe(self, url: str, **fields: Any) -> dict[str, Any]:
        return self.api("POST", "/subscriptions", 201, json={"url": url, **fields}).get_json()

    def article(self, **fields: Any) -> dict[str, Any]:
        body = {"headline": f"Story {uuid.uuid4().hex[:8]}", "body": "<p>Text</p>", **fields}
        return self.api("POST", "/articles", 201, json=body).get_json()

    def publish(self, article_id: str, **body: Any) -> dict[str, Any]:
        return self.api("POST", f"/articles/{article_id}/publish", 200, json=body).get_json()

    def revise(self, article: dict[str, Any], **fields: Any) -> dict[str, Any]:
        r = self.api(
            "PATCH",
            f"/articles/{article['id']}",
            200,
            json=fields,
            headers={"If-Match": f'"v{article["version"]}"'},
        )
        return r.get_json()
