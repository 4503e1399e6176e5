"""Shared field types and schemas (problems, pagination)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate


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


class UTCDateTime(fields.AwareDateTime):
    """An ISO 8601 datetime with an offset, normalised to UTC (year 1-9999 after conversion)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of the supported date range.") from None


class NonBlank(validate.Validator):
    error = "Must not be blank."

    def __call__(self, value: str) -> str:
        if not value.strip():
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


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Page size (1-100)."},
    )
    cursor = Str(
        validate=validate.Length(min=1, max=500),
        metadata={"description": "`next_cursor` from the previous page."},
    )


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
