"""Webhook subscription schemas. The signing secret appears only in create and rotate responses."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.content import formats
from cms.platform.http.fields import (
    HTTP_URL,
    NonBlank,
    PageQuerySchema,
    Str,
    StrictBool,
    StrictSchema,
    UTCDateTime,
    WholeNumber,
)
from cms.webhooks.subscriptions import (
    EVENT_TYPE_PATTERNS,
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
)

FORMATS = tuple(formats.FORMATS)
EMBARGO_MODES = ("hold", "send")


def name_list(max_items: int, max_len: int, description: str) -> fields.List:
    return fields.List(
        Str(validate=[validate.Length(min=1, max=max_len), NonBlank()]),
        validate=validate.Length(max=max_items),
        metadata={"description": description},
    )


class SubscriptionFieldsSchema(StrictSchema):
    url = Str(
        required=True,
        validate=[
            validate.Length(min=1, max=2048),
            validate.Regexp(HTTP_URL, error="Must be an http(s) URL."),
        ],
        metadata={"description": "http(s) URL; must resolve to a public address (SSRF guard)."},
    )
    description = Str(allow_none=True, validate=validate.Length(max=500))
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPE_PATTERNS)),
        validate=validate.Length(min=1, max=20),
        metadata={"description": "Event types, or `*` / `article.*` (all article events). Default `*`."},
    )
    sections = name_list(100, 100, "Only articles in these sections (empty: all).")
    tags = name_list(100, 100, "Only articles with at least one of these tags (empty: all).")
    languages = name_list(50, 35, "Only articles in these languages; `en` also selects `en-GB` (empty: all).")
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "`json` (our article JSON), `ninjs` (IPTC ninjs 2.1) or `ninjs3` "
            "(IPTC ninjs 3.1). Default `json`."
        },
    )
    headers = fields.Dict(
        keys=Str(
            validate=validate.Regexp(
                HEADER_NAME_PATTERN, error="A header name (a token), not one the delivery engine sets."
            )
        ),
        values=Str(
            validate=[
                validate.Length(max=1000),
                validate.Regexp(HEADER_VALUE_PATTERN, error="No line breaks or NUL characters."),
            ]
        ),
        validate=validate.Length(max=20),
        metadata={"description": "Static headers sent with every webhook (not webhook-*)."},
    )
    embargo = fields.String(
        validate=validate.OneOf(EMBARGO_MODES),
        metadata={
            "description": "Events under embargo: `hold` (default) sends them when the embargo lifts; "
            "`send` sends them at once, marked (`embargo_until` in json, `embargoed` in ninjs 2.1, "
            "`embargoedUntil` in ninjs 3.1). Only a partner with `receives_embargoed` may choose `send`."
        },
    )
    enabled = StrictBool(metadata={"description": "Disabled subscriptions keep their deliveries queued."})
    max_in_flight = WholeNumber(
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Concurrent requests to this endpoint at most (default 4)."},
    )


class SubscriptionCreateSchema(SubscriptionFieldsSchema):
    pass


class SubscriptionUpdateSchema(SubscriptionFieldsSchema):
    url = Str(
        validate=[
            validate.Length(min=1, max=2048),
            validate.Regexp(HTTP_URL, error="Must be an http(s) URL."),
        ]
    )


class SubscriptionSchema(Schema):
    id = fields.UUID(required=True)
    partner_id = fields.UUID(
        required=True,
        allow_none=True,
        metadata={"description": "The partner managing it; null: the newsroom."},
    )
    url = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    event_types = fields.List(fields.String(), required=True)
    sections = fields.List(fields.String(), required=True)
    tags = fields.List(fields.String(), required=True)
    languages = fields.List(fields.String(), required=True)
    format = fields.String(required=True)
    embargo = fields.String(required=True, metadata={"enum": list(EMBARGO_MODES)})
    headers = fields.Method(
        "_masked_headers",
        required=True,
        metadata={
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Static headers; values are masked (they often carry credentials).",
        },
    )
    enabled = fields.Boolean(required=True)
    max_in_flight = fields.Integer(required=True)
    secret_prefix = fields.Method("_secret_prefix", required=True, metadata={"type": "string"})
    previous_secret_expires_at = fields.AwareDateTime(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    disabled_at = fields.AwareDateTime(required=True, allow_none=True)
    disabled_reason = fields.String(required=True, allow_none=True)
    failing_since = fields.AwareDateTime(required=True, allow_none=True)
    consecutive_failures = fields.Integer(required=True)
    last_success_at = fields.AwareDateTime(required=True, allow_none=True)
    last_failure_at = fields.AwareDateTime(required=True, allow_none=True)

    def _masked_headers(self, obj: object) -> dict[str, str]:
        headers: dict[str, str] = obj.headers or {}  # type: ignore[attr-defined]
        return {name: (value[:4] + "…" if len(value) > 8 else "…") for name, value in headers.items()}

    def _secret_prefix(self, obj: object) -> str:
        from cms.webhooks.transport.signing import secret_hint

        return secret_hint(obj.secret)  # type: ignore[attr-defined]


class SubscriptionWithSecretSchema(SubscriptionSchema):
    secret = fields.String(required=True, metadata={"description": "Shown once; store it now."})


class SubscriptionPageSchema(Schema):
    items = fields.List(fields.Nested(SubscriptionSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class RecoverSchema(StrictSchema):
    since = UTCDateTime(required=True, metadata={"description": "Re-send failed deliveries created since."})


class RecoverResultSchema(Schema):
    requeued = fields.Integer(required=True)


class PingResultSchema(Schema):
    event_id = fields.UUID(required=True)


SubscriptionListQuerySchema = PageQuerySchema


class ReplaySchema(StrictSchema):
    since = UTCDateTime(required=True, metadata={"description": "Send again every delivery created since."})
