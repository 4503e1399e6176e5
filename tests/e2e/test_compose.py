"""``docker compose up``, for real: the production topology of docker-compose.yml, built
from the Dockerfile and run by a real Docker engine, following the README's operations
section step by step (first admin key, migrations, scaling, logs).

The engine and the local base images come from tests/docker_engine.py. It runs with
CI=true (where it must pass) and wherever this process can start dockerd (root);
``CMS_TEST_COMPOSE=0`` turns it off outside CI. It takes about two to five minutes;
the first run on a machine also builds the base images (about a minute more).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from cms.content.seed import parse_wire_story
from tests.docker_engine import Engine, EngineUnavailable
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"
PROJECT = "newsroom-cms-test"
SEED = ROOT / "cms" / "fixtures" / "seed-article.txt"
FAN_OUT = 150  # articles published while a worker is killed

pytestmark = pytest.mark.compose


def timed(label: str, started: float) -> None:
    print(f"[compose] {label}: {time.monotonic() - started:.1f} s", flush=True)


def wait_for(what: str, probe: Callable[[], Any], timeout: float, on_timeout: Callable[[], str] = str) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``on_timeout()``'s text."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")
        time.sleep(0.5)


def clone_of_repository(target: Path) -> Path:
    """What a clone holds: the tracked and untracked-but-not-ignored files, nothing else."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def configure(example: str, values: dict[str, str]) -> str:
    """``cp .env.example .env`` and uncomment the settings we change, as the README says."""
    lines, missing = [], set(values)
    for line in example.splitlines():
        match = re.match(r"^# ([A-Z_]+)=", line)
        if match and match.group(1) in values:
            lines.append(f"{match.group(1)}={values[match.group(1)]}")
            missing.discard(match.group(1))
        else:
            lines.append(line)
    assert not missing, f".env.example does not offer {sorted(missing)}"
    return "\n".join(lines) + "\n"


class Compose:
    """``docker compose`` in the project directory, with readable failures."""

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine, self.directory = engine, directory
        self.env = {**engine.env, "COMPOSE_PROJECT_NAME": PROJECT}

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return self.engine.docker(
            "compose", *args, check=check, timeout=timeout, cwd=self.directory, env=self.env
        )

    def down(self, check: bool = True) -> None:
        """Everything, the receiver profile's container and the volumes included."""
        self(
            "--profile",
            "receiver",
            "down",
            "--volumes",
            "--remove-orphans",
            "--timeout",
            "10",
            check=check,
            timeout=180,
        )

    def containers(self) -> list[dict[str, Any]]:
        out = self("ps", "--all", "--format", "json").stdout.strip()
        if not out:
            return []
        if out.startswith("["):  # older compose versions print one array
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines()]

    def logs(self, service: str, tail: int | None = None) -> str:
        args = ["logs", "--no-color", "--no-log-prefix"] + (["--tail", str(tail)] if tail else [])
        return self(*args, service, check=False).stdout

    def report(self) -> str:
        """Every container's state, and the last log lines of those that are not well."""
        parts = []
        for c in self.containers():
            parts.append(f"{c['Name']}: {c['State']} {c.get('Health') or ''} (exit {c.get('ExitCode')})")
            bad = (c["State"] != "running" and c.get("ExitCode") != 0) or c.get("Health") == "unhealthy"
            if bad:
                parts.append(
                    self.engine.docker("logs", "--tail", "40", c["Name"], check=False).stdout
                    + self.engine.docker("logs", "--tail", "40", c["Name"], check=False).stderr
                )
        return "\n".join(parts)

    def wait_healthy(self, timeout: float = 240) -> None:
        """migrate completed, api healthy, worker and beat running; a failed container fails at once."""

        def probe() -> bool:
            state = {}
            for c in self.containers():
                if c.get("Health") == "unhealthy" or (c["State"] == "exited" and c.get("ExitCode") != 0):
                    pytest.fail(f"container {c['Name']} failed\n{self.report()}")
                state.setdefault(c["Service"], []).append(c)
            ready = {
                "migrate": lambda c: c["State"] == "exited" and c.get("ExitCode") == 0,
                "api": lambda c: c.get("Health") == "healthy",
                "postgres": lambda c: c.get("Health") == "healthy",
                "redis": lambda c: c.get("Health") == "healthy",
                "worker": lambda c: c["State"] == "running",
                "beat": lambda c: c["State"] == "running",
            }
            return all(state.get(s) and all(ok(c) for c in state[s]) for s, ok in ready.items())

        wait_for("the compose project to be healthy", probe, timeout, self.report)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if not CI and os.environ.get("CMS_TEST_COMPOSE") == "0":
        pytest.skip("turned off by CMS_TEST_COMPOSE=0")
    e = Engine(tmp_path_factory.mktemp("docker-config"))
    try:
        e.start()
    except EngineUnavailable as exc:
        if CI:
            pytest.fail(f"the compose test must run in CI: {exc}")
        pytest.skip(f"no Docker engine for the compose test: {exc}")
    try:
        yield e
    finally:
        e.stop()
        if e.host is not None:
            left = e.host.differences()
            assert not left, f"the engine left changes on the host: {left}"


