"""Embargoes (editors): who received a story early, moving an embargo, lifting it early."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from cms.content.reads import read
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.publishing import embargo
from cms.publishing.schemas import TransitionResultSchema
from cms.publishing.time_schemas import EmbargoAuditSchema, EmbargoChangeSchema
from cms.webhooks import embargo as webhook_embargo

bp = Blueprint("embargo", __name__)

audit_schema = EmbargoAuditSchema()
result_schema = TransitionResultSchema()
ITEM = "/articles/<uuid:article_id>/embargo"
CHANGED = {200: ("The article and the event partners receive", result_schema)}


def _result(article_id: uuid.UUID, event: Any) -> Response:
    return respond(result_schema.dump({"article": read(db.session, article_id).as_dict(), "event": event}))


@route(
    bp,
    "GET",
    ITEM,
    summary="An article's embargoes, and who received it before the lift",
    role=Role.READER,
    responses={200: ("The embargo in force, past ones, and early deliveries", audit_schema)},
)
def get_embargo(actor: Actor, article_id: uuid.UUID) -> Response:
    """Every webhook of the article sent under embargo, to which partner and subscription,
    and when it was received."""
    periods = embargo.history(db.session, article_id)
    current = next((p for p in periods if p.ended_at is None), None)
    return respond(
        audit_schema.dump(
            {
                "article_id": article_id,
                "embargo_until": current.until if current is not None else None,
                "embargoes": periods,
                "received_early": webhook_embargo.early_recipients(db.session, article_id),
            }
        )
    )


@route(
    bp,
    "PUT",
    ITEM,
    summary="Move an embargo (extend it, or bring it forward)",
    role=Role.EDITOR,
    body=EmbargoChangeSchema(),
    responses=CHANGED,
    errors=(409,),
)
def change_embargo(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """The new time must be in the future (422). Records `article.embargo_changed`, which
    partners that received the story early get at once; 409 when there is no embargo."""
    event = embargo.change(db.session, actor, article_id, body["embargo_until"])
    return _result(article_id, event)


@route(
    bp,
    "DELETE",
    ITEM,
    summary="Lift an embargo now",
    role=Role.EDITOR,
    responses=CHANGED,
    errors=(409,),
)
def lift_embargo(actor: Actor, article_id: uuid.UUID) -> Response:
    """Records `article.embargo_lifted`: the story is public from now on. Held webhooks
    go out, and the article appears in the content API and the change feed."""
    event = embargo.lift_early(db.session, actor, article_id)
    return _result(article_id, event)
