"""Editorial transitions: publish, unpublish, kill. Each records one outbox event."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from cms.content.reads import view_of
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.publishing import commands as publishing
from cms.publishing.schemas import (
    KillSchema,
    PublishSchema,
    TransitionResultSchema,
    UnpublishSchema,
)

bp = Blueprint("publishing", __name__)

result_schema = TransitionResultSchema()
RESPONSES = {200: ("The article after the change and the event it recorded", result_schema)}


def _result(done: publishing.Transition) -> Response:
    view = view_of(done.article, done.latest)
    return respond(result_schema.dump({"article": view.as_dict(), "event": done.event}))


@route(
    bp,
    "POST",
    "/articles/<uuid:article_id>/publish",
    summary="Publish a version",
    role=Role.EDITOR,
    body=PublishSchema(),
    responses=RESPONSES,
    errors=(409,),
)
def publish(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Default: the latest version. A newer version of a live article is an update, or a
    correction with `correction_note`. Records article.published / updated / corrected.
    With `embargo_until` the article is published under embargo (see `/articles/{id}/embargo`)."""
    return _result(
        publishing.publish(
            db.session,
            actor,
            article_id,
            version=body.get("version"),
            correction_note=body.get("correction_note"),
            embargo_until=body.get("embargo_until"),
        )
    )


@route(
    bp,
    "POST",
    "/articles/<uuid:article_id>/unpublish",
    summary="Withdraw a published article",
    role=Role.EDITOR,
    body=UnpublishSchema(),
    responses=RESPONSES,
    errors=(409,),
)
def unpublish(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Records article.unpublished; the article can be published again."""
    return _result(publishing.unpublish(db.session, actor, article_id, reason=body.get("reason")))


@route(
    bp,
    "POST",
    "/articles/<uuid:article_id>/kill",
    summary="Kill an article (legal/ethical)",
    role=Role.EDITOR,
    body=KillSchema(),
    responses=RESPONSES,
    errors=(409,),
)
def kill(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Requires a reason. Records article.killed; only an admin can revise or republish after."""
    return _result(publishing.kill(db.session, actor, article_id, reason=body["reason"]))
