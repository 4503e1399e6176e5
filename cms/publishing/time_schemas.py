"""Schedule and embargo requests and answers."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from cms.platform.http.fields import NonBlank, PageQuerySchema, Str, StrictSchema, UTCDateTime, WholeNumber
from cms.publishing.models import ActionKind, ActionStatus

_WHEN = "An RFC 3339 time with its offset (`Z` or `+02:00`), in the future."


class ScheduleSchema(StrictSchema):
    # What the command checks across fields (cms.publishing.schedule), said in the document.
    OPENAPI_RULES: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["publish_at"]}, {"required": ["unpublish_at"]}],
        "dependentRequired": {
            name: ["publish_at"] for name in ("version", "correction_note", "embargo_until")
        },
    }

    publish_at = UTCDateTime(metadata={"description": f"Publish then. {_WHEN}"})
    version = WholeNumber(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "With publish_at: the version to publish; default the latest at that time."},
    )
    correction_note = Str(
        validate=[validate.Length(min=1, max=2000), NonBlank()],
        metadata={"description": "With publish_at: makes the update of a live article a correction."},
    )
    embargo_until = UTCDateTime(
        metadata={"description": "With publish_at: publish under embargo until then (after publish_at)."}
    )
    unpublish_at = UTCDateTime(metadata={"description": f"Withdraw then (after publish_at). {_WHEN}"})


class ScheduledActionSchema(Schema):
    id = fields.UUID(required=True)
    article_id = fields.UUID(required=True)
    action = fields.String(required=True, metadata={"enum": [k.value for k in ActionKind]})
    status = fields.String(required=True, metadata={"enum": [s.value for s in ActionStatus]})
    run_at = fields.AwareDateTime(required=True)
    version = fields.Integer(required=True, allow_none=True)
    correction_note = fields.String(required=True, allow_none=True)
    embargo_until = fields.AwareDateTime(required=True, allow_none=True)
    scheduled_by = fields.String(required=True, metadata={"description": "Who scheduled it."})
    created_at = fields.AwareDateTime(required=True)
    fired_at = fields.AwareDateTime(required=True, allow_none=True)
    lateness_seconds = fields.Float(
        required=True, allow_none=True, metadata={"description": "How long after run_at it ran."}
    )
    late = fields.Boolean(
        required=True, metadata={"description": "Ran later than CMS_SCHEDULE_GRACE_SECONDS."}
    )
    event_id = fields.UUID(required=True, allow_none=True, metadata={"description": "The event it recorded."})
    reason = fields.String(
        required=True, allow_none=True, metadata={"description": "Why it was skipped or cancelled."}
    )


class ArticleScheduleSchema(Schema):
    article_id = fields.UUID(required=True)
    actions = fields.List(
        fields.Nested(ScheduledActionSchema),
        required=True,
        metadata={"description": "Pending, soonest first."},
    )
    history = fields.List(
        fields.Nested(ScheduledActionSchema),
        required=True,
        metadata={"description": "The latest finished actions (embargo lifts too), newest first."},
    )


class ScheduledItemSchema(ScheduledActionSchema):
    headline = fields.String(required=True)


class ScheduledPageSchema(Schema):
    items = fields.List(fields.Nested(ScheduledItemSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ScheduledQuerySchema(PageQuerySchema):
    status = Str(
        validate=validate.OneOf([s.value for s in ActionStatus]),
        metadata={"description": "Only this status; default pending and skipped (what needs an eye)."},
    )
    action = Str(validate=validate.OneOf([k.value for k in ActionKind]))


class EmbargoChangeSchema(StrictSchema):
    embargo_until = UTCDateTime(
        required=True, metadata={"description": f"The new time the embargo lifts. {_WHEN}"}
    )


class EmbargoPeriodSchema(Schema):
    id = fields.UUID(required=True)
    until = fields.AwareDateTime(required=True, metadata={"description": "When it lifts (lifted)."})
    original_until = fields.AwareDateTime(required=True)
    version = fields.Integer(required=True, metadata={"description": "The version published under it."})
    event_id = fields.UUID(required=True, metadata={"description": "The publication that started it."})
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    ended_at = fields.AwareDateTime(required=True, allow_none=True)
    ended_by = fields.String(required=True, allow_none=True)
    outcome = fields.String(
        required=True, allow_none=True, metadata={"enum": ["lifted", "lifted_early", "withdrawn", None]}
    )


class EarlyRecipientSchema(Schema):
    partner_id = fields.UUID(required=True, allow_none=True)
    partner = fields.String(required=True, allow_none=True, metadata={"description": "The partner's name."})
    subscription_id = fields.UUID(required=True)
    delivery_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "The delivery's status."})
    delivered_at = fields.AwareDateTime(required=True, allow_none=True)


class EmbargoAuditSchema(Schema):
    article_id = fields.UUID(required=True)
    embargo_until = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "The embargo in force, if any."}
    )
    embargoes = fields.List(fields.Nested(EmbargoPeriodSchema), required=True)
    received_early = fields.List(
        fields.Nested(EarlyRecipientSchema),
        required=True,
        metadata={"description": "Webhooks sent before the lift (subscriptions with `embargo: send`)."},
    )
