"""``GET /api/v1``: where everything is, for a person or a client starting from the root."""

from __future__ import annotations

from flask import Blueprint, Response
from marshmallow import Schema, fields

from cms.platform.http.routing import respond, route

bp = Blueprint("index", __name__)

LINKS = {
    "docs": "/api/v1/docs",
    "openapi": "/api/v1/openapi.json",
    "articles": "/api/v1/articles",
    "subscriptions": "/api/v1/subscriptions",
    "deliveries": "/api/v1/deliveries",
    "events": "/api/v1/events",
    "api_keys": "/api/v1/api-keys",
    "health": "/healthz",
    "ready": "/readyz",
    "metrics": "/metrics",
}


class IndexSchema(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    authentication = fields.String(required=True)
    links = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Documentation, the OpenAPI document, each resource and the probes."},
    )


INDEX = IndexSchema().dump(
    {
        "name": "Newsroom CMS API",
        "version": "v1",
        "authentication": "Authorization: Bearer <API key>",
        "links": LINKS,
    }
)


@route(
    bp,
    "GET",
    "",
    summary="API index: links to the docs, the spec and health",
    role=None,
    responses={200: ("Links", IndexSchema())},
)
def api_index(actor: None) -> Response:
    return respond(INDEX)


@bp.get("/")
def api_index_slash() -> Response:
    return respond(INDEX)
