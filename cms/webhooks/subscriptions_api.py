"""Webhook subscriptions (admin): CRUD, secret rotation, ping, recovery of failed deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app

from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.webhooks import subscriptions
from cms.webhooks.subscription_schemas import (
    PingResultSchema,
    RecoverResultSchema,
    RecoverSchema,
    SubscriptionCreateSchema,
    SubscriptionListQuerySchema,
    SubscriptionPageSchema,
    SubscriptionSchema,
    SubscriptionUpdateSchema,
    SubscriptionWithSecretSchema,
)

bp = Blueprint("subscriptions", __name__)

subscription_schema = SubscriptionSchema()
with_secret_schema = SubscriptionWithSecretSchema()
page_schema = SubscriptionPageSchema()
ITEM = "/subscriptions/<uuid:subscription_id>"


def _policy() -> subscriptions.UrlPolicy:
    return subscriptions.url_policy(current_app.config)


@route(
    bp,
    "POST",
    "/subscriptions",
    summary="Create a webhook subscription",
    role=Role.ADMIN,
    body=SubscriptionCreateSchema(),
    responses={201: ("The subscription with its signing secret, shown this once", with_secret_schema)},
    errors=(409,),
)
def create_subscription(actor: Actor, body: dict[str, Any]) -> Response:
    """The secret (`whsec_…`) signs every webhook (Standard Webhooks); store it now."""
    sub, secret = subscriptions.create(db.session, body, _policy())
    payload = {**with_secret_schema.dump(sub), "secret": secret}
    return respond(payload, 201, {"Location": f"/api/v1/subscriptions/{sub.id}"})


@route(
    bp,
    "GET",
    "/subscriptions",
    summary="List webhook subscriptions",
    role=Role.ADMIN,
    query=SubscriptionListQuerySchema(),
    responses={200: ("A page of subscriptions (secrets only by prefix)", page_schema)},
)
def list_subscriptions(actor: Actor, query: dict[str, Any]) -> Response:
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    rows, next_after = subscriptions.page(db.session, limit=query["limit"], after=after)
    cursor = pagination.encode(*next_after) if next_after else None
    return respond(page_schema.dump({"items": rows, "next_cursor": cursor}))


@route(
    bp,
    "GET",
    ITEM,
    summary="Get a webhook subscription",
    role=Role.ADMIN,
    responses={200: ("The subscription", subscription_schema)},
)
def get_subscription(actor: Actor, subscription_id: uuid.UUID) -> Response:
    return respond(subscription_schema.dump(subscriptions.get(db.session, subscription_id)))


@route(
    bp,
    "PATCH",
    ITEM,
    summary="Change a webhook subscription",
    role=Role.ADMIN,
    body=SubscriptionUpdateSchema(),
    responses={200: ("The subscription", subscription_schema)},
    errors=(409,),
)
def update_subscription(actor: Actor, subscription_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """`enabled: true` resumes a disabled subscription: its queued deliveries go out in order."""
    sub = subscriptions.update_subscription(db.session, subscription_id, body, _policy())
    return respond(subscription_schema.dump(sub))


@route(
    bp,
    "DELETE",
    ITEM,
    summary="Delete a webhook subscription",
    role=Role.ADMIN,
    responses={204: ("Deleted", None)},
)
def delete_subscription(actor: Actor, subscription_id: uuid.UUID) -> Response:
    """Pending deliveries are cancelled; the delivery log is kept."""
    subscriptions.delete(db.session, subscription_id)
    return Response(status=204)


@route(
    bp,
    "POST",
    ITEM + "/rotate-secret",
    summary="Rotate the signing secret",
    role=Role.ADMIN,
    responses={200: ("The subscription with its new secret, shown this once", with_secret_schema)},
)
def rotate_secret(actor: Actor, subscription_id: uuid.UUID) -> Response:
    """During the grace period (CMS_WEBHOOK_ROTATION_GRACE_HOURS, default 24) webhooks
    carry signatures with both the old and the new secret."""
    grace = subscriptions.rotation_grace(current_app.config)
    sub, secret = subscriptions.rotate_secret(db.session, subscription_id, grace)
    return respond({**with_secret_schema.dump(sub), "secret": secret})


@route(
    bp,
    "POST",
    ITEM + "/ping",
    summary="Send a test event",
    role=Role.ADMIN,
    responses={202: ("The webhook.ping event, queued for this subscription", PingResultSchema())},
    errors=(409,),
)
def ping(actor: Actor, subscription_id: uuid.UUID) -> Response:
    """Delivered like any event; see its outcome in the delivery log."""
    event = subscriptions.ping(db.session, actor, subscription_id)
    return respond({"event_id": str(event.id)}, 202)


@route(
    bp,
    "POST",
    ITEM + "/recover",
    summary="Re-send failed deliveries",
    role=Role.ADMIN,
    body=RecoverSchema(),
    responses={202: ("How many deliveries were queued again", RecoverResultSchema())},
)
def recover(actor: Actor, subscription_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Every failed delivery created since `since` starts a fresh retry schedule."""
    count = subscriptions.recover(db.session, subscription_id, body["since"])
    return respond({"requeued": count}, 202)
