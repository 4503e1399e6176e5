"""Self-service (partner keys): a partner's own webhook subscriptions.

The same commands as the admin API, scoped to the calling partner: another
partner's subscription answers 404, exactly as one that never existed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app

from cms.accounts import partners
from cms.partners import commands
from cms.partners.schemas import PartnerSchema
from cms.platform import pagination
from cms.platform.actors import PartnerPrincipal
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.webhooks import subscriptions
from cms.webhooks.subscription_schemas import (
    PingResultSchema,
    RecoverResultSchema,
    ReplaySchema,
    SubscriptionCreateSchema,
    SubscriptionListQuerySchema,
    SubscriptionPageSchema,
    SubscriptionSchema,
    SubscriptionUpdateSchema,
    SubscriptionWithSecretSchema,
)

bp = Blueprint("partner_subscriptions", __name__)

subscription_schema = SubscriptionSchema()
with_secret_schema = SubscriptionWithSecretSchema()
page_schema = SubscriptionPageSchema()
ITEM = "/subscriptions/<uuid:subscription_id>"


def _policy() -> subscriptions.UrlPolicy:
    return subscriptions.url_policy(current_app.config)


@route(
    bp,
    "GET",
    "/me",
    summary="The calling partner",
    role=None,
    partner=True,
    responses={200: ("Name, contact, what it may see, its limits", PartnerSchema())},
)
def me(actor: PartnerPrincipal) -> Response:
    return respond(PartnerSchema().dump(partners.get(db.session, actor.partner_id)))


@route(
    bp,
    "POST",
    "/subscriptions",
    summary="Create a webhook subscription",
    role=None,
    partner=True,
    body=SubscriptionCreateSchema(),
    responses={201: ("The subscription with its signing secret, shown this once", with_secret_schema)},
    errors=(409,),
)
def create_subscription(actor: PartnerPrincipal, body: dict[str, Any]) -> Response:
    """Its webhooks carry only what the partner may see, and each carries the partner's
    change-feed cursor. 409 when the partner has its maximum of subscriptions."""
    sub, secret = commands.subscribe(db.session, actor.partner_id, body, _policy())
    return respond(
        {**with_secret_schema.dump(sub), "secret": secret},
        201,
        {"Location": f"/partner/v1/subscriptions/{sub.id}"},
    )


@route(
    bp,
    "GET",
    "/subscriptions",
    summary="List its webhook subscriptions",
    role=None,
    partner=True,
    query=SubscriptionListQuerySchema(),
    query_error_status=400,
    responses={200: ("A page of subscriptions", page_schema)},
)
def list_subscriptions(actor: PartnerPrincipal, query: dict[str, Any]) -> Response:
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    rows, next_after = subscriptions.page(
        db.session, limit=query["limit"], after=after, partner_id=actor.partner_id
    )
    cursor = pagination.encode(*next_after) if next_after else None
    return respond(page_schema.dump({"items": rows, "next_cursor": cursor}))


@route(
    bp,
    "GET",
    ITEM,
    summary="Get a webhook subscription",
    role=None,
    partner=True,
    responses={200: ("The subscription", subscription_schema)},
)
def get_subscription(actor: PartnerPrincipal, subscription_id: uuid.UUID) -> Response:
    return respond(subscription_schema.dump(subscriptions.get(db.session, subscription_id, actor.partner_id)))


@route(
    bp,
    "PATCH",
    ITEM,
    summary="Change a webhook subscription (filters, format, URL, headers, enabled)",
    role=None,
    partner=True,
    body=SubscriptionUpdateSchema(),
    responses={200: ("The subscription", subscription_schema)},
    errors=(409,),
)
def update_subscription(
    actor: PartnerPrincipal, subscription_id: uuid.UUID, body: dict[str, Any]
) -> Response:
    sub = subscriptions.update_subscription(db.session, subscription_id, body, _policy(), actor.partner_id)
    return respond(subscription_schema.dump(sub))


@route(
    bp,
    "DELETE",
    ITEM,
    summary="Delete a webhook subscription",
    role=None,
    partner=True,
    responses={204: ("Deleted", None)},
)
def delete_subscription(actor: PartnerPrincipal, subscription_id: uuid.UUID) -> Response:
    subscriptions.delete(db.session, subscription_id, actor.partner_id)
    return Response(status=204)


@route(
    bp,
    "POST",
    ITEM + "/rotate-secret",
    summary="Rotate the signing secret",
    role=None,
    partner=True,
    responses={200: ("The subscription with its new secret, shown this once", with_secret_schema)},
)
def rotate_secret(actor: PartnerPrincipal, subscription_id: uuid.UUID) -> Response:
    """Both secrets sign webhooks during the grace period (CMS_WEBHOOK_ROTATION_GRACE_HOURS)."""
    grace = subscriptions.rotation_grace(current_app.config)
    sub, secret = subscriptions.rotate_secret(db.session, subscription_id, grace, actor.partner_id)
    return respond({**with_secret_schema.dump(sub), "secret": secret})


@route(
    bp,
    "POST",
    ITEM + "/ping",
    summary="Send a test event",
    role=None,
    partner=True,
    responses={202: ("The webhook.ping event, queued for this subscription", PingResultSchema())},
    errors=(409,),
)
def ping(actor: PartnerPrincipal, subscription_id: uuid.UUID) -> Response:
    event = subscriptions.ping(db.session, actor, subscription_id, actor.partner_id)
    return respond({"event_id": str(event.id)}, 202)


@route(
    bp,
    "POST",
    ITEM + "/replay",
    summary="Send again everything since a time",
    role=None,
    partner=True,
    body=ReplaySchema(),
    responses={202: ("How many deliveries were queued again", RecoverResultSchema())},
)
def replay(actor: PartnerPrincipal, subscription_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Every delivery created since `since` (succeeded, failed or cancelled) is sent
    again with its original webhook-id, so a receiver can tell repeats. Deliveries in
    flight are left to finish. To catch up on more than the delivery log keeps, read
    the change feed from a webhook's cursor."""
    count = subscriptions.recover(
        db.session, subscription_id, body["since"], failed_only=False, partner_id=actor.partner_id
    )
    return respond({"requeued": count}, 202)
