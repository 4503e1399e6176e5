"""Per-request plumbing: request ids, the access log, HTTP metrics, ``/metrics``."""

from __future__ import annotations

import functools
import hmac
import os
import re
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from cms.platform import logs, metrics
from cms.platform.extensions import db
from cms.platform.http.problems import problem

bp = Blueprint("observability", __name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install(app: Flask) -> None:
    """Request ids on every log line and response, one access line and metrics per request."""
    app.register_blueprint(bp)

    access_log = app.config["CMS_ACCESS_LOG"]

    # These run on every request: each resolves the context proxies (g, request) once
    # and reads headers from the WSGI environ (EnvironHeaders.get raises and catches
    # KeyError for a missing header).
    @app.before_request
    def _start() -> None:
        given = request.environ.get("HTTP_X_REQUEST_ID")
        # 32 hex digits like a uuid4's, from os.urandom directly (a fifth of uuid4's cost).
        request_id = given if given and _REQUEST_ID.match(given) else os.urandom(16).hex()
        ctx = g._get_current_object()  # type: ignore[attr-defined]
        ctx.request_id = request_id
        ctx.log_token = logs.request_id.set(request_id)
        ctx.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        ctx = g._get_current_object()  # type: ignore[attr-defined]
        req = request._get_current_object()  # type: ignore[attr-defined]
        headers = response.headers
        headers["X-Request-Id"] = ctx.get("request_id", "")
        # Bodies are JSON (or our docs page): a browser must never guess otherwise.
        headers["X-Content-Type-Options"] = "nosniff"
        started = ctx.get("started")
        if started is None:
            return response
        elapsed = time.perf_counter() - started
        method, status = req.method, response.status_code
        route = req.url_rule.rule if req.url_rule is not None else "(unmatched)"
        counter, histogram = _children(method, route, status)
        counter.inc()
        histogram.observe(elapsed)
        if access_log:
            logs.access(method, req.path, route, status, round(elapsed * 1000, 3))
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            logs.request_id.reset(token)


@functools.cache
def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The labelled metrics for one (method, route, status); ``labels()`` is slow per request."""
    m = metrics.get()
    return m.http_requests.labels(method, route, str(status)), m.http_duration.labels(method, route)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    token = current_app.config["CMS_METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return problem(
                401, "Authentication required", "Send 'Authorization: Bearer <CMS_METRICS_TOKEN>'."
            )

    def read() -> dict:
        try:
            # installed by the app (cms.webhooks.monitoring): the platform knows no capability
            return current_app.extensions["cms_database_facts"](db.session)
        finally:
            db.session.rollback()

    body = metrics.exposition(metrics.DatabaseCollector(read))
    return Response(body, mimetype="text/plain; version=0.0.4")
