"""The event log (admin): outbox events with their delivery counts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response

from cms.events.models import OutboxEvent
from cms.platform import pagination
from cms.platform.actors import Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.webhooks import event_queries as events
from cms.webhooks.event_queries import EventFilters
from cms.webhooks.event_schemas import EventListQuerySchema, EventPageSchema

bp = Blueprint("events", __name__)

page_schema = EventPageSchema()


@route(
    bp,
    "GET",
    "/events",
    summary="List events with their delivery counts",
    role=Role.ADMIN,
    query=EventListQuerySchema(),
    responses={200: ("Newest first", page_schema)},
)
def list_events(actor: Any, query: dict[str, Any]) -> Response:
    """Filter by type, article and subscription (pings and subscription events)."""
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    filters = EventFilters(
        type=query.get("type"),
        article_id=query.get("article_id"),
        subscription_id=query.get("subscription_id"),
    )
    rows, next_after = events.page(db.session, filters, limit=query["limit"], after=after)
    counts = events.delivery_counts(db.session, [e.id for e in rows])
    items = []
    for e in rows:
        item: dict[str, Any] = {c.key: getattr(e, c.key) for c in OutboxEvent.__table__.columns}
        by_status = counts.get(e.id, {})
        item["deliveries"] = {**by_status, "total": sum(by_status.values())}
        items.append(item)
    cursor = pagination.encode(*next_after) if next_after else None
    return respond(page_schema.dump({"items": items, "next_cursor": cursor}))