@pytest.fixture(scope="module")
def project(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Compose, dict[str, str]]]:
    started = time.monotonic()
    images = engine.base_images()
    timed("base images", started)
    directory = clone_of_repository(tmp_path_factory.mktemp("clone"))
    settings = {
        "CMS_SECRET_KEY": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "CMS_ADMIN_KEY": "cms_" + secrets.token_hex(32),
        "CMS_HOST_PORT": str(free_port()),
        "RECEIVER_HOST_PORT": str(free_port()),
        "CMS_WEBHOOK_ALLOWED_NETWORKS": "172.28.0.0/16",  # the README: to try the receiver
        "CMS_WEBHOOK_LEASE_SECONDS": "10",  # a killed worker's deliveries go again sooner
        **images,
    }
    (directory / ".env").write_text(configure((directory / ".env.example").read_text(), settings))
    compose = Compose(engine, directory)
    compose.down(check=False)  # whatever an interrupted run left in the engine's data root
    try:
        yield compose, settings
    finally:
        compose.down(check=False)


def test_docker_compose_runs_the_production_topology(project) -> None:
    compose, settings = project
    api = f"http://127.0.0.1:{settings['CMS_HOST_PORT']}/api/v1"
    admin = {"Authorization": f"Bearer {settings['CMS_ADMIN_KEY']}"}
    try:
        started = time.monotonic()
        compose("build", timeout=900)
        timed("docker compose build", started)

        started = time.monotonic()
        compose("up", "--detach")
        compose.wait_healthy()
        timed("docker compose up -d until healthy", started)

        # The first admin key: CMS_ADMIN_KEY in .env, provisioned by the migrate service.
        migrate_log = compose.logs("migrate")
        assert f"prefix {settings['CMS_ADMIN_KEY'][:12]}" in migrate_log, migrate_log
        assert settings["CMS_ADMIN_KEY"] not in migrate_log  # never the whole key
        assert requests.get(f"{api}/api-keys", headers=admin, timeout=10).status_code == 200
        ready = requests.get(f"http://127.0.0.1:{settings['CMS_HOST_PORT']}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # database, migrations at head, broker
        # More keys: `docker compose exec api cms create-api-key`.
        created = compose("exec", "-T", "api", "cms", "create-api-key", "--role", "editor", "--name", "desk")
        editor = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}

        subscription = receiver_subscribed(compose, api, admin)
        secret = subscription["secret"]

        # The seed story, written and published by an editor, reaches the example partner.
        story = parse_wire_story(SEED.read_text(encoding="utf-8")).fields
        article = requests.post(f"{api}/articles", json=story, headers=editor, timeout=10)
        assert article.status_code == 201, article.text
        article_id = article.json()["id"]
        published = requests.post(f"{api}/articles/{article_id}/publish", headers=editor, timeout=10)
        assert published.status_code == 200, published.text
        line = wait_for(
            "the receiver to verify the seed story",
            lambda: next((r for r in receiver_lines(compose) if r.get("type") == "article.published"), None),
            60,
            lambda: compose.logs("receiver", tail=20) + compose.logs("worker", tail=20),
        )
        assert line["verified"] is True and line["headline"] == story["headline"]
        assert not [r for r in receiver_lines(compose) if not r["verified"]]
        # ... and our own check of what the receiver verified: the delivery log.
        log = requests.get(f"{api}/deliveries", params={"article_id": article_id}, headers=admin, timeout=10)
        (delivery,) = log.json()["items"]
        assert delivery["status"] == "succeeded" and delivery["attempt_log"][-1]["status_code"] == 204
        Webhook(secret)  # the secret the receiver was given is a valid Standard Webhooks secret

        worker_killed_mid_fan_out(compose, api, admin, subscription["id"])
        logs_are_json(compose)
    except BaseException:
        print(compose.report())
        raise

    started = time.monotonic()
    compose.down()
    timed("docker compose down -v", started)
    assert compose.containers() == []
    volumes = compose.engine.docker(
        "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).stdout
    assert volumes.strip() == ""


def receiver_subscribed(compose: Compose, api: str, admin: dict[str, str]) -> dict[str, Any]:
    """The README's way: start the receiver, subscribe it, give it the secret (.env), restart it."""
    compose("--profile", "receiver", "up", "--detach", "receiver")
    wait_for(
        "the receiver to listen",
        lambda: "listening on :9000" in compose.logs("receiver"),
        30,
        lambda: compose.logs("receiver"),
    )
    response = requests.post(
        f"{api}/subscriptions",
        json={"url": "http://receiver:9000/hook", "max_in_flight": 16, "description": "example partner"},
        headers=admin,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    subscription = response.json()
    env_file = compose.directory / ".env"
    env_file.write_text(configure(env_file.read_text(), {"RECEIVER_SECRET": subscription["secret"]}))
    compose("--profile", "receiver", "up", "--detach", "receiver")  # recreated: its environment changed
    wait_for(
        "the receiver to have its secret",
        lambda: "receiving webhooks on :9000" in compose.logs("receiver"),
        30,
        lambda: compose.logs("receiver"),
    )
    return subscription


def receiver_lines(compose: Compose) -> list[dict[str, Any]]:
    return [json.loads(line) for line in compose.logs("receiver").splitlines() if line.startswith("{")]


def deliveries_by_status(compose: Compose) -> dict[str, int]:
    out = compose("exec", "-T", "api", "cms", "deliveries", "status", "--json").stdout
    return json.loads(out)["by_status"]


def worker_killed_mid_fan_out(
    compose: Compose, api: str, admin: dict[str, str], subscription_id: str
) -> None:
    """Three workers; publish FAN_OUT stories; `docker kill` one worker while they go out."""
    started = time.monotonic()
    compose("up", "--detach", "--scale", "worker=3")
    compose.wait_healthy()
    workers = [c["Name"] for c in compose.containers() if c["Service"] == "worker"]
    assert len(workers) == 3, compose.report()
    timed("scaled to three workers", started)

    before = {r["id"] for r in receiver_lines(compose) if r["verified"]}
    seeding = subprocess.Popen(
        [
            "docker",
            "compose",
            "exec",
            "-T",
            "api",
            "cms",
            "seed",
            "--count",
            str(FAN_OUT),
            "--publish",
            "--json",
        ],
        cwd=compose.directory,
        env=compose.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Mid fan-out: some of the new stories have arrived, most have not.
        wait_for(
            "the fan-out to start",
            lambda: len({r["id"] for r in receiver_lines(compose) if r["verified"]} - before) >= 10,
            120,
            compose.report,
        )
        # The busiest worker: the one that has relayed the most events so far.
        relayed = {
            w: compose.engine.docker("logs", w).stderr.count("relayed article.published") for w in workers
        }
        victim = max(relayed, key=relayed.__getitem__)
        assert relayed[victim] > 0, relayed
        compose.engine.docker("kill", victim)
        arrived_at_kill = len({r["id"] for r in receiver_lines(compose) if r["verified"]} - before)
        out, err = seeding.communicate(timeout=300)
    finally:
        if seeding.poll() is None:
            seeding.kill()
    assert seeding.returncode == 0, err
    seeded = {a["id"] for a in json.loads(out)["articles"]}
    assert len(seeded) == FAN_OUT
    assert arrived_at_kill < FAN_OUT, "the worker was killed after the fan-out had finished"

    # Nothing lost: every delivery succeeds (the killed worker's leases expire and go again) ...
    expected = 1 + FAN_OUT
    wait_for(
        f"all {expected} deliveries to succeed",
        lambda: deliveries_by_status(compose).get("succeeded") == expected,
        180,
        lambda: json.dumps(deliveries_by_status(compose)) + "\n" + compose.report(),
    )
    assert deliveries_by_status(compose) == {
        "pending": 0,
        "in_flight": 0,
        "succeeded": expected,
        "failed": 0,
        "cancelled": 0,
    }
    # ... and the partner verified every event of every seeded article, at least once.
    lines = receiver_lines(compose)
    assert all(r["verified"] for r in lines), [r for r in lines if not r["verified"]][:3]
    received = {r["id"] for r in lines}
    assert len(received) == expected
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = requests.get(f"{api}/events", params=params, headers=admin, timeout=10).json()
        events += page["items"]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    by_article = {e["article_id"]: e["id"] for e in events if e["type"] == "article.published"}
    assert seeded <= set(by_article)
    assert {by_article[a] for a in seeded} <= received
    duplicates = len(lines) - len(received)
    timed(
        f"fan-out of {FAN_OUT}, the worker that had relayed {relayed[victim]} of them killed after"
        f" {arrived_at_kill} had arrived ({duplicates} duplicates)",
        started,
    )


def logs_are_json(compose: Compose) -> None:
    """`docker compose logs api`: one JSON object per line, with request ids."""
    lines = [json.loads(line) for line in compose.logs("api").splitlines() if line.startswith("{")]
    assert any(line.get("request_id") for line in lines), lines[-5:]
    worker_lines = [line for line in compose.logs("worker").splitlines() if line.startswith("{")]
    assert worker_lines
