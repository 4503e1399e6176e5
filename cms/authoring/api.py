"""Articles: list, create (idempotent), read, revise (If-Match)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from cms.authoring import articles, idempotency
from cms.authoring.render_cache import RenderCache
from cms.content import reads as article_reads
from cms.content import representation
from cms.content.reads import ArticleView, ListFilters
from cms.content.schemas import (
    ArticleCreateSchema,
    ArticleListQuerySchema,
    ArticlePageSchema,
    ArticleSchema,
    ArticleUpdateSchema,
)
from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.conditional import (
    ETAG_RESPONSE_HEADER,
    IF_MATCH_HEADER,
    IF_NONE_MATCH_HEADER,
    if_match_versions,
    not_modified,
)
from cms.platform.http.problems import ApiError
from cms.platform.http.routing import respond, route

bp = Blueprint("articles", __name__)

article_schema = ArticleSchema()
page_schema = ArticlePageSchema()

IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry-safe creation: the same key and body return the same article.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def present(item: ArticleView) -> dict[str, Any]:
    return article_schema.dump(item.as_dict())


def render(item: ArticleView) -> bytes:
    """The article in its one representation (``cms.content.representation``), as JSON.

    Built without marshmallow (the read hot path: it took ~40 µs of the ~50 spent
    on a cache miss); tests/test_render_cache.py checks that this equals
    ``ArticleSchema().dump()`` field for field.
    """
    return representation.dumps(item.head(), item.content_dict())


def article_response(item: ArticleView, status: int = 200, **headers: str) -> Response:
    cache: RenderCache = current_app.extensions["cms_render_cache"]
    response = Response(cache.body(item, render), status=status, content_type="application/json")
    response.headers["ETag"] = item.etag
    if status == 201:
        # Only a creation names a new resource (RFC 9110 10.2.2); on a 200 the
        # header would mean nothing and werkzeug's URL handling of it costs ~15 µs.
        response.headers["Location"] = f"/api/v1/articles/{item.id}"
    if headers:
        response.headers.extend(headers)
    return response


@route(
    bp,
    "GET",
    "/articles",
    summary="List articles",
    role=Role.READER,
    query=ArticleListQuerySchema(),
    responses={200: ("A page of articles", page_schema)},
)
def list_articles(actor: Actor, query: dict[str, Any]) -> Response:
    """Most recently updated first; filter by state, section, tag and updated_since."""
    after = None
    if "cursor" in query:
        after = pagination.decode(query["cursor"], datetime, uuid.UUID)
    rows, next_after = article_reads.page(
        db.session,
        ListFilters(
            state=query.get("state"),
            section=query.get("section"),
            tag=query.get("tag"),
            updated_since=query.get("updated_since"),
        ),
        limit=query["limit"],
        after=after,
    )
    items = [
        {
            "id": a.id,
            "slug": a.slug,
            "state": a.state,
            "headline": a.headline,
            "section": a.section,
            "language": a.language,
            "tags": [t.tag for t in a.tags],
            "version": a.current_version,
            "published_version": a.published_version,
            "kill_reason": a.kill_reason,
            "created_at": a.created_at,
            "updated_at": a.updated_at,
            "first_published_at": a.first_published_at,
            "published_at": a.published_at,
        }
        for a in rows
    ]
    cursor = pagination.encode(*next_after) if next_after else None
    return respond(page_schema.dump({"items": items, "next_cursor": cursor}))


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(33 <= ord(c) <= 126 for c in key):
        raise ApiError(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            "Idempotency-Key must be 1-255 visible ASCII characters.",
        )
    return key


@route(
    bp,
    "POST",
    "/articles",
    summary="Create an article (version 1, draft)",
    role=Role.WRITER,
    body=ArticleCreateSchema(),
    headers=[IDEMPOTENCY_HEADER],
    responses={201: ("The new article", article_schema)},
    errors=(409,),
    response_headers={201: ETAG_RESPONSE_HEADER},
)
def create_article(actor: Actor, body: dict[str, Any]) -> Response:
    """Repeating a request with the same Idempotency-Key returns the same article."""
    key = _idempotency_key()
    fingerprint = idempotency.request_fingerprint(g.raw_body) if key is not None else None
    item, replayed = idempotency.create_article(
        db.session, actor, body, message=body.pop("message", None), key=key, fingerprint=fingerprint
    )
    if replayed:
        return article_response(item, 201, **{"Idempotent-Replayed": "true"})
    return article_response(item, 201)


@route(
    bp,
    "GET",
    "/articles/<uuid:article_id>",
    summary="Get an article (latest version)",
    role=Role.READER,
    headers=[IF_NONE_MATCH_HEADER],
    responses={200: ("The article", article_schema), 304: ("Not modified since the ETag you sent", None)},
    response_headers={200: ETAG_RESPONSE_HEADER, 304: ETAG_RESPONSE_HEADER},
)
def get_article(actor: Actor, article_id: uuid.UUID) -> Response:
    """The ETag names the latest version and the last change: send it back in If-Match to
    revise, or in If-None-Match to get 304 while nothing changed."""
    item = article_reads.read(db.session, article_id)
    return not_modified(item.etag) or article_response(item)


@route(
    bp,
    "PATCH",
    "/articles/<uuid:article_id>",
    summary="Revise an article (new version)",
    role=Role.WRITER,
    body=ArticleUpdateSchema(),
    headers=[IF_MATCH_HEADER],
    responses={200: ("The article with its new version", article_schema)},
    errors=(409, 412, 428),
    response_headers={200: ETAG_RESPONSE_HEADER},
)
def update_article(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Requires If-Match: missing -> 428, stale -> 412 with the current version."""
    expected = if_match_versions()
    message = body.pop("message", None)
    item = articles.update(db.session, actor, article_id, body, expected_versions=expected, message=message)
    return article_response(item)
