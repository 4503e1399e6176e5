"""Version history: list, read, diff, restore, verify the hash chain."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from cms.authoring import articles
from cms.authoring.api import article_response, article_schema
from cms.authoring.schemas import (
    ChainReportSchema,
    DiffQuerySchema,
    DiffSchema,
    RestoreSchema,
    VersionPageSchema,
    VersionSchema,
)
from cms.content import versions
from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.conditional import ETAG_RESPONSE_HEADER, IF_MATCH_HEADER, if_match_versions
from cms.platform.http.fields import NumberPageQuerySchema
from cms.platform.http.routing import respond, route

bp = Blueprint("versions", __name__)

version_schema = VersionSchema()
version_page_schema = VersionPageSchema()
diff_schema = DiffSchema()
chain_schema = ChainReportSchema()

VERSION_RULE = "/articles/<uuid:article_id>/versions/<int(min=1, max=2147483647):number>"


@route(
    bp,
    "GET",
    "/articles/<uuid:article_id>/versions",
    summary="List an article's versions",
    role=Role.READER,
    query=NumberPageQuerySchema(),
    responses={200: ("Versions, oldest first", version_page_schema)},
)
def list_versions(actor: Actor, article_id: uuid.UUID, query: dict[str, Any]) -> Response:
    articles.get(db.session, article_id)
    after = pagination.decode(query["cursor"], int)[0] if "cursor" in query else None
    rows, next_after = versions.page(db.session, article_id, limit=query["limit"], after=after)
    cursor = pagination.encode(next_after) if next_after is not None else None
    return respond(version_page_schema.dump({"items": rows, "next_cursor": cursor}))


@route(
    bp,
    "GET",
    VERSION_RULE,
    summary="Get one version (full snapshot)",
    role=Role.READER,
    responses={200: ("The version", version_schema)},
)
def get_version(actor: Actor, article_id: uuid.UUID, number: int) -> Response:
    return respond(version_schema.dump(versions.get(db.session, article_id, number)))


@route(
    bp,
    "GET",
    "/articles/<uuid:article_id>/diff",
    summary="Diff two versions",
    role=Role.READER,
    query=DiffQuerySchema(),
    responses={200: ("Changed fields and an RFC 6902 JSON Patch", diff_schema)},
)
def diff_versions(actor: Actor, article_id: uuid.UUID, query: dict[str, Any]) -> Response:
    result = versions.diff(db.session, article_id, query["from_"], query["to"])
    return respond(diff_schema.dump(result))


@route(
    bp,
    "POST",
    VERSION_RULE + "/restore",
    summary="Restore a version as a new version",
    role=Role.WRITER,
    body=RestoreSchema(),
    headers=[IF_MATCH_HEADER],
    responses={200: ("The article with the restored content as its latest version", article_schema)},
    errors=(409, 412, 428),
    response_headers={200: ETAG_RESPONSE_HEADER},
)
def restore_version(actor: Actor, article_id: uuid.UUID, number: int, body: dict[str, Any]) -> Response:
    """Writes version N+1 equal to the chosen one; nothing is deleted."""
    expected = if_match_versions()
    item = articles.restore(
        db.session,
        actor,
        article_id,
        number,
        expected_versions=expected,
        message=body.get("message"),
    )
    return article_response(item)


@route(
    bp,
    "GET",
    "/articles/<uuid:article_id>/integrity",
    summary="Verify the version hash chain",
    role=Role.READER,
    responses={200: ("Result of recomputing every version hash", chain_schema)},
)
def verify_integrity(actor: Actor, article_id: uuid.UUID) -> Response:
    """Recomputes each version's hash; reports the first tampered or missing version."""
    article = articles.get(db.session, article_id)
    return respond(chain_schema.dump(versions.verify_chain(db.session, article)))
