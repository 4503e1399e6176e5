"""Publish / unpublish / kill requests and their results."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.content.schemas import ArticleSchema
from cms.platform.http.fields import NonBlank, Str, StrictSchema, WholeNumber


class PublishSchema(StrictSchema):
    version = WholeNumber(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Version to publish; default the latest."},
    )
    correction_note = Str(
        validate=[validate.Length(min=1, max=2000), NonBlank()],
        metadata={"description": "Makes an update of a live article a correction."},
    )


class UnpublishSchema(StrictSchema):
    reason = Str(validate=validate.Length(max=2000))


class KillSchema(StrictSchema):
    reason = Str(required=True, validate=[validate.Length(min=1, max=2000), NonBlank()])


class EventSchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "Becomes the webhook id."})
    type = fields.String(required=True)
    article_id = fields.UUID(required=True, allow_none=True)
    version = fields.Integer(required=True, allow_none=True)
    sequence = fields.Integer(required=True, allow_none=True)
    occurred_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    data = fields.Dict(required=True)


class TransitionResultSchema(Schema):
    article = fields.Nested(ArticleSchema, required=True)
    event = fields.Nested(EventSchema, required=True)
