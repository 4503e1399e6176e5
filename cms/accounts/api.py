"""API key administration (admin role). Keys are shown once, at creation."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app

from cms.accounts import keys as api_keys
from cms.accounts.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyPageSchema,
    ApiKeySchema,
)
from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.fields import IdPageQuerySchema
from cms.platform.http.routing import respond, route

bp = Blueprint("api_keys", __name__)

key_schema = ApiKeySchema()
created_schema = ApiKeyCreatedSchema()
page_schema = ApiKeyPageSchema()


@route(
    bp,
    "POST",
    "/api-keys",
    summary="Create an API key",
    role=Role.ADMIN,
    body=ApiKeyCreateSchema(),
    responses={201: ("The key, shown this once", created_schema)},
)
def create_key(actor: Actor, body: dict[str, Any]) -> Response:
    key, raw = api_keys.create(db.session, name=body["name"], role=Role(body["role"]))
    return respond({**key_schema.dump(key), "key": raw}, 201)


@route(
    bp,
    "GET",
    "/api-keys",
    summary="List active API keys (by prefix)",
    role=Role.ADMIN,
    query=IdPageQuerySchema(),
    responses={200: ("A page of keys", page_schema)},
)
def list_keys(actor: Actor, query: dict[str, Any]) -> Response:
    after = pagination.decode(query["cursor"], uuid.UUID)[0] if "cursor" in query else None
    rows, next_after = api_keys.page(db.session, limit=query["limit"], after=after)
    cursor = pagination.encode(next_after) if next_after else None
    return respond(page_schema.dump({"items": rows, "next_cursor": cursor}))


@route(
    bp,
    "DELETE",
    "/api-keys/<uuid:key_id>",
    summary="Revoke an API key",
    role=Role.ADMIN,
    responses={204: ("Revoked", None)},
    errors=(409,),
)
def revoke_key(actor: Actor, key_id: uuid.UUID) -> Response:
    """The key stops working at once; the last active admin key cannot be revoked."""
    key = api_keys.revoke(db.session, actor, key_id)
    current_app.extensions["cms_auth_cache"].forget(key.key_hash)
    return Response(status=204)
