"""Event log schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.events.schemas import EventSchema
from cms.platform.http.fields import PageQuerySchema, Str


class EventWithCountsSchema(EventSchema):
    subscription_id = fields.UUID(required=True, allow_none=True)
    relayed_at = fields.AwareDateTime(required=True, allow_none=True)
    deliveries = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Deliveries by status, with `total`."},
    )


class EventPageSchema(Schema):
    items = fields.List(fields.Nested(EventWithCountsSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class EventListQuerySchema(PageQuerySchema):
    type = Str(validate=validate.Length(min=1, max=64))
    article_id = fields.UUID()
    subscription_id = fields.UUID()
