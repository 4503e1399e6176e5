"""Shared field types and schemas (problems, pagination)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from cms.platform import pagination
from cms.platform.text import trim

# An absolute http(s) URL with a host, no spaces or control characters. The same
# expression is the OpenAPI pattern, so the document and the server agree exactly.
HTTP_URL = r"^https?://[^\x00-\x20/?#]+([/?#][^\x00-\x20]*)?$"


class Str(fields.String):
    """A string the databases can store: no NUL characters, valid Unicode."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        result = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in result:
            raise ValidationError("Must not contain NUL characters.")
        try:
            result.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Must be valid Unicode text.") from None
        return result


class WholeNumber(fields.Integer):
    """An integer in JSON: ``3`` or ``3.0`` (JSON Schema's "integer" admits both), never
    ``"3"``, ``true`` or ``3.5``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


class StrictBool(fields.Boolean):
    """JSON ``true`` or ``false`` only (marshmallow also takes 1, "yes", "on"...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UTCDateTime(fields.AwareDateTime):
    """An ISO 8601 datetime with an offset, normalised to UTC. An offset that would carry
    it past year 1 or 9999 in UTC gives the nearest instant that exists (any valid
    date-time is accepted, as the document says)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            return result.astimezone(UTC)
        except OverflowError:
            return (datetime.min if result.year == 1 else datetime.max).replace(tzinfo=UTC)


class NonBlank(validate.Validator):
    error = "Must not be blank."

    def __call__(self, value: str) -> str:
        if not trim(value):
            raise ValidationError(self.error)
        return value


class MaxBytes(validate.Validator):
    """Bound the UTF-8 size of a string (``Length`` counts characters)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, value: str) -> str:
        if len(value.encode("utf-8")) > self.limit:
            raise ValidationError(f"Must be at most {self.limit} bytes of UTF-8.")
        return value


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


def cursor_field(*kinds: type) -> fields.Field:
    return Str(
        validate=validate.Regexp(pagination.pattern(*kinds), error="Not a cursor this API returns."),
        metadata={"description": "`next_cursor` from the previous page."},
    )


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Page size (1-100)."},
    )
    cursor = cursor_field(datetime, uuid.UUID)


class IdPageQuerySchema(PageQuerySchema):
    """Lists ordered by id alone."""

    cursor = cursor_field(uuid.UUID)


class NumberPageQuerySchema(PageQuerySchema):
    """Lists ordered by a number (versions)."""

    cursor = cursor_field(int)


class FieldErrorSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema))

    class Meta:
        # Problems carry extension members (e.g. ``current_version``).
        unknown = "include"
