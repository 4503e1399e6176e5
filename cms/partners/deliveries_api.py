"""Self-service (partner keys): a partner's own delivery log, and redelivery."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from cms.platform.actors import PartnerPrincipal
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.webhooks import deliveries
from cms.webhooks.deliveries_api import log_page, with_attempts
from cms.webhooks.delivery_schemas import (
    DeliveryListQuerySchema,
    DeliveryPageSchema,
    DeliveryWithAttemptsSchema,
)

bp = Blueprint("partner_deliveries", __name__)

delivery_schema = DeliveryWithAttemptsSchema()
page_schema = DeliveryPageSchema()


@route(
    bp,
    "GET",
    "/deliveries",
    summary="List its deliveries with their attempts",
    role=None,
    partner=True,
    query=DeliveryListQuerySchema(),
    query_error_status=400,
    responses={200: ("Newest first", page_schema)},
)
def list_deliveries(actor: PartnerPrincipal, query: dict[str, Any]) -> Response:
    """Filter by subscription, event, article and status."""
    return respond(log_page(query, actor.partner_id))


@route(
    bp,
    "GET",
    "/deliveries/<uuid:delivery_id>",
    summary="Get a delivery with its attempts",
    role=None,
    partner=True,
    responses={200: ("The delivery", delivery_schema)},
)
def get_delivery(actor: PartnerPrincipal, delivery_id: uuid.UUID) -> Response:
    delivery = deliveries.get(db.session, delivery_id, actor.partner_id)
    return respond(delivery_schema.dump(with_attempts([delivery])[0]))


@route(
    bp,
    "POST",
    "/deliveries/<uuid:delivery_id>/redeliver",
    summary="Send a delivery again",
    role=None,
    partner=True,
    responses={202: ("Queued with a fresh retry schedule", delivery_schema)},
    errors=(409,),
)
def redeliver(actor: PartnerPrincipal, delivery_id: uuid.UUID) -> Response:
    """The same webhook-id is sent again."""
    delivery = deliveries.redeliver(db.session, delivery_id, actor.partner_id)
    return respond(delivery_schema.dump(with_attempts([delivery])[0]), 202)
