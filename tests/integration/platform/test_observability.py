"""Structured logs (request ids, no secrets) and Prometheus metrics, API and workers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cms.accounts import keys as api_keys
from cms.app import create_app
from cms.platform.actors import Role
from tests.helpers import create, post
from tests.receivers import Receiver


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What this process's log handler writes during the test (it writes to stderr)."""
    from cms.platform import logs

    logs.configure()  # a no-op if an app was made before: logging is set up once per process
    [handler] = [h for h in logging.root.handlers if h.name == logs.HANDLER_NAME]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_every_api_log_line_carries_the_request_id_and_no_secret(databases, log_lines):
    from cms.platform.extensions import db

    # A dead broker makes the publish log a warning from inside the request.
    app = create_app(
        {
            "CMS_DATABASE_URL": databases.copy_url(),
            "CMS_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0",
            "CMS_RELAY_LISTEN": False,
        }
    )
    with app.app_context():
        _key, raw = api_keys.create(db.session, name="editor", role=Role.ADMIN)
        db.session.commit()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {raw}"}
    log_lines.truncate(0)
    log_lines.seek(0)
    sub = client.post(
        "/api/v1/subscriptions", json={"url": "https://93.184.215.14/h?token=abc"}, headers=auth
    )
    article = create(client, auth)
    r = post(client, {**auth, "X-Request-Id": "trace-42"}, article["id"], "publish")
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "trace-42"
    assert (
        client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"] != ""
    )
    err = log_lines.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all("request_id" in line and line["time"].endswith("+00:00") for line in lines)
    publish_lines = [line for line in lines if line["request_id"] == "trace-42"]
    levels = {(line["logger"], line["level"]) for line in publish_lines}
    assert ("cms.platform.broker", "WARNING") in levels and ("cms.access", "INFO") in levels
    [access] = [line for line in publish_lines if line["logger"] == "cms.access"]  # one per request
    assert access["route"] == "/api/v1/articles/<uuid:article_id>/publish" and access["status"] == 200
    assert access["message"] == f"POST /api/v1/articles/{article['id']}/publish 200"
    assert access["method"] == "POST" and access["duration_ms"] > 0
    assert raw not in err and sub.get_json()["secret"] not in err and "token=abc" not in err


