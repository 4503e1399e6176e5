"""Version history, diff and integrity schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.content.schemas import _ContentOut
from cms.platform.http.fields import Str, StrictSchema


class VersionSummarySchema(Schema):
    number = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    message = fields.String(required=True, allow_none=True)
    content_hash = fields.String(required=True)
    prev_hash = fields.String(required=True, allow_none=True)


class VersionSchema(VersionSummarySchema):
    article_id = fields.UUID(required=True)
    content = fields.Nested(_ContentOut, required=True, attribute="data")


class VersionPageSchema(Schema):
    items = fields.List(fields.Nested(VersionSummarySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class DiffQuerySchema(StrictSchema):
    from_ = fields.Integer(data_key="from", required=True, validate=validate.Range(min=1, max=2**31 - 1))
    to = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class PatchOperationSchema(Schema):
    op = fields.String(required=True)
    path = fields.String(required=True)
    value = fields.Raw(allow_none=True)
    from_ = fields.String(data_key="from")


class DiffSchema(Schema):
    from_ = fields.Integer(data_key="from", required=True, attribute="from_version")
    to = fields.Integer(required=True, attribute="to_version")
    changed = fields.List(fields.String(), required=True)
    patch = fields.List(
        fields.Nested(PatchOperationSchema),
        required=True,
        metadata={"description": "RFC 6902 JSON Patch from `from` to `to`."},
    )


class RestoreSchema(StrictSchema):
    message = Str(validate=validate.Length(max=500))


class ChainReportSchema(Schema):
    valid = fields.Boolean(required=True)
    versions_checked = fields.Integer(required=True)
    first_invalid_version = fields.Integer(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True)
