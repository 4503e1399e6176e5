"""Structured logs (request ids, no secrets) and Prometheus metrics, API and workers."""

from __future__ import annotations

import json
import socket
import time

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


def test_every_api_log_line_carries_the_request_id_and_no_secret(databases, capfd):
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
    capfd.readouterr()
    sub = client.post(
        "/api/v1/subscriptions", json={"url": "https://93.184.215.14/h?token=abc"}, headers=auth
    )
    article = create(client, auth)
    r = post(client, {**auth, "X-Request-Id": "trace-42"}, article["id"], "publish")
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "trace-42"
    assert (
        client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"] != ""
    )
    err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all("request_id" in line and line["time"].endswith("+00:00") for line in lines)
    publish_lines = [line for line in lines if line["request_id"] == "trace-42"]
    levels = {(line["logger"], line["level"]) for line in publish_lines}
    assert ("cms.platform.broker", "WARNING") in levels and ("cms.access", "INFO") in levels
    access = next(line for line in publish_lines if line["logger"] == "cms.access")
    assert access["route"] == "/api/v1/articles/<uuid:article_id>/publish" and access["status"] == 200
    assert raw not in err and sub.get_json()["secret"] not in err and "token=abc" not in err


def test_log_lines_are_one_json_object_each_with_extras_and_tracebacks():
    import enum
    import io
    import logging
    from datetime import UTC, datetime

    from cms.platform.logs import ContextFilter, JsonLines, bound

    class Outcome(enum.Enum):
        OK = "ok"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(ContextFilter())
    log = logging.getLogger("cms.test-json-lines")
    log.addHandler(handler)
    log.propagate = False
    try:
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
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent 3 to «Агенция»" and "Агенция" in stream.getvalue()  # not \u-escaped
    assert (first["level"], first["logger"], first["event_id"]) == ("WARNING", "cms.test-json-lines", "ev-1")
    assert first["at"] == "2026-11-28T00:00:00+00:00" and first["outcome"] == "ok" and first["n"] == 2
    assert first["time"].endswith("+00:00") and "exc_info" not in first and "args" not in first
    assert second["level"] == "ERROR" and "ValueError: bad thing" in second["exc_info"]
    assert "event_id" not in second


def test_access_lines_written_directly_equal_those_through_logging():
    """``logs.access`` skips the logging machinery when our JSON handler is alone;
    its line must be the one ``logging`` + ``JsonLines`` would have written."""
    import io
    import logging

    from cms.platform import logs

    pytest_handlers = list(logging.root.handlers)  # pytest's capture handlers sit on the root too
    for other in pytest_handlers:
        logging.root.removeHandler(other)
    logs.configure("INFO", "json")
    [handler] = logging.root.handlers
    direct = io.StringIO()
    handler.setStream(direct)
    try:
        with logs.bound(request_id="req-1"):
            logs.access("GET", '/api/v1/articles/"x"\\Проект', "(unmatched)", 404, 1.25)
            assert logs._json_handler_alone() is handler
            # A second handler anywhere on the way sends lines through logging instead.
            extra = logging.StreamHandler(io.StringIO())
            logging.getLogger("cms").addHandler(extra)
            try:
                assert logs._json_handler_alone() is None
                through_logging = io.StringIO()
                handler.setStream(through_logging)
                logs.access("GET", '/api/v1/articles/"x"\\Проект', "(unmatched)", 404, 1.25)
            finally:
                logging.getLogger("cms").removeHandler(extra)
            logging.getLogger("cms.access").setLevel(logging.WARNING)
            try:
                logs.access("GET", "/x", "/x", 200, 1.0)  # disabled: nothing written
            finally:
                logging.getLogger("cms.access").setLevel(logging.NOTSET)
    finally:
        logging.root.removeHandler(handler)
        for other in pytest_handlers:
            logging.root.addHandler(other)
    [fast] = [json.loads(line) for line in direct.getvalue().splitlines()]
    [slow] = [json.loads(line) for line in through_logging.getvalue().splitlines()]
    assert fast.pop("time").endswith("+00:00") and slow.pop("time").endswith("+00:00")
    assert list(fast.items()) == list(slow.items())
    assert fast["message"] == 'GET /api/v1/articles/"x"\\Проект 404' and fast["request_id"] == "req-1"
    assert "Проект" in direct.getvalue()  # written as UTF-8 text, like every other line


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
