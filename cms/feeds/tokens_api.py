"""Feed tokens: admins manage any partner's (``/api/v1/partners/{id}/feed-tokens``), a
partner its own (``/partner/v1/feed-tokens``). The token is shown once, in its feed URLs."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app

from cms.feeds import tokens
from cms.feeds.api import base_url
from cms.feeds.schemas import FeedTokenCreatedSchema, FeedTokenCreateSchema, FeedTokenListSchema
from cms.platform.actors import Actor, PartnerPrincipal, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route

admin = Blueprint("feed_tokens", __name__)
partner = Blueprint("partner_feed_tokens", __name__)

created_schema = FeedTokenCreatedSchema()
list_schema = FeedTokenListSchema()
CREATED = {201: ("The token, shown this once, and the feed URLs it opens", created_schema)}
LISTED = {200: ("Active tokens (by prefix)", list_schema)}
REVOKED = {204: ("Revoked: its feed URLs answer 404", None)}


def _create(partner_id: uuid.UUID, body: dict[str, Any]) -> Response:
    token, raw = tokens.create(db.session, partner_id, body["name"])
    base = f"{base_url()}/feeds/v1/p/{raw}"
    feeds = {fmt: f"{base}/{fmt}" for fmt in ("rss", "atom", "json")}
    return respond({**created_schema.dump(token), "token": raw, "feeds": feeds}, 201)


def _revoke(partner_id: uuid.UUID, token_id: uuid.UUID) -> Response:
    tokens.revoke(db.session, partner_id, token_id)
    current_app.extensions["cms_feed_tokens"].clear()  # at once in this process
    return Response(status=204)


@route(admin, "POST", "/partners/<uuid:partner_id>/feed-tokens", summary="Create a feed token",
       role=Role.ADMIN, body=FeedTokenCreateSchema(), responses=CREATED)  # fmt: skip
def create_token(actor: Actor, partner_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """For the partner's private feeds (feed readers cannot send headers: the token is in the URL)."""
    return _create(partner_id, body)


@route(admin, "GET", "/partners/<uuid:partner_id>/feed-tokens", summary="List feed tokens",
       role=Role.ADMIN, responses=LISTED)  # fmt: skip
def list_tokens(actor: Actor, partner_id: uuid.UUID) -> Response:
    return respond(list_schema.dump({"items": tokens.of_partner(db.session, partner_id)}))


@route(admin, "DELETE", "/partners/<uuid:partner_id>/feed-tokens/<uuid:token_id>",
       summary="Revoke a feed token", role=Role.ADMIN, responses=REVOKED)  # fmt: skip
def revoke_token(actor: Actor, partner_id: uuid.UUID, token_id: uuid.UUID) -> Response:
    return _revoke(partner_id, token_id)


@route(partner, "POST", "/feed-tokens", summary="Create a feed token", role=None, partner=True,
       body=FeedTokenCreateSchema(), responses=CREATED)  # fmt: skip
def create_own_token(actor: PartnerPrincipal, body: dict[str, Any]) -> Response:
    """For your private feeds, shown once: it is in the feed URLs."""
    return _create(actor.partner_id, body)


@route(partner, "GET", "/feed-tokens", summary="List its feed tokens", role=None, partner=True,
       responses=LISTED)  # fmt: skip
def list_own_tokens(actor: PartnerPrincipal) -> Response:
    return respond(list_schema.dump({"items": tokens.of_partner(db.session, actor.partner_id)}))


@route(partner, "DELETE", "/feed-tokens/<uuid:token_id>", summary="Revoke a feed token", role=None,
       partner=True, responses=REVOKED)  # fmt: skip
def revoke_own_token(actor: PartnerPrincipal, token_id: uuid.UUID) -> Response:
    return _revoke(actor.partner_id, token_id)
