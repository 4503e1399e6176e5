"""Domain errors. The API maps each ``code`` to an HTTP status and a problem type."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain-error"
    title = "Request could not be processed"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class InvalidTransition(DomainError):
    code = "invalid-transition"
    title = "Editorial state does not allow this"


class VersionConflict(DomainError):
    """The client edited a version that is no longer the latest."""

    code = "version-conflict"
    title = "The article has changed since you read it"


class Unprocessable(DomainError):
    code = "unprocessable"
    title = "Request is well-formed but cannot be applied"


class IdempotencyMismatch(DomainError):
    code = "idempotency-key-reused"
    title = "Idempotency-Key was used with a different request"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Not allowed for this role"


class InvalidCursor(DomainError):
    code = "invalid-cursor"
    title = "Invalid pagination cursor"


class Gone(DomainError):
    code = "gone"
    title = "Gone"


class TooMany(DomainError):
    code = "limit-reached"
    title = "Limit reached"
