"""The deployment files: docker-compose.yml against the compose specification, the
topology it describes, .env.example, the Dockerfile and its lock file; and every
command the containers run, run for real on this machine (no Docker engine here)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from standardwebhooks import Webhook

from cms.config import SETTINGS
from tests.helpers import free_port
from tests.receivers import Receiver
from tests.schemas import load_schema
from tests.stack import REDIS_URL, require_redis

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP_SERVICES = ("migrate", "api", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification(compose):
    jsonschema.Draft7Validator(load_schema("compose-spec.json")).validate(compose)


def test_compose_topology(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "beat", "receiver"}
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"] and services[name]["volumes"]
    assert "--appendonly" in services["redis"]["command"]
    assert "cms db upgrade" in " ".join(services["migrate"]["command"])
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully", name
        assert after["redis"]["condition"] == after["postgres"]["condition"] == "service_healthy", name
    # One image for everything that runs our code.
    assert {services[n]["image"] for n in (*APP_SERVICES, "receiver")} == {"newsroom-cms:latest"}
    # Workers scale (no fixed name, no host port); exactly one scheduler.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["receiver"]["profiles"] == ["receiver"]
    assert "gunicorn" in services["api"]["command"] and "cms.wsgi:app" in services["api"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "workers", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "workers", "beat"]


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^# (CMS_[A-Z_]+)=", text, re.M)
    assert len(documented) == len(set(documented)), "a setting is documented twice"
    assert set(SETTINGS) <= set(documented), set(SETTINGS) - set(documented)
    extra = set(documented) - set(SETTINGS)
    assert extra <= {"CMS_HOST_PORT", "CMS_API_WORKERS", "CMS_API_THREADS", "CMS_API_KEEPALIVE"}, extra
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^# [A-Z_]+=", line):
            # Uncommenting a setting must give a clean value: its description is the line above.
            assert " " not in line[2:].split("=", 1)[1].strip(), f"text after the value: {line}"
            above = lines[i - 1]
            assert above.startswith("# ") and not re.match(r"^# [A-Z_]+=", above), f"undocumented: {line}"


def test_dockerfile_is_slim_non_root_and_pinned():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    if base.startswith("${"):  # a build argument: its default is what users build from
        base = re.search(rf"^ARG {base[2:-1]}=(\S+)", dockerfile, re.M).group(1)
    assert "slim" in base and ":" in base and not base.endswith(":latest")
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "--requirement requirements.lock" in dockerfile
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", v) for v in lock.values())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=\[ ]", requirement)[0].lower().replace("_", "-")
        assert name in lock, f"{name} is not pinned in requirements.lock"


def test_the_containers_commands_run_for_real(compose, pg_databases, tmp_path):
    """migrate, api, worker and beat exactly as compose starts them, on PostgreSQL and Redis."""
    require_redis()
    services = compose["services"]
    admin_key = "cms_" + uuid.uuid4().hex + uuid.uuid4().hex
    api_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        {
            # The compose file's settings, with this machine's servers instead of the containers'.
            "CMS_DATABASE_URL": pg_databases.fresh_url(),
            "CMS_BROKER_URL": REDIS_URL,
            "CMS_BROKER_PREFIX": f"deploytest-{uuid.uuid4().hex[:6]}:",
            "CMS_SECRET_KEY": "test",
            "CMS_ADMIN_KEY": admin_key,
            "CMS_PORT": str(api_port),
            "CMS_WORKER_METRICS_PORT": str(metrics_port),
            "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "CMS_VAR_DIR": str(tmp_path / "var"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "PATH": f"{BIN}:{env.get('PATH', '')}",
        }
    )

    migrate = subprocess.run(
        services["migrate"]["command"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "CMS_ADMIN_KEY" in migrate.stdout

    procs, logs = {}, {}
    try:
        for name in ("api", "worker", "beat"):
            logs[name] = tmp_path / f"{name}.log"
            procs[name] = subprocess.Popen(
                services[name]["command"],
                cwd=ROOT,
                env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus" / name)},
                stdout=logs[name].open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = requests.get(f"{base}/readyz", timeout=5)
                if ready.status_code == 200 and b"ready." in logs["worker"].read_bytes():
                    break
            except requests.RequestException:  # refused while binding, or slow while the worker boots
                pass
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, [p.read_text()[-2000:] for p in logs.values()]

        receiver = Receiver()
        receiver.script([500])  # the retry (5 s later) is sent by beat's sweep
        auth = {"Authorization": f"Bearer {admin_key}"}
        sub = requests.post(f"{base}/api/v1/subscriptions", json={"url": receiver.url()}, headers=auth).json()
        article = requests.post(f"{base}/api/v1/articles", json={"headline": "Deployed"}, headers=auth).json()
        requests.post(f"{base}/api/v1/articles/{article['id']}/publish", json={}, headers=auth)
        [got] = receiver.wait_ok(1, timeout=30)
        assert Webhook(sub["secret"]).verify(got.body, got.headers)["type"] == "article.published"
        receiver.close()

        assert requests.get(f"{base}/metrics", timeout=5).status_code == 200
        worker_metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert "cms_deliveries_total" in worker_metrics
        assert b"beat: Starting; sends relay-outbox every" in logs["beat"].read_bytes()
        assert b"Sending due task" not in logs["beat"].read_bytes()  # one line per run, idle or not
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_the_example_receiver_verifies_and_logs(tmp_path):
    """examples/receiver.py, the compose 'receiver' service, fed by our own sender."""
    import asyncio

    from cms.webhooks.transport.sender import Job, Sender
    from cms.webhooks.transport.signing import generate_secret, secret_key
    from cms.webhooks.transport.urls import parse_networks

    secret = generate_secret()
    env = {**os.environ, "RECEIVER_SECRET": secret, "RECEIVER_PORT": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receiver.py")], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        banner = proc.stdout.readline()
        assert "receiving webhooks" in banner
        port = int(banner.rsplit(":", 1)[1])
        body = json.dumps(
            {
                "type": "article.published",
                "timestamp": "2024-11-07T20:50:00Z",
                "data": {"sequence": 1, "article": {"headline": "Путин поздрави Тръмп"}},
            }
        ).encode()

        def job(key: bytes) -> Job:
            return Job(
                uuid.uuid4(),
                uuid.uuid4(),
                uuid.uuid4(),
                f"http://127.0.0.1:{port}/hook",
                body,
                (key,),
                (),
                1,
                4,
            )

        async def send() -> list[int | None]:
            sender = Sender(allowed=parse_networks("127.0.0.0/8"))
            await sender.open()
            good = job(secret_key(secret))
            results = [await sender.send(good), await sender.send(good), await sender.send(job(b"wrong" * 8))]
            await sender.close()
            return [r.status_code or r.error for r in results]  # an error says what went wrong

        assert asyncio.run(send()) == [204, 204, 401]
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert (
            lines[0]["verified"]
            and not lines[0]["duplicate"]
            and lines[0]["headline"] == "Путин поздрави Тръмп"
        )
        assert lines[1]["duplicate"]  # the same webhook-id again: at-least-once, de-duplicated
        assert not lines[2]["verified"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
