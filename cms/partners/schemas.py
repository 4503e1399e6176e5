"""Partner schemas (admin and self-service). Raw keys appear only in key creation."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.platform.http.fields import NonBlank, Str, StrictBool, StrictSchema, WholeNumber
from cms.webhooks.subscription_schemas import name_list

# One character class that Python's and JSON Schema's (ECMA) regular expressions read
# alike: their \s differ on \x1c-\x1f, \x85 and \ufeff, all excluded here explicitly.
_ADDR = r"[^@\s\x00-\x20\x7f-\x9f\ufeff]"
EMAIL = rf"^{_ADDR}+@{_ADDR}+\.{_ADDR}+$"


class PartnerFieldsSchema(StrictSchema):
    name = Str(validate=[validate.Length(min=1, max=100), NonBlank()])
    email = Str(
        validate=[validate.Length(min=3, max=254), validate.Regexp(EMAIL, error="Must be an email address.")],
        metadata={"description": "Contact for the partner's technical people."},
    )
    enabled = StrictBool(metadata={"description": "A disabled partner's keys and webhooks stop."})
    sections = name_list(100, 100, "Content it may see: only these sections (empty: all).")
    tags = name_list(100, 100, "Only articles with at least one of these tags (empty: all).")
    languages = name_list(50, 35, "Only these languages; `en` also selects `en-GB` (empty: all).")
    max_subscriptions = WholeNumber(
        validate=validate.Range(min=0, max=1000),
        metadata={
            "description": "Webhook subscriptions it may keep (default CMS_PARTNER_MAX_SUBSCRIPTIONS)."
        },
    )
    receives_embargoed = StrictBool(
        metadata={
            "description": "Trusted with stories before their embargo lifts: sees them in the content "
            "API and change feed, and its subscriptions may choose `embargo: send` (default false)."
        }
    )
    rate_limit_per_minute = WholeNumber(
        validate=validate.Range(min=1, max=1_000_000),
        metadata={
            "description": "Requests a minute, over which it gets 429 (default CMS_PARTNER_RATE_LIMIT)."
        },
    )


class PartnerCreateSchema(PartnerFieldsSchema):
    name = Str(required=True, validate=[validate.Length(min=1, max=100), NonBlank()])
    email = Str(
        required=True,
        validate=[validate.Length(min=3, max=254), validate.Regexp(EMAIL, error="Must be an email address.")],
    )


class PartnerUpdateSchema(PartnerFieldsSchema):
    pass


class PartnerSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    sections = fields.List(fields.String(), required=True)
    tags = fields.List(fields.String(), required=True)
    languages = fields.List(fields.String(), required=True)
    max_subscriptions = fields.Integer(required=True)
    rate_limit_per_minute = fields.Integer(required=True)
    receives_embargoed = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class PartnerPageSchema(Schema):
    items = fields.List(fields.Nested(PartnerSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class PartnerKeyCreateSchema(StrictSchema):
    name = Str(required=True, validate=[validate.Length(min=1, max=100), NonBlank()])


class PartnerKeySchema(Schema):
    id = fields.UUID(required=True)
    partner_id = fields.UUID(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters of the key."})
    created_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)


class PartnerKeyCreatedSchema(PartnerKeySchema):
    key = fields.String(required=True, metadata={"description": "Shown once; give it to the partner now."})


class PartnerKeyListSchema(Schema):
    items = fields.List(fields.Nested(PartnerKeySchema), required=True)
