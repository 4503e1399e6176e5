"""Content API and change feed schemas (query parameters and documented responses)."""

from __future__ import annotations

import uuid
from datetime import datetime

from marshmallow import Schema, fields, validate

from cms.content import search
from cms.content.formats import MEDIA_TYPES
from cms.content.schemas import PartnerArticleSchema
from cms.events import feed
from cms.platform import pagination
from cms.platform.http.fields import Str, StrictSchema, UTCDateTime
from cms.platform.http.routing import Media

FORMAT_HELP = (
    "`json` (our article JSON), `ninjs` (IPTC ninjs 2.1) or `ninjs3` (IPTC ninjs 3.1); instead of "
    "`Accept: application/ninjs+json; version=2.1|3.1`. Another value answers 406."
)
# A ninjs news item (validated against IPTC's schemas in the tests, not repeated here).
NINJS_ITEM = {"type": "object", "description": "IPTC ninjs news item", "additionalProperties": True}
ARTICLE = Media(
    {
        MEDIA_TYPES["json"]: PartnerArticleSchema,
        "application/ninjs+json": NINJS_ITEM,
    }
)


def _format() -> fields.Field:
    # Not validated here: an unknown format is 406 (cms.delivery.negotiation), not 400.
    return Str(metadata={"description": FORMAT_HELP, "enum": list(MEDIA_TYPES)})


class FormatQuerySchema(StrictSchema):
    format = _format()


class ArticleListQuerySchema(StrictSchema):
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Page size (1-100)."},
    )
    cursor = Str(
        validate=validate.Regexp(
            pagination.pattern(datetime, uuid.UUID), error="Not a cursor this API returns."
        ),
        metadata={"description": "`next_cursor` from the previous page."},
    )
    section = Str(validate=validate.Length(min=1, max=100))
    tag = Str(validate=validate.Length(min=1, max=100))
    language = Str(
        validate=[validate.Length(min=1, max=35), validate.Regexp(r"^[A-Za-z0-9-]+$", error="A BCP 47 tag.")],
        metadata={"description": "`en` also selects `en-GB`; for `q`, words match by this language's stems."},
    )
    since = UTCDateTime(metadata={"description": "Published (or updated) at or after this time."})
    q = Str(
        validate=validate.Length(min=1, max=search.MAX_QUERY_CHARS),
        metadata={
            "description": "Full-text search over headline, standfirst and body (PostgreSQL: web-search "
            "syntax, stems of `language`, else English, or words as written)."
        },
    )
    format = _format()


class ArticleItemsSchema(Schema):
    items = fields.List(
        fields.Dict(), required=True, metadata={"description": "Articles in the format asked for."}
    )
    format = fields.String(required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ChangesQuerySchema(StrictSchema):
    after = Str(
        validate=validate.Regexp(feed.PATTERN, error="Not a cursor this API or a webhook gave."),
        metadata={
            "description": "`next` from the previous page, or the `feed_cursor` of the last webhook "
            "processed. Without it: the initial sync (every visible live article), then the log."
        },
    )
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "Changes per page (1-1000)."},
    )
    format = _format()


class ChangeSchema(Schema):
    cursor = fields.String(required=True, metadata={"description": "Resume after this change."})
    event_id = fields.UUID(required=True, metadata={"description": "The webhook-id of the same event."})
    type = fields.String(required=True)
    article_id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    data = fields.Dict(
        required=True,
        metadata={
            "description": "What a webhook in this format carries as `data` (a tombstone for "
            "withdrawals: `reason` says why an article was killed)."
        },
    )


class ChangesPageSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    next = fields.String(required=True, metadata={"description": "Pass as `after` for what follows."})
    syncing = fields.Boolean(required=True, metadata={"description": "Still in the initial sync."})
    more = fields.Boolean(required=True, metadata={"description": "More is waiting now (ask again at once)."})
    format = fields.String(required=True)
