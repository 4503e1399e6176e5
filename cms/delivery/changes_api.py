"""The change feed (``/content/v1/changes``, partner keys): push for latency, pull to heal.

Every webhook a partner's subscription sends carries its feed cursor (the
``webhook-feed-cursor`` header and the body's ``feed_cursor``); a receiver that was
down resumes from the last one it processed, and misses nothing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from cms.delivery import changes
from cms.delivery.api import audience, json_page
from cms.delivery.negotiation import chosen
from cms.delivery.schemas import ChangesPageSchema, ChangesQuerySchema
from cms.events import feed
from cms.platform.actors import PartnerPrincipal
from cms.platform.extensions import db
from cms.platform.http.routing import route

bp = Blueprint("changes", __name__)


@route(
    bp,
    "GET",
    "/changes",
    summary="Read the change feed",
    role=None,
    partner=True,
    query=ChangesQuerySchema(),
    query_error_status=400,
    responses={200: ("Changes in commit order, and the cursor to continue from", ChangesPageSchema())},
    errors=(406,),
)
def read_changes(actor: PartnerPrincipal, query: dict[str, Any]) -> Response:
    """Published, updated and corrected articles (with the article), unpublished and
    killed ones (tombstones; `reason` for a kill), in the order they were committed, each
    with the event id its webhook had. A cursor that is malformed, made up or another
    partner's answers 400."""
    fmt = chosen(query.get("format"))
    cursor = feed.decode(actor.cursor_key, query["after"]) if "after" in query else None
    page = changes.read(db.session, actor.cursor_key, audience(actor), cursor, query["limit"], fmt)
    rest = {"next": page.next, "syncing": page.syncing, "more": page.more, "format": fmt}
    return Response(
        json_page("changes", page.changes, rest),
        status=200,
        content_type="application/json",
        headers={"Cache-Control": "no-cache", "Vary": "Accept, Authorization"},
    )
