"""Feed query parameters, documented responses, and feed-token schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from cms.feeds import render
from cms.platform.http.fields import NonBlank, Str, StrictSchema
from cms.platform.http.routing import Media

FEED = Media(
    {
        "application/rss+xml": {"type": "string", "description": "RSS 2.0"},
        "application/atom+xml": {"type": "string", "description": "Atom 1.0"},
        "application/feed+json": {
            "type": "object",
            "description": "JSON Feed 1.1",
            "required": ["version", "title", "items"],
        },
    }
)
MEDIA_TYPES = render.MEDIA_TYPES


class FeedQuerySchema(StrictSchema):
    section = Str(validate=validate.Length(min=1, max=100), metadata={"description": "Only this section."})
    tag = Str(validate=validate.Length(min=1, max=100), metadata={"description": "Only this tag."})
    language = Str(
        validate=validate.Length(min=1, max=35),
        metadata={"description": "Only this language (`en` also takes `en-GB`)."},
    )


class FeedTokenCreateSchema(StrictSchema):
    name = Str(required=True, validate=[validate.Length(min=1, max=100), NonBlank()])


class FeedTokenSchema(Schema):
    id = fields.UUID(required=True)
    partner_id = fields.UUID(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters of the token."})
    created_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)


class FeedUrlsSchema(Schema):
    rss = fields.String(required=True)
    atom = fields.String(required=True)
    json = fields.String(required=True)


class FeedTokenCreatedSchema(FeedTokenSchema):
    token = fields.String(required=True, metadata={"description": "Shown once: it is in the feed URLs."})
    feeds = fields.Nested(
        FeedUrlsSchema,
        required=True,
        metadata={"description": "The partner's feeds; add `section`, `tag`, `language` to narrow them."},
    )


class FeedTokenListSchema(Schema):
    items = fields.List(fields.Nested(FeedTokenSchema), required=True)
