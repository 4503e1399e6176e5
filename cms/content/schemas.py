"""Article input and output schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from cms.content import representation
from cms.content.representation import STATES
from cms.content.slugs import MAX_SLUG_LENGTH, SLUG_PATTERN
from cms.platform.http.fields import (
    HTTP_URL,
    MaxBytes,
    NonBlank,
    PageQuerySchema,
    Str,
    StrictSchema,
    UTCDateTime,
)

BODY_MAX_BYTES = 2 * 1024 * 1024
# BCP 47 in practice: a 2-3 letter language, then subtags (region, script, variant).
BCP47 = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$"


class LeadImageSchema(StrictSchema):
    url = Str(
        required=True,
        validate=[validate.Length(max=2000), validate.Regexp(HTTP_URL, error="Must be an http(s) URL.")],
        metadata={"description": "http(s) URL of the image."},
    )
    caption = Str(allow_none=True, validate=validate.Length(max=2000))
    credit = Str(allow_none=True, validate=validate.Length(max=300))
    alt_text = Str(allow_none=True, validate=validate.Length(max=1000))


def _text(max_len: int, **kw: Any) -> Str:
    return Str(allow_none=True, validate=validate.Length(max=max_len), **kw)


class ArticleFieldsSchema(StrictSchema):
    """The editable fields, shared by create and update."""

    headline = Str(required=True, validate=[validate.Length(min=1, max=300), NonBlank()])
    standfirst = _text(2000, metadata={"description": "Summary under the headline."})
    body = Str(
        validate=MaxBytes(BODY_MAX_BYTES),
        metadata={"description": "HTML; sanitised against an allow-list on save."},
    )
    byline = _text(300)
    dateline = _text(300)
    section = _text(100)
    tags = fields.List(
        Str(validate=[validate.Length(min=1, max=100), NonBlank()]),
        validate=validate.Length(max=50),
    )
    language = Str(
        validate=[
            validate.Regexp(BCP47, error="Must be a BCP 47 language tag such as en or bg."),
            validate.Length(max=35),
        ],
        metadata={"description": "BCP 47 language tag; default `en`."},
    )
    slug = Str(
        allow_none=True,
        validate=[
            validate.Length(min=1, max=MAX_SLUG_LENGTH),
            validate.Regexp(SLUG_PATTERN, error="Lowercase letters, digits and single hyphens only."),
        ],
        metadata={"description": "Unique; generated (transliterated) from the headline when absent."},
    )
    lead_image = fields.Nested(LeadImageSchema, allow_none=True)
    credits = fields.List(
        Str(validate=[validate.Length(min=1, max=100), NonBlank()]),
        validate=validate.Length(max=20),
        metadata={"description": "Agencies or sources, e.g. BTA, Reuters, AFP."},
    )
    editor_note = _text(5000)
    internal_note = _text(5000)
    message = Str(
        validate=validate.Length(max=500),
        load_only=True,
        metadata={"description": "Change message stored with the new version."},
    )


class ArticleCreateSchema(ArticleFieldsSchema):
    pass


class ArticleUpdateSchema(ArticleFieldsSchema):
    """Partial update: send only the fields that change (nothing, or no change: no new version)."""

    headline = Str(validate=[validate.Length(min=1, max=300), NonBlank()])


class LeadImageOutSchema(Schema):
    url = fields.String(required=True)
    caption = fields.String(allow_none=True)
    credit = fields.String(allow_none=True)
    alt_text = fields.String(allow_none=True)


def _out(f: representation.Field) -> fields.Field:
    """The output field for one representation field (every one always present)."""
    kw: dict[str, Any] = {"required": True, "allow_none": f.nullable}
    if f.description:
        kw["metadata"] = {"description": f.description}
    if f.kind == "tags":
        return fields.List(fields.String(), **kw)
    if f.kind == "image":
        return fields.Nested(LeadImageOutSchema, **kw)
    if f.kind == "state":
        return fields.String(validate=validate.OneOf(STATES), **kw)
    return _SIMPLE[f.kind](**kw)


_SIMPLE: dict[str, type[fields.Field]] = {
    "text": fields.String,
    "html": fields.String,
    "language": fields.String,
    "slug": fields.String,
    "id": fields.UUID,
    "int": fields.Integer,
    "datetime": fields.AwareDateTime,
}

# Generated from cms.content.representation: the fields, their order, their nullability.
_ContentOut = Schema.from_dict({f.name: _out(f) for f in representation.CONTENT}, name="_ContentOut")
_HeadOut = Schema.from_dict({f.name: _out(f) for f in representation.HEAD}, name="_HeadOut")
ArticleSchema = Schema.from_dict({f.name: _out(f) for f in representation.FIELDS}, name="ArticleSchema")
# What partners get (content API, webhooks' json format): no newsroom-only field.
PartnerArticleSchema = Schema.from_dict(
    {f.name: _out(f) for f in representation.FIELDS if f.partners}, name="PartnerArticleSchema"
)


ArticleSummarySchema = Schema.from_dict(
    {f.name: _out(f) for f in representation.SUMMARY},
    name="ArticleSummarySchema",
)


class ArticlePageSchema(Schema):
    items = fields.List(fields.Nested(ArticleSummarySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ArticleListQuerySchema(PageQuerySchema):
    state = fields.String(validate=validate.OneOf(STATES))
    section = Str(validate=validate.Length(min=1, max=100))
    tag = Str(validate=validate.Length(min=1, max=100))
    updated_since = UTCDateTime(
        metadata={"description": "ISO 8601 with offset; articles updated at or after it."}
    )