@contextlib.contextmanager
def formatted(name: str, fmt: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the formatter and filter ``configure`` installs
    (built from the same dictionary), to a string."""
    from cms.platform import logs

    spec = dict(logs.dict_config("INFO", fmt)["formatters"][fmt])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(spec.pop("()")(**spec))
    handler.addFilter(logs.ContextFilter())
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield log, stream
    finally:
        log.removeHandler(handler)


def test_log_lines_are_one_json_object_each_with_extras_and_tracebacks():
    import enum
    from datetime import UTC, datetime

    from cms.platform.logs import bound

    class Outcome(enum.Enum):
        OK = "ok"

    with formatted("cms.test-json-lines", "json") as (log, stream):
        with bound(event_id="ev-1"):
            log.warning(
                "sent %s to «%s»",
                3,
                "Агенция",
                extra={"at": datetime(2026, 11, 28, tzinfo=UTC), "outcome": Outcome.OK, "n": 2},
            )
        try:
            raise ValueError("bad thing")
        except ValueError:
            log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent 3 to «Агенция»" and "Агенция" in stream.getvalue()  # not \u-escaped
    assert (first["level"], first["logger"], first["event_id"]) == ("WARNING", "cms.test-json-lines", "ev-1")
    assert first["at"] == "2026-11-28T00:00:00+00:00" and first["outcome"] == "ok" and first["n"] == 2
    assert first["time"].endswith("+00:00") and "exc_info" not in first and "args" not in first
    assert list(first)[:3] == ["level", "logger", "message"]
    assert second["level"] == "ERROR" and "ValueError: bad thing" in second["exc_info"]
    assert "event_id" not in second


def test_text_lines_carry_the_ids_too():
    from cms.platform.logs import bound

    with formatted("cms.test-text-lines", "text") as (log, stream):
        with bound(event_id="ev-1", delivery_id="dl-2"):
            log.warning("attempt %d failed", 1)
        log.warning("no ids here")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("WARNING cms.test-text-lines: attempt 1 failed [event_id=ev-1 delivery_id=dl-2]")
    assert second.endswith("WARNING cms.test-text-lines: no ids here")


def test_chatty_loggers_say_only_warnings_unless_debugging():
    from cms.platform import logs

    cases = (("INFO", "WARNING"), ("warning", "WARNING"), ("ERROR", "ERROR"), ("DEBUG", "DEBUG"))
    for level, expected in cases:
        config = logs.dict_config(level)
        for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
            assert logging.getLevelName(config["loggers"][name]["level"]) == expected, (level, name)
    with pytest.raises(ValueError):
        logs.dict_config("LOUD")
    with pytest.raises(ValueError):
        logs.dict_config("INFO", "xml")


def test_logging_is_configured_once_per_process_from_the_settings(tmp_path):
    """``CMS_LOG_FORMAT`` and ``CMS_LOG_LEVEL`` decide; a second app (or a second
    ``configure``) in the same process changes nothing."""
    script = textwrap.dedent(
        """
        import logging
        from cms.app import create_app
        from cms.platform import logs

        create_app()
        create_app({"CMS_LOG_LEVEL": "DEBUG", "CMS_LOG_FORMAT": "json"})
        assert logs.configure("DEBUG", "json") is False
        assert [h.name for h in logging.root.handlers] == ["cms"]
        log = logging.getLogger("cms.example")
        log.info("not at this level")
        with logs.bound(request_id="req-9"):
            log.warning("shown")
        logs.access("GET", "/x", "/x", 200, 1.0)  # INFO: below the level
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        CMS_LOG_LEVEL="WARNING",
        CMS_LOG_FORMAT="text",
        CMS_DATABASE_URL=f"sqlite:///{tmp_path / 'cms.sqlite3'}",
        CMS_BROKER_URL="",
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    expected = "WARNING cms.example: shown [request_id=req-9]"
    assert [line.split(" ", 2)[2] for line in lines] == [expected], lines


def test_metrics_endpoint(app, client, keys):
    editor = keys.auth(Role.EDITOR)
    article = create(client, editor)
    post(client, editor, article["id"], "publish")
    client.get("/api/v1/articles/not-a-uuid", headers=editor)
    body = client.get("/metrics")
    assert body.status_code == 200 and body.mimetype == "text/plain"
    values = samples(body.get_data(as_text=True))
    key = ("cms_http_requests_total", (("method", "POST"), ("route", "/api/v1/articles"), ("status", "201")))
    assert values[key] >= 1
    assert values[
        ("cms_http_request_duration_seconds_count", (("method", "POST"), ("route", "/api/v1/articles")))
    ]
    assert values[("cms_outbox_unrelayed", ())] >= 1 and values[("cms_outbox_lag_seconds", ())] >= 0
    assert ("cms_deliveries_open", (("status", "pending"),)) in values

    app.config["CMS_METRICS_TOKEN"] = "scrape-me"
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    finally:
        app.config["CMS_METRICS_TOKEN"] = ""


def test_worker_metrics_and_log_lines(stack, tmp_path):
    port = closed_port()
    receiver = Receiver()
    receiver.script([500])
    try:
        worker = stack.worker(
            CMS_WORKER_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus")
        )
        stack.beat()
        stack.subscribe(receiver.url() + "?token=secret-in-query")
        event = stack.publish(stack.article()["id"])["event"]["id"]
        receiver.wait_ok(1, timeout=20)
        succeeded = ("cms_deliveries_total", (("outcome", "succeeded"),))
        deadline = time.monotonic() + 15
        while True:  # outcomes are counted once recorded, just after the response
            values = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            if values.get(succeeded) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert values[succeeded] >= 1
        assert values[("cms_deliveries_total", (("outcome", "retrying"),))] >= 1
        assert values[("cms_events_relayed_total", (("type", "article.published"),))] >= 1
        assert values[("cms_delivery_duration_seconds_count", ())] >= 2
        log = stack.log_of(worker).decode()
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        failed = [r for r in records if r.get("outcome") == "retrying"]
        assert failed and failed[0]["event_id"] == event and failed[0]["delivery_id"]
        assert "secret-in-query" not in log
        relayed = [r for r in records if r["message"].startswith("relayed")]
        assert relayed and relayed[0]["event_id"] == event
    finally:
        receiver.close()
