"""How an outbox event is shown (a transition's answer, the event log)."""

from __future__ import annotations

from marshmallow import Schema, fields


class EventSchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "Becomes the webhook id."})
    type = fields.String(required=True)
    article_id = fields.UUID(required=True, allow_none=True)
    version = fields.Integer(required=True, allow_none=True)
    sequence = fields.Integer(required=True, allow_none=True)
    occurred_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    data = fields.Dict(required=True)
