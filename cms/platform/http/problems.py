"""RFC 9457 problem details for every error the API returns.

Every error, including framework ones (404 route, 405, 413) and unexpected
exceptions, leaves as ``application/problem+json``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import psycopg
from flask import Flask, Response, json, request
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from cms.platform.errors import DomainError
from cms.platform.extensions import db

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

# Domain error code -> HTTP status.
DOMAIN_STATUS = {
    "not-found": 404,
    "conflict": 409,
    "invalid-transition": 409,
    "version-conflict": 412,
    "unprocessable": 422,
    "idempotency-key-reused": 422,
    "forbidden": 403,
    "invalid-cursor": 400,
    "gone": 410,
    "limit-reached": 409,
}


class ApiError(Exception):
    """An HTTP-level error raised by the API layer (auth, headers, body parsing)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = headers or {}
        self.extensions = extensions


RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    /,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code if code else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    # Extension members never replace the standard ones (RFC 9457 section 3.1).
    body.update({k: v for k, v in extensions.items() if v is not None and k not in RESERVED_MEMBERS})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _safe(text: str) -> str:
    """Client-supplied names may hold lone surrogates, which UTF-8 cannot carry."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def field_errors(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into ``[{field, message}]``."""
    out: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            part = _safe(str(key))
            name = prefix if key == "_schema" else (f"{prefix}.{part}" if prefix else part)
            out.extend(field_errors(value, name))
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, str):
                out.append({"field": prefix or "(body)", "message": item})
            else:
                out.extend(field_errors(item, prefix))
    else:
        out.append({"field": prefix or "(body)", "message": str(messages)})
    return out


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem(
            exc.status, exc.title, exc.detail, code=exc.code, headers=exc.headers, **exc.extensions
        )

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Response:
        db.session.rollback()
        status = DOMAIN_STATUS.get(exc.code, 400)
        return problem(status, exc.title, exc.detail, code=exc.code, **exc.extensions)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        return problem(
            422,
            "Validation failed",
            "One or more fields are invalid.",
            code="validation-error",
            errors=field_errors(exc.messages),
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {}
        detail = exc.description
        if status == 404:
            detail = (
                f"Nothing here at {_safe(request.path)[:200]}. The API is under /api/v1"
                " (its documentation: /api/v1/docs)."
            )
        elif status == 405:
            allowed = sorted(exc.valid_methods or ())  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}."
        elif status == 413:
            detail = "The request body is too large."
        return problem(status, exc.name, detail, headers=headers)

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Response:
        db.session.rollback()
        log.warning("integrity error mapped to 409: %s", exc.orig)
        return problem(
            409,
            "Conflict",
            "The change conflicts with another one; reload and retry.",
            code="conflict",
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(psycopg.OperationalError)  # from driver cursors (COPY, bulk statements)
    @app.errorhandler(PoolTimeout)  # every pooled connection busy for CMS_DB_POOL_TIMEOUT seconds
    def _unavailable(exc: Exception) -> Response:
        with contextlib.suppress(Exception):  # the session's connection may be the dead one
            db.session.rollback()
        log.error("database unavailable: %s", getattr(exc, "orig", None) or exc)
        return problem(
            503,
            "Service unavailable",
            "The database is busy or unreachable; retry.",
            code="unavailable",
            headers={"Retry-After": "1"},
        )

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError) -> Response:
        db.session.rollback()
        log.exception("database error")
        return problem(500, "Internal server error", "A database error occurred.", code="internal")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal server error", "An unexpected error occurred.", code="internal")
