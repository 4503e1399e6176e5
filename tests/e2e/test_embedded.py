"""``make run``'s command, for real: ``cms up`` on a fresh directory runs the API, a
worker and beat on SQLite and the embedded broker (no Redis, no PostgreSQL),
delivers signed webhooks, stops cleanly on Ctrl-C and keeps its data."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests
from standardwebhooks import Webhook

from tests.helpers import eventually, seed_fields
from tests.receivers import Receiver

CMS = str(Path(sys.executable).parent / "cms")


def start(tmp: Path, log: Path) -> subprocess.Popen[bytes]:
    """``cms up`` on port 0: it binds an ephemeral port itself and names it in its banner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update({"CMS_VAR_DIR": str(tmp / "var"), "CMS_PORT": "0", "PYTHONUNBUFFERED": "1"})
    return subprocess.Popen(
        [CMS, "up"], cwd=tmp, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> tuple[str, int]:
    """The banner, and the port ``cms up`` bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        bound = re.search(r"API:\s+http://127\.0\.0\.1:(\d+)/api/v1", text)
        if bound and "Ctrl-C stops" in text and "ready." in text:
            port = int(bound.group(1))
            try:
                requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5)
                return text, port
            except requests.RequestException:  # refused while binding, or slow while the worker boots
                pass
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise AssertionError(log.read_text(errors="replace")[-3000:])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def survivors(pgid: int) -> str:
    """The processes still in the group, for the failure message."""
    ps = subprocess.run(["ps", "-o", "pid,stat,etime,cmd", "-g", str(pgid)], capture_output=True, text=True)
    return ps.stdout


def interrupt(proc: subprocess.Popen[bytes]) -> int:
    """Ctrl-C in a terminal: SIGINT to the whole foreground process group."""
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=40)
    deadline = time.monotonic() + 30
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return code


def test_cms_up_runs_everything_embedded_and_keeps_its_data(tmp_path):
    receiver = Receiver()
    first = start(tmp_path, tmp_path / "first.log")
    try:
        banner, port = wait_ready(first, tmp_path / "first.log")
        assert f"http://127.0.0.1:{port}/api/v1/docs" in banner
        key = re.search(r"^\s+(cms_\S+)\s*$", banner, re.M).group(1)
        api = f"http://127.0.0.1:{port}/api/v1"
        auth = {"Authorization": f"Bearer {key}"}
        sub = requests.post(f"{api}/subscriptions", json={"url": receiver.url()}, headers=auth).json()
        article = requests.post(f"{api}/articles", json=seed_fields(), headers=auth).json()
        event = requests.post(f"{api}/articles/{article['id']}/publish", json={}, headers=auth).json()[
            "event"
        ]
        [got] = receiver.wait_ok(1, timeout=30)
        payload = Webhook(sub["secret"]).verify(got.body, got.headers)
        assert got.webhook_id == event["id"] and payload["data"]["article"]["headline"] == article["headline"]
        assert (tmp_path / "var" / "cms.sqlite3").exists()
        # The embedded broker: WAL, and consumed messages deleted rather than kept for ever.
        broker = sqlite3.connect(tmp_path / "var" / "broker.sqlite3")
        assert broker.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

        def queued() -> int:
            return broker.execute("SELECT count(*) FROM kombu_message").fetchone()[0]

        # Beat keeps sending and the worker keeps taking: the table empties between them
        # (kombu's own transport would keep every consumed row).
        deadline = time.monotonic() + 10
        left = queued()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = queued()
        assert left == 0
        broker.close()
    finally:
        code = interrupt(first)
    assert code == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert not group_alive(first.pid), "outlived Ctrl-C:\n" + survivors(first.pid)

    second = start(tmp_path, tmp_path / "second.log")
    try:
        banner, port = wait_ready(second, tmp_path / "second.log")
        api = f"http://127.0.0.1:{port}/api/v1"
        assert "First start" not in banner  # the key from the first start still stands
        stored = requests.get(f"{api}/articles/{article['id']}", headers=auth)
        assert stored.status_code == 200 and stored.json()["state"] == "published"
        latest = requests.patch(
            f"{api}/articles/{article['id']}",
            json={"standfirst": "Updated after a restart"},
            headers={**auth, "If-Match": stored.headers["ETag"]},
        ).json()
        requests.post(f"{api}/articles/{article['id']}/publish", json={}, headers=auth)
        updates = receiver.wait_ok(2, timeout=30)
        assert updates[-1].json()["type"] == "article.updated" and latest["version"] == 2
    finally:
        assert interrupt(second) == 0
        receiver.close()


def log_records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_cms_up_serves_with_keep_alive_logs_each_request_once_and_is_quiet_when_idle(tmp_path):
    """A production WSGI server (gunicorn, gthread): connections are kept alive, and each
    request makes exactly one access line, plain JSON (no colour codes, no second line).
    Idle, the relay and the sweep (several runs a second) write nothing; a publish that
    delivers writes its lines."""
    import http.client

    log = tmp_path / "up.log"
    proc = start(tmp_path, log)
    receiver = Receiver()

    def logged() -> str:
        return log.read_text(errors="replace")

    try:
        banner, port = wait_ready(proc, log)
        key = re.search(r"^\s+(cms_\S+)\s*$", banner, re.M).group(1)

        # Idle: beat sends relays and sweeps, the worker runs them, and nobody says so.
        broker = sqlite3.connect(tmp_path / "var" / "broker.sqlite3")

        def sent() -> int:
            row = broker.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kombu_message'").fetchone()
            return row[0] if row else 0

        # Start-up lines (beat's plan) are not idle noise: they may come after the banner.
        eventually(lambda: "beat: Starting" in logged(), timeout=30, what="beat to start")
        mark, first = len(logged()), sent()
        deadline = time.monotonic() + 30
        while sent() < first + 6:  # at least four sweeps and two relays
            assert time.monotonic() < deadline, "beat sent nothing"
            time.sleep(0.1)
        broker.close()
        idle = [r for r in log_records(logged()[mark:]) if r["level"] in ("DEBUG", "INFO")]
        assert idle == [], idle

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        ids = [f"probe{n}{os.getpid()}" for n in range(3)]
        sockets = set()
        for request_id in ids:
            conn.request("GET", "/healthz", headers={"X-Request-Id": request_id})
            response = conn.getresponse()
            assert response.status == 200 and response.getheader("Connection", "").lower() != "close"
            response.read()
            sockets.add(id(conn.sock))
        assert len(sockets) == 1  # all three on one connection
        conn.close()

        # A publish that delivers: its requests' lines, and the relay's.
        api = f"http://127.0.0.1:{port}/api/v1"
        auth = {"Authorization": f"Bearer {key}"}
        requests.post(f"{api}/subscriptions", json={"url": receiver.url() + "?token=hidden"}, headers=auth)
        article = requests.post(f"{api}/articles", json=seed_fields(), headers=auth).json()
        publish_id = f"publish{os.getpid()}"
        event = requests.post(
            f"{api}/articles/{article['id']}/publish", json={}, headers={**auth, "X-Request-Id": publish_id}
        ).json()["event"]
        receiver.wait_ok(1, timeout=30)

        def relayed() -> list[dict]:
            return [
                r
                for r in log_records(logged())
                if r["message"].startswith("relayed article.published") and r.get("event_id") == event["id"]
            ]

        deadline = time.monotonic() + 20
        while not (all(request_id in logged() for request_id in [*ids, publish_id]) and relayed()):
            assert time.monotonic() < deadline, logged()[-2000:]
            time.sleep(0.1)
        text = logged()
        for request_id in [*ids, publish_id]:
            assert text.count(request_id) == 1, request_id
        [access] = [r for r in log_records(text) if r.get("request_id") == publish_id]
        assert access["logger"] == "cms.access" and access["status"] == 200
        assert [r["deliveries"] for r in relayed()] == [1]
        assert "\x1b[" not in text and "token=hidden" not in text and key not in text.replace(banner, "")
        assert "WARNING: This is a development server" not in text
        for chatty in ("Sending due task", "] received", "] succeeded"):
            assert chatty not in text, chatty
    finally:
        assert interrupt(proc) == 0
        receiver.close()
