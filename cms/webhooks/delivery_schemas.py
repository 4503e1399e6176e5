"""Delivery log schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.platform.http.fields import PageQuerySchema

DELIVERY_STATUSES = ("pending", "in_flight", "succeeded", "failed", "cancelled")


class AttemptSchema(Schema):
    number = fields.Integer(required=True)
    attempted_at = fields.AwareDateTime(required=True)
    duration_ms = fields.Float(required=True, allow_none=True)
    status_code = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    response_excerpt = fields.String(
        required=True, allow_none=True, metadata={"description": "The first 4 KB of the response body."}
    )
    outcome = fields.String(required=True)


class DeliverySchema(Schema):
    id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    subscription_id = fields.UUID(required=True)
    article_id = fields.UUID(required=True, allow_none=True)
    sequence = fields.Integer(required=True, allow_none=True)
    format = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer(required=True)
    embargo = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "enum": ["early", "held", "released", None],
            "description": "Under embargo: `early` sent before the lift (`embargo: send`), `held` waiting "
            "for the lift, `released` held and sent at the lift; null: no embargo.",
        },
    )
    next_attempt_at = fields.AwareDateTime(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    last_attempt_at = fields.AwareDateTime(required=True, allow_none=True)
    delivered_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "When the partner last answered 2xx for it; kept when a redelivery fails. "
            "Null: never delivered."
        },
    )
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)


class DeliveryWithAttemptsSchema(DeliverySchema):
    attempt_log = fields.List(fields.Nested(AttemptSchema), required=True, data_key="attempt_log")


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliveryWithAttemptsSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class DeliveryListQuerySchema(PageQuerySchema):
    subscription_id = fields.UUID()
    event_id = fields.UUID()
    article_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
