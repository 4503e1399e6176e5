"""API key schemas. The raw key appears only in the creation response."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.platform.http.fields import NonBlank, Str, StrictSchema

ROLES = ("admin", "editor", "writer", "reader")


class ApiKeyCreateSchema(StrictSchema):
    name = Str(required=True, validate=[validate.Length(min=1, max=100), NonBlank()])
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class ApiKeySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters of the key."})
    created_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "Shown once; store it now."})


class ApiKeyPageSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
