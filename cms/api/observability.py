"""Per-request plumbing: request ids, the access log, HTTP metrics, ``/metrics``."""

from __future__ import annotations

import functools
import hmac
import logging
import re
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from cms import logs, metrics
from cms.api.problems import problem
from cms.extensions import db
from cms.services import monitoring

bp = Blueprint("observability", __name__)
access = logging.getLogger("cms.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install(app: Flask) -> None:
    """Request ids on every log line and response, one access line and metrics per request."""
    app.register_blueprint(bp)

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.log_token = logs.request_id.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        started = g.get("started")
        if started is None:
            return response
        elapsed = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        counter, histogram = _children(request.method, route, response.status_code)
        counter.inc()
        histogram.observe(elapsed)
        if current_app.config["CMS_ACCESS_LOG"] and access.isEnabledFor(logging.INFO):
            access.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
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
            return monitoring.delivery_facts(db.session)
        finally:
            db.session.rollback()

    body = metrics.exposition(metrics.DatabaseCollector(read))
    return Response(body, mimetype="text/plain; version=0.0.4")
