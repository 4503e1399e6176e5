"""Partner administration (admin role): partners, their filters and limits, their keys."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app

from cms.accounts import partners
from cms.partners import commands
from cms.partners.schemas import (
    PartnerCreateSchema,
    PartnerKeyCreatedSchema,
    PartnerKeyCreateSchema,
    PartnerKeyListSchema,
    PartnerKeySchema,
    PartnerPageSchema,
    PartnerSchema,
    PartnerUpdateSchema,
)
from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.fields import IdPageQuerySchema
from cms.platform.http.routing import respond, route

bp = Blueprint("partners", __name__)

partner_schema = PartnerSchema()
page_schema = PartnerPageSchema()
key_schema = PartnerKeySchema()
created_key_schema = PartnerKeyCreatedSchema()
ITEM = "/partners/<uuid:partner_id>"


def _forget_verified_keys() -> None:
    """A changed partner (filters, enabled, limits) is re-read on its next request here;
    other processes re-read it within CMS_AUTH_CACHE_SECONDS."""
    current_app.extensions["cms_partner_auth_cache"].clear()


def _defaults() -> dict[str, int]:
    return {
        "max_subscriptions": current_app.config["CMS_PARTNER_MAX_SUBSCRIPTIONS"],
        "rate_limit_per_minute": current_app.config["CMS_PARTNER_RATE_LIMIT"],
    }


@route(
    bp,
    "POST",
    "/partners",
    summary="Create a partner",
    role=Role.ADMIN,
    body=PartnerCreateSchema(),
    responses={201: ("The partner", partner_schema)},
)
def create_partner(actor: Actor, body: dict[str, Any]) -> Response:
    """Filters (sections, tags, languages) bound everything it sees: content API, change
    feed and its webhooks. Give it a key next (`POST /partners/{id}/keys`)."""
    partner = partners.create(db.session, body, _defaults())
    return respond(partner_schema.dump(partner), 201, {"Location": f"/api/v1/partners/{partner.id}"})


@route(
    bp,
    "GET",
    "/partners",
    summary="List partners",
    role=Role.ADMIN,
    query=IdPageQuerySchema(),
    responses={200: ("A page of partners", page_schema)},
)
def list_partners(actor: Actor, query: dict[str, Any]) -> Response:
    after = pagination.decode(query["cursor"], uuid.UUID)[0] if "cursor" in query else None
    rows, next_after = partners.page(db.session, limit=query["limit"], after=after)
    cursor = pagination.encode(next_after) if next_after else None
    return respond(page_schema.dump({"items": rows, "next_cursor": cursor}))


@route(
    bp,
    "GET",
    ITEM,
    summary="Get a partner",
    role=Role.ADMIN,
    responses={200: ("The partner", partner_schema)},
)
def get_partner(actor: Actor, partner_id: uuid.UUID) -> Response:
    return respond(partner_schema.dump(partners.get(db.session, partner_id)))


@route(
    bp,
    "PATCH",
    ITEM,
    summary="Change a partner",
    role=Role.ADMIN,
    body=PartnerUpdateSchema(),
    responses={200: ("The partner", partner_schema)},
)
def update_partner(actor: Actor, partner_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Disabling stops its keys (403) and pauses its webhooks; enabling resumes them."""
    partner = partners.update_partner(db.session, partner_id, body)
    _forget_verified_keys()
    return respond(partner_schema.dump(partner))


@route(bp, "DELETE", ITEM, summary="Delete a partner", role=Role.ADMIN, responses={204: ("Deleted", None)})
def delete_partner(actor: Actor, partner_id: uuid.UUID) -> Response:
    """Its keys are revoked and its subscriptions deleted; the delivery log stays."""
    commands.remove(db.session, partner_id)
    _forget_verified_keys()
    return Response(status=204)


@route(
    bp,
    "POST",
    ITEM + "/keys",
    summary="Create a key for a partner",
    role=Role.ADMIN,
    body=PartnerKeyCreateSchema(),
    responses={201: ("The key, shown this once", created_key_schema)},
)
def create_key(actor: Actor, partner_id: uuid.UUID, body: dict[str, Any]) -> Response:
    key, raw = partners.create_key(db.session, partner_id, body["name"])
    return respond({**key_schema.dump(key), "key": raw}, 201)


@route(
    bp,
    "GET",
    ITEM + "/keys",
    summary="List a partner's active keys (by prefix)",
    role=Role.ADMIN,
    responses={200: ("The keys", PartnerKeyListSchema())},
)
def list_keys(actor: Actor, partner_id: uuid.UUID) -> Response:
    return respond({"items": key_schema.dump(partners.keys_of(db.session, partner_id), many=True)})


@route(
    bp,
    "DELETE",
    ITEM + "/keys/<uuid:key_id>",
    summary="Revoke a partner's key",
    role=Role.ADMIN,
    responses={204: ("Revoked", None)},
)
def revoke_key(actor: Actor, partner_id: uuid.UUID, key_id: uuid.UUID) -> Response:
    """The key stops working at once in this process, within CMS_AUTH_CACHE_SECONDS in others."""
    key = partners.revoke_key(db.session, partner_id, key_id)
    current_app.extensions["cms_partner_auth_cache"].forget(key.key_hash)
    return Response(status=204)
