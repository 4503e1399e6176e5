"""Scheduling (editors): an article's schedule, and what happens next across the newsroom."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response

from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.platform.http.routing import respond, route
from cms.publishing import schedule
from cms.publishing.time_schemas import (
    ArticleScheduleSchema,
    ScheduledActionSchema,
    ScheduledPageSchema,
    ScheduledQuerySchema,
    ScheduleSchema,
)

bp = Blueprint("scheduling", __name__)

schedule_schema = ArticleScheduleSchema()
page_schema = ScheduledPageSchema()
action_schema = ScheduledActionSchema()
ITEM = "/articles/<uuid:article_id>/schedule"


def _schedule(article_id: uuid.UUID) -> Response:
    pending, history = schedule.of_article(db.session, article_id)
    return respond(schedule_schema.dump({"article_id": article_id, "actions": pending, "history": history}))


@route(
    bp,
    "POST",
    ITEM,
    summary="Schedule a publish and/or an unpublish",
    role=Role.EDITOR,
    body=ScheduleSchema(),
    responses={200: ("The article's schedule", schedule_schema)},
    errors=(409,),
)
def set_schedule(actor: Actor, article_id: uuid.UUID, body: dict[str, Any]) -> Response:
    """Replaces the article's pending schedule. At `publish_at` the scheduler publishes (the
    same command and event as `POST /publish`, acting for you); at `unpublish_at` it
    withdraws. Times must be in the future, an unpublish after the publish (else 422).
    An action that is no longer legal when it comes due is recorded as skipped, with why."""
    plan = schedule.Plan(**{name: body.get(name) for name in schedule.Plan.__dataclass_fields__})
    schedule.replace(db.session, actor, article_id, plan)
    return _schedule(article_id)


@route(
    bp,
    "GET",
    ITEM,
    summary="Show an article's schedule",
    role=Role.READER,
    responses={200: ("The article's schedule", schedule_schema)},
)
def get_schedule(actor: Actor, article_id: uuid.UUID) -> Response:
    return _schedule(article_id)


@route(
    bp,
    "DELETE",
    ITEM,
    summary="Cancel an article's schedule",
    role=Role.EDITOR,
    responses={204: ("Cancelled (or nothing was scheduled)", None)},
)
def cancel_schedule(actor: Actor, article_id: uuid.UUID) -> Response:
    """Cancels the pending publish and unpublish (an embargo's lift is the embargo's)."""
    schedule.cancel(db.session, actor, article_id)
    return Response(status=204)


@route(
    bp,
    "GET",
    "/scheduled",
    summary="What happens next: scheduled actions by time",
    role=Role.READER,
    query=ScheduledQuerySchema(),
    responses={200: ("Scheduled actions, soonest first", page_schema)},
)
def list_scheduled(actor: Actor, query: dict[str, Any]) -> Response:
    """Publishes, unpublishes and embargo lifts with their time, article, and who scheduled
    them. By default what is pending and what was skipped (with the reason)."""
    after = pagination.decode(query["cursor"], datetime, uuid.UUID) if "cursor" in query else None
    wanted = schedule.ListQuery(limit=query["limit"], action=query.get("action"), after=after)
    if "status" in query:
        wanted = schedule.ListQuery(
            limit=wanted.limit, statuses=(query["status"],), action=wanted.action, after=after
        )
    rows, next_after = schedule.page(db.session, wanted)
    items = [{**action_schema.dump(action), "headline": headline} for action, headline in rows]
    cursor = pagination.encode(*next_after) if next_after else None
    return respond({"items": items, "next_cursor": cursor})
