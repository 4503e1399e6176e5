"""Publish / unpublish / kill requests and their results."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.content.schemas import ArticleSchema
from cms.events.schemas import EventSchema
from cms.platform.http.fields import NonBlank, Str, StrictSchema, UTCDateTime, WholeNumber


class PublishSchema(StrictSchema):
    version = WholeNumber(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Version to publish; default the latest."},
    )
    correction_note = Str(
        validate=[validate.Length(min=1, max=2000), NonBlank()],
        metadata={"description": "Makes an update of a live article a correction."},
    )
    embargo_until = UTCDateTime(
        metadata={
            "description": "Publish under embargo until then (RFC 3339 with offset, in the future): only "
            "partners trusted with embargoed content see it before. Not for an article already live."
        }
    )


class UnpublishSchema(StrictSchema):
    reason = Str(validate=validate.Length(max=2000))


class KillSchema(StrictSchema):
    reason = Str(required=True, validate=[validate.Length(min=1, max=2000), NonBlank()])


class TransitionResultSchema(Schema):
    article = fields.Nested(ArticleSchema, required=True)
    event = fields.Nested(EventSchema, required=True)
