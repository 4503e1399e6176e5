"""Feeds (``/feeds/v1``): RSS 2.0, Atom 1.0 and JSON Feed 1.1 of the published stories,
for everything or any combination of a section, a tag and a language.

Public feeds (``CMS_PUBLIC_FEEDS``, off by default) show what every partner may see;
a private feed (``/feeds/v1/p/<token>/…``) shows what that partner may see, through a
feed token in the URL (feed readers cannot send headers). ``ETag``/``Last-Modified``
with 304s, ``Cache-Control``; every feed names its WebSub hub and itself.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.http import http_date

from cms.content.visibility import ContentFilter
from cms.feeds import service, topics
from cms.feeds.schemas import FEED, MEDIA_TYPES, FeedQuerySchema
from cms.platform.actors import PartnerPrincipal
from cms.platform.errors import NotFound
from cms.platform.extensions import db
from cms.platform.http.conditional import unchanged
from cms.platform.http.problems import ApiError
from cms.platform.http.routing import route

bp = Blueprint("feeds", __name__)

HEADERS = {
    "ETag": {"schema": {"type": "string"}},
    "Last-Modified": {"schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}


def _feed_route(rule: str, summary: str) -> Any:
    return route(
        bp,
        "GET",
        rule,
        summary=summary,
        role=None,
        query=FeedQuerySchema(),
        query_error_status=400,
        headers=(IF_NONE_MATCH,),
        responses={200: ("The feed, newest first", FEED), 304: ("Not modified", None)},
        response_headers={200: HEADERS, 304: HEADERS},
        errors=(404, 406),
        path={"fmt": {"type": "string", "enum": list(MEDIA_TYPES), "description": "Another format: 406."}},
    )


@_feed_route("/<fmt>", "A public feed")
def public_feed(actor: None, fmt: str, query: dict[str, Any]) -> Response:
    """Everything published, or a section, tag or language (any combination); `fmt`:
    `rss` (RSS 2.0), `atom` (Atom 1.0) or `json` (JSON Feed 1.1), another one is 406.
    Offered only when `CMS_PUBLIC_FEEDS` is on (else 404)."""
    _format(fmt)
    if not current_app.config["CMS_PUBLIC_FEEDS"]:
        raise NotFound("Public feeds are not offered here; ask for a private feed.")
    return _feed(topics.PUBLIC, None, topics.Topic(fmt, _selection(query)))


@_feed_route("/p/<token>/<fmt>", "A partner's private feed")
def private_feed(actor: None, token: str, fmt: str, query: dict[str, Any]) -> Response:
    """What the partner may see (its filters, and embargoed stories if it is trusted with
    them), narrowed by `section`, `tag`, `language`; `fmt` as for public feeds. An unknown
    or revoked token: 404."""
    _format(fmt)
    topic = topics.Topic(fmt, _selection(query), token)
    found = topics.resolve(db.session, topic, current_app.config, current_app.extensions["cms_feed_tokens"])
    if found is None:
        raise NotFound("No feed here: the token is unknown or was revoked.")
    return _feed(*found, topic)


def _selection(query: dict[str, Any]) -> service.Selection:
    return service.Selection(query.get("section"), query.get("tag"), query.get("language"))


def _format(fmt: str) -> None:
    if fmt not in MEDIA_TYPES:
        raise ApiError(
            406, "not-acceptable", "Unsupported feed format", f"Feeds come as {', '.join(MEDIA_TYPES)}."
        )


def _feed(seen: ContentFilter, reader: PartnerPrincipal | None, topic: topics.Topic) -> Response:
    base = base_url()
    key: Hashable = ("feed", seen, topic, base)  # a changed partner filter is another feed
    cache = current_app.extensions["cms_projection_cache"]
    kept, token = cache.get(key)
    if kept is None:
        config = current_app.config
        kept = (service.head(db.session, seen, topic.selection, topic.fmt, config["CMS_FEED_LENGTH"]), None)
    head, body = kept
    headers = {
        "ETag": head.etag,
        "Last-Modified": http_date(head.last_modified),
        "Cache-Control": f"max-age={current_app.config['CMS_FEED_MAX_AGE']}",
    }
    if unchanged(head.etag, head.last_modified):
        if body is None:
            cache.put(key, kept, token)  # validators read now; a hit is in the cache already
        return Response(status=304, headers=headers)
    if body is None:
        _, body = topics.build(db.session, current_app.config, topic, seen, reader, base, head)
        cache.put(key, (head, body), token)
    return Response(body, status=200, headers=headers, content_type=MEDIA_TYPES[topic.fmt])


def base_url() -> str:
    """Where the API is reached: ``CMS_PUBLIC_URL``, else as this request came (kept per
    scheme and host: werkzeug builds ``host_url`` anew on every request)."""
    configured = current_app.config["CMS_PUBLIC_URL"]
    if configured:
        return str(configured).rstrip("/")
    environ = request.environ
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"))
    found = _BASES.get(key)
    if found is None:
        found = _BASES[key] = request.host_url.rstrip("/")
        if len(_BASES) > 256:  # hosts are the client's to choose: stay small
            _BASES.clear()
    return found


_BASES: dict[tuple[Any, ...], str] = {}
