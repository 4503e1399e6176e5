"""The published-content API (``/content/v1``, partner keys): articles by id, by slug,
and lists with filters and full-text search, in our JSON or IPTC ninjs 2.1 / 3.1.

Caching: a strong ``ETag`` per (published version, last transition, format),
``If-None-Match`` -> 304, ``Last-Modified``, ``Cache-Control`` (``CMS_CONTENT_MAX_AGE``
and ``CMS_CONTENT_STALE_WHILE_REVALIDATE``), ``Vary: Accept, Authorization`` (what a
partner sees depends on its key).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import orjson
from flask import Blueprint, Response, current_app
from werkzeug.http import http_date

from cms.content import search
from cms.content.formats import MEDIA_TYPES
from cms.content.visibility import ContentFilter
from cms.delivery import content
from cms.delivery.negotiation import chosen
from cms.delivery.schemas import ARTICLE, ArticleItemsSchema, ArticleListQuerySchema, FormatQuerySchema
from cms.platform import pagination
from cms.platform.actors import PartnerPrincipal
from cms.platform.extensions import db
from cms.platform.http.conditional import unchanged
from cms.platform.http.routing import route

bp = Blueprint("content", __name__)

CACHING_HEADERS = {
    "ETag": {"description": "Strong; per published version and format", "schema": {"type": "string"}},
    "Last-Modified": {"description": "When what partners see last changed", "schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
    "Vary": {"schema": {"type": "string"}},
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags you hold; 304 (no body) when the article has not changed.",
    "schema": {"type": "string"},
}


def audience(actor: PartnerPrincipal) -> ContentFilter:
    return _audience(actor.sections, actor.tags, actor.languages, actor.receives_embargoed)


@functools.lru_cache(maxsize=1024)
def _audience(
    sections: tuple[str, ...], tags: tuple[str, ...], languages: tuple[str, ...], embargoed: bool
) -> ContentFilter:
    return ContentFilter.of(sections, tags, languages, embargoed=embargoed)


def _cache_control() -> str:
    config = current_app.config
    return _cache_control_of(config["CMS_CONTENT_MAX_AGE"], config["CMS_CONTENT_STALE_WHILE_REVALIDATE"])


@functools.cache
def _cache_control_of(fresh: int, stale: int) -> str:
    return f"max-age={fresh}, stale-while-revalidate={stale}"


def _items_cache() -> content.RenderedItems:
    return current_app.extensions["cms_content_items"]  # type: ignore[no-any-return]


def _article_response(row: Any, fmt: str) -> Response:
    tag = content.etag(row, fmt)
    headers = {
        "ETag": tag,
        "Last-Modified": _http_date(row.changed_at),
        "Cache-Control": _cache_control(),
        "Vary": "Accept, Authorization",
    }
    if unchanged(tag, row.changed_at):
        return Response(status=304, headers=headers)
    body = content.rendered(db.session, [row], fmt, _items_cache())[0]
    return Response(body, status=200, headers=headers, content_type=MEDIA_TYPES[fmt])


@functools.lru_cache(maxsize=4096)
def _http_date(value: datetime) -> str:
    return http_date(value)


def _article_route(rule: str, summary: str) -> Any:
    return route(
        bp,
        "GET",
        rule,
        summary=summary,
        role=None,
        partner=True,
        query=FormatQuerySchema(),
        query_error_status=400,
        headers=(IF_NONE_MATCH,),
        responses={200: ("The published article", ARTICLE), 304: ("Not modified", None)},
        response_headers={200: CACHING_HEADERS, 304: CACHING_HEADERS},
        errors=(406, 410),
    )


@_article_route("/articles/<uuid:article_id>", "Get a published article")
def get_article(actor: PartnerPrincipal, article_id: uuid.UUID, query: dict[str, Any]) -> Response:
    """Its published version, never a later draft. 404 when it is not published (or
    outside the partner's filter); 410 when it was killed, with the reason."""
    fmt = chosen(query.get("format"))
    row = content.by_id(
        db.session, audience(actor), article_id, current_app.extensions["cms_projection_cache"]
    )
    return _article_response(row, fmt)


@_article_route("/articles/by-slug/<slug>", "Get a published article by its slug")
def get_article_by_slug(actor: PartnerPrincipal, slug: str, query: dict[str, Any]) -> Response:
    """The slug of its published version."""
    fmt = chosen(query.get("format"))
    row = content.by_slug(db.session, audience(actor), slug, current_app.extensions["cms_projection_cache"])
    return _article_response(row, fmt)


@route(
    bp,
    "GET",
    "/articles",
    summary="List published articles",
    role=None,
    partner=True,
    query=ArticleListQuerySchema(),
    query_error_status=400,
    responses={200: ("Newest first", ArticleItemsSchema())},
    response_headers={
        200: {"Cache-Control": {"schema": {"type": "string"}}, "Vary": {"schema": {"type": "string"}}}
    },
    errors=(406,),
)
def list_articles(actor: PartnerPrincipal, query: dict[str, Any]) -> Response:
    """Filter by `section`, `tag`, `language`, `since`; search with `q`. Items come in the
    format asked for (`format`, or the media type in `Accept`), in an `application/json` page."""
    fmt = chosen(query.get("format"))
    q = query.get("q")
    if q is not None and not search.searchable(q, query.get("language")):
        return _page([], fmt, None)  # nothing to look for (no word, or stop words only)
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    wanted = content.ListQuery(
        limit=query["limit"],
        after=after,  # type: ignore[arg-type]
        section=query.get("section"),
        tag=query.get("tag"),
        language=query.get("language"),
        since=query.get("since"),
        q=q,
    )
    rows, next_after = content.page(db.session, audience(actor), wanted)
    items = content.rendered(db.session, rows, fmt, _items_cache())
    return _page(items, fmt, pagination.encode(*next_after) if next_after else None)


def _page(items: list[bytes], fmt: str, cursor: str | None) -> Response:
    """The list's JSON, assembled from the items' cached bytes."""
    body = json_page("items", items, {"format": fmt, "next_cursor": cursor})
    headers = {"Cache-Control": _cache_control(), "Vary": "Accept, Authorization"}
    return Response(body, status=200, headers=headers, content_type="application/json")


def json_page(name: str, items: list[bytes], rest: dict[str, Any]) -> bytes:
    """``{name: [items...], **rest}`` from items already serialised (cached bytes)."""
    return b'{"' + name.encode() + b'":[' + b",".join(items) + b"]," + orjson.dumps(rest)[1:]
