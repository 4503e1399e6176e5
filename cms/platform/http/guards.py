"""Request guards installed on every request: URLs too long for us get a 414 problem,
and requests that cannot write tell the database layer so (SQLite reads begin DEFERRED)."""

from __future__ import annotations

from flask import Flask, g, request

from cms.platform.db import may_write
from cms.platform.http.problems import ApiError

MAX_URL_BYTES = 4096  # under gunicorn's request-line limit (cms.gunicorn_conf), so the answer is ours


def refuse_long_urls() -> None:
    """``before_request``: a 414 problem rather than a server's HTML page."""
    environ = request.environ
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_BYTES:
        raise ApiError(
            414, "uri-too-long", "URL too long", f"Keep the path and query under {MAX_URL_BYTES} bytes."
        )


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def install_read_only_requests(app: Flask) -> None:
    """Requests that cannot write say so to the database layer (``cms.platform.db.may_write``):
    on SQLite their transactions begin DEFERRED and never wait for a writer."""

    @app.before_request
    def _read_only() -> None:
        if request.environ["REQUEST_METHOD"] in READ_ONLY_METHODS:
            g.may_write_token = may_write.set(False)

    @app.teardown_request
    def _done(_exc: BaseException | None) -> None:
        token = g.pop("may_write_token", None)
        if token is not None:
            may_write.reset(token)
