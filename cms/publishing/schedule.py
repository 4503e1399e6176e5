"""An article's schedule: a publish and/or an unpublish at set times.

Scheduling again replaces the article's schedule (its pending publish and unpublish;
an embargo's lift is the embargo's, not the editor's schedule). What comes due is
run by ``cms.publishing.scheduler`` through the same commands as a manual change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.orm import Session

from cms.authoring import articles
from cms.content.models import Article, ArticleState
from cms.platform.actors import Actor, Role
from cms.platform.clock import utcnow
from cms.platform.errors import InvalidTransition, NotFound, Unprocessable
from cms.platform.uow import command
from cms.publishing.models import EDITORIAL_ACTIONS, ActionKind, ActionStatus, ScheduledAction


@dataclass(frozen=True)
class Plan:
    """What an editor asks for; ``version``, ``correction_note`` and ``embargo_until``
    go with ``publish_at``."""

    publish_at: datetime | None = None
    unpublish_at: datetime | None = None
    version: int | None = None
    correction_note: str | None = None
    embargo_until: datetime | None = None


def _check(plan: Plan, now: datetime) -> None:
    """The plan's parts and times, before anything is read (422 for each mistake)."""
    if plan.publish_at is None and plan.unpublish_at is None:
        raise Unprocessable("Give publish_at, unpublish_at or both.", field="publish_at")
    if plan.publish_at is None:
        for name in ("version", "correction_note", "embargo_until"):
            if getattr(plan, name) is not None:
                raise Unprocessable(f"{name} goes with publish_at.", field=name)
    _check_times(plan, now)


def _check_times(plan: Plan, now: datetime) -> None:
    for name in ("publish_at", "unpublish_at"):
        when = getattr(plan, name)
        if when is not None and when <= now:
            raise Unprocessable(f"{name} must be in the future.", field=name)
    if plan.publish_at is not None and plan.unpublish_at is not None and plan.unpublish_at <= plan.publish_at:
        raise Unprocessable("unpublish_at must come after publish_at.", field="unpublish_at")
    if (
        plan.embargo_until is not None
        and plan.publish_at is not None
        and plan.embargo_until <= plan.publish_at
    ):
        raise Unprocessable("embargo_until must come after publish_at.", field="embargo_until")


def _check_article(actor: Actor, article: Article, plan: Plan) -> None:
    """What the article's state already refuses (the rest is judged when the action runs)."""
    if plan.version is not None and not 1 <= plan.version <= article.current_version:
        raise NotFound(f"Article {article.id} has no version {plan.version}.", version=plan.version)
    if plan.publish_at is not None and article.state == ArticleState.KILLED and not actor.can(Role.ADMIN):
        raise InvalidTransition("A killed article can only be republished by an admin.", state=article.state)


def _pending(article_id: uuid.UUID) -> Any:
    return (
        ScheduledAction.article_id == article_id,
        ScheduledAction.status == ActionStatus.PENDING.value,
        ScheduledAction.action.in_(EDITORIAL_ACTIONS),
    )


def _cancel_pending(session: Session, article_id: uuid.UUID, reason: str) -> int:
    result = session.execute(
        update(ScheduledAction)
        .where(*_pending(article_id))
        .values(status=ActionStatus.CANCELLED.value, reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


@command
def replace(session: Session, actor: Actor, article_id: uuid.UUID, plan: Plan) -> list[ScheduledAction]:
    """Schedule ``plan`` for the article, replacing its pending publish and unpublish."""
    now = utcnow()
    _check(plan, now)
    article = articles.lock(session, article_id)
    _check_article(actor, article, plan)
    _cancel_pending(session, article.id, "Replaced by a new schedule.")
    wanted = [(ActionKind.PUBLISH, plan.publish_at), (ActionKind.UNPUBLISH, plan.unpublish_at)]
    actions = [_action(actor, article.id, kind, when, plan, now) for kind, when in wanted if when is not None]
    session.add_all(actions)
    session.flush()
    return actions


def _action(
    actor: Actor, article_id: uuid.UUID, kind: ActionKind, when: datetime, plan: Plan, now: datetime
) -> ScheduledAction:
    publishing = kind == ActionKind.PUBLISH
    return ScheduledAction.pending(
        actor,
        article_id,
        kind,
        when,
        now,
        version=plan.version if publishing else None,
        correction_note=plan.correction_note if publishing else None,
        embargo_until=plan.embargo_until if publishing else None,
    )


@command
def cancel(session: Session, actor: Actor, article_id: uuid.UUID) -> int:
    """Cancel the article's pending publish and unpublish; how many there were."""
    article = articles.lock(session, article_id)
    return _cancel_pending(session, article.id, f"Cancelled by {actor.label}.")


def of_article(session: Session, article_id: uuid.UUID, *, history: int = 20) -> tuple[list[Any], list[Any]]:
    """The article's pending publish/unpublish (soonest first) and its latest finished
    actions, embargo lifts included (newest first)."""
    articles.get(session, article_id)
    pending = session.scalars(
        select(ScheduledAction).where(*_pending(article_id)).order_by(ScheduledAction.run_at)
    ).all()
    done = session.scalars(
        select(ScheduledAction)
        .where(
            ScheduledAction.article_id == article_id,
            ScheduledAction.status != ActionStatus.PENDING.value,
        )
        .order_by(ScheduledAction.updated_at.desc(), ScheduledAction.id)
        .limit(history)
    ).all()
    return list(pending), list(done)


@dataclass(frozen=True)
class ListQuery:
    limit: int
    statuses: tuple[str, ...] = (ActionStatus.PENDING.value, ActionStatus.SKIPPED.value)
    action: str | None = None
    after: tuple[datetime, uuid.UUID] | None = None


def listing() -> Select[Any]:
    """Actions with their article's headline."""
    return select(ScheduledAction, Article.headline).join(Article, Article.id == ScheduledAction.article_id)


def page(session: Session, query: ListQuery) -> tuple[list[Any], tuple[datetime, uuid.UUID] | None]:
    """What will happen (and what could not), by time, keyset-paginated on (run_at, id)."""
    stmt = listing().where(ScheduledAction.status.in_(query.statuses))
    if query.action:
        stmt = stmt.where(ScheduledAction.action == query.action)
    if query.after is not None:
        stmt = stmt.where(tuple_(ScheduledAction.run_at, ScheduledAction.id) > tuple_(*query.after))
    stmt = stmt.order_by(ScheduledAction.run_at, ScheduledAction.id).limit(query.limit + 1)
    rows = list(session.execute(stmt).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, ((rows[-1][0].run_at, rows[-1][0].id) if more and rows else None)
