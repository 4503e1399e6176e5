"""The delivery log (admin): every delivery with its attempts; redelivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response

from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.webhooks import deliveries
from cms.webhooks.deliveries import DeliveryFilters
from cms.webhooks.delivery_schemas import (
    DeliveryListQuerySchema,
    DeliveryPageSchema,
    DeliveryWithAttemptsSchema,
)
from cms.webhooks.models import Delivery

bp = Blueprint("deliveries", __name__)

delivery_schema = DeliveryWithAttemptsSchema()
page_schema = DeliveryPageSchema()


def with_attempts(rows: list[Delivery]) -> list[dict[str, Any]]:
    log = deliveries.attempts_of(db.session, [d.id for d in rows])
    out = []
    for d in rows:
        item = {c.key: getattr(d, c.key) for c in Delivery.__table__.columns}
        item["attempt_log"] = log[d.id]
        out.append(item)
    return out


@route(
    bp,
    "GET",
    "/deliveries",
    summary="List deliveries with their attempts",
    role=Role.ADMIN,
    query=DeliveryListQuerySchema(),
    responses={200: ("Newest first", page_schema)},
)
def list_deliveries(actor: Actor, query: dict[str, Any]) -> Response:
    """Filter by subscription, event, article and status."""
    return respond(log_page(query))


def log_page(query: dict[str, Any], partner_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A page of the delivery log as the API answers it (a partner's own, if given)."""
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    filters = DeliveryFilters(
        subscription_id=query.get("subscription_id"),
        event_id=query.get("event_id"),
        article_id=query.get("article_id"),
        status=query.get("status"),
        partner_id=partner_id,
    )
    rows, next_after = deliveries.page(db.session, filters, limit=query["limit"], after=after)
    cursor = pagination.encode(*next_after) if next_after else None
    return page_schema.dump({"items": with_attempts(rows), "next_cursor": cursor})  # type: ignore[no-any-return]


@route(
    bp,
    "GET",
    "/deliveries/<uuid:delivery_id>",
    summary="Get a delivery with its attempts",
    role=Role.ADMIN,
    responses={200: ("The delivery", delivery_schema)},
)
def get_delivery(actor: Actor, delivery_id: uuid.UUID) -> Response:
    return respond(delivery_schema.dump(with_attempts([deliveries.get(db.session, delivery_id)])[0]))


@route(
    bp,
    "POST",
    "/deliveries/<uuid:delivery_id>/redeliver",
    summary="Send a delivery again",
    role=Role.ADMIN,
    responses={202: ("Queued with a fresh retry schedule", delivery_schema)},
    errors=(409,),
)
def redeliver(actor: Actor, delivery_id: uuid.UUID) -> Response:
    """Works on succeeded, failed and cancelled deliveries; the same webhook-id is sent."""
    delivery = deliveries.redeliver(db.session, delivery_id)
    return respond(delivery_schema.dump(with_attempts([delivery])[0]), 202)
