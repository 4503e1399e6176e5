"""Embargoes: a publication visible only to trusted partners until a time.

An embargo starts with a publication that carries ``embargo_until`` (immediate or
scheduled) and ends exactly once: lifted at its time by the scheduler (a
``lift_embargo`` scheduled action), lifted early by an editor, or ended by a
withdrawal (unpublish, kill). Every event recorded while it is in force carries
``embargo_until``; webhooks and the change feed keep those events from partners
without ``receives_embargoed`` (``cms.webhooks.embargo``, ``cms.delivery``), and
the published projection keeps the article from them, until the lift, which
records ``article.embargo_lifted``: from then on everyone sees the story.

Every command here locks the article row first (then the schedule's rows), the
order the scheduler takes them in too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.authoring import articles
from cms.content import published
from cms.content.models import Article, ArticleState
from cms.events.models import OutboxEvent
from cms.events.outbox import EventType, record
from cms.platform.actors import Actor
from cms.platform.clock import utcnow
from cms.platform.errors import InvalidTransition, Unprocessable
from cms.platform.uow import command
from cms.publishing.models import ActionKind, ActionStatus, Embargo, EmbargoEnd, ScheduledAction


def current(session: Session, article_id: uuid.UUID) -> Embargo | None:
    """The embargo in force on the article, if any."""
    return session.scalars(
        select(Embargo).where(Embargo.article_id == article_id, Embargo.ended_at.is_(None))
    ).first()


def check_until(until: datetime, now: datetime, field: str = "embargo_until") -> None:
    """An embargo must end in the future (422 otherwise)."""
    if until <= now:
        raise Unprocessable(f"{field} must be in the future.", field=field)


def start(session: Session, actor: Actor, article: Article, event: OutboxEvent, until: datetime) -> Embargo:
    """A publication under embargo (called by ``publishing.publish``, which checked it)."""
    now = utcnow()
    assert article.published_version is not None
    embargo = Embargo(
        id=uuid.uuid4(),
        article_id=article.id,
        until=until,
        original_until=until,
        version=article.published_version,
        event_id=event.id,
        created_at=now,
        created_by=actor.label,
    )
    session.add(embargo)
    article.embargo_until = until
    session.add(ScheduledAction.pending(actor, article.id, ActionKind.LIFT_EMBARGO, until, now))
    return embargo


def end(session: Session, actor: Actor, embargo: Embargo, how: EmbargoEnd, event: OutboxEvent) -> None:
    """The embargo is over (lifted, or the article withdrawn): its lift is no longer due."""
    now = utcnow()
    article = session.get(Article, embargo.article_id)
    assert article is not None
    article.embargo_until = None
    embargo.ended_at = now
    embargo.ended_by = actor.label
    embargo.outcome = how.value
    embargo.end_event_id = event.id
    reason = "The embargo was lifted early." if how == EmbargoEnd.LIFTED_EARLY else None
    if how == EmbargoEnd.WITHDRAWN:
        reason = f"The article was withdrawn under embargo ({event.type})."
    if reason is not None:
        _lift_actions(session, embargo.article_id, status=ActionStatus.CANCELLED.value, reason=reason)


def _lift_actions(session: Session, article_id: uuid.UUID, **values: Any) -> None:
    session.execute(
        update(ScheduledAction)
        .where(
            ScheduledAction.article_id == article_id,
            ScheduledAction.action == ActionKind.LIFT_EMBARGO.value,
            ScheduledAction.status == ActionStatus.PENDING.value,
        )
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


def _in_force(session: Session, article: Article) -> Embargo:
    embargo = current(session, article.id) if article.state == ArticleState.PUBLISHED else None
    if embargo is None:
        raise InvalidTransition("The article is not under embargo.", state=article.state)
    return embargo


def lift(session: Session, actor: Actor, article_id: uuid.UUID, *, early: bool) -> OutboxEvent:
    """End the embargo: the story becomes public. ``early``: an editor's decision
    (any time); otherwise the scheduler's, which only lifts an embargo that is due."""
    article = articles.lock(session, article_id)
    embargo = _in_force(session, article)
    now = utcnow()
    if not early and embargo.until > now:
        raise InvalidTransition(
            f"The embargo lifts at {embargo.until.isoformat()}, not yet.", state="embargoed"
        )
    assert article.published_version is not None
    event = record(
        session,
        article,
        EventType.EMBARGO_LIFTED,
        version=article.published_version,
        actor=actor.label,
        data={"embargo": {"until": embargo.until.isoformat(), "early": early}},
    )
    # Public from now on: partners kept from it see it published as of the lift.
    if article.first_published_at == article.published_at:
        article.first_published_at = now
    article.published_at = now
    article.updated_at = now
    end(session, actor, embargo, EmbargoEnd.LIFTED_EARLY if early else EmbargoEnd.LIFTED, event)
    published.record_embargo(session, article, event=event, embargo_until=None)
    return event


@command
def lift_early(session: Session, actor: Actor, article_id: uuid.UUID) -> OutboxEvent:
    """An editor lifts the embargo now (``DELETE /articles/{id}/embargo``)."""
    return lift(session, actor, article_id, early=True)


@command
def change(session: Session, actor: Actor, article_id: uuid.UUID, until: datetime) -> OutboxEvent:
    """Move the embargo (extend it, or bring it forward) to a time still to come."""
    article = articles.lock(session, article_id)
    embargo = _in_force(session, article)
    now = utcnow()
    check_until(until, now)
    if embargo.until <= now:
        raise InvalidTransition(
            f"The embargo ended at {embargo.until.isoformat()}; it is being lifted.", state="embargoed"
        )
    if until == embargo.until:
        raise InvalidTransition(f"The embargo already lifts at {until.isoformat()}.", state="embargoed")
    previous = embargo.until
    embargo.until = until
    article.embargo_until = until
    _lift_actions(session, article.id, run_at=until)
    assert article.published_version is not None
    event = record(
        session,
        article,
        EventType.EMBARGO_CHANGED,
        version=article.published_version,
        actor=actor.label,
        data={"previous_embargo_until": previous.isoformat()},
        embargo_until=until,
    )
    article.updated_at = now
    published.record_embargo(session, article, event=event, embargo_until=until)
    return event


def history(session: Session, article_id: uuid.UUID) -> list[Embargo]:
    """Every embargo of the article, newest first."""
    articles.get(session, article_id)
    stmt = select(Embargo).where(Embargo.article_id == article_id).order_by(Embargo.created_at.desc())
    return list(session.scalars(stmt))


def in_force(session: Session, limit: int = 100) -> list[Any]:
    """Embargoes in force, the next to lift first: (embargo, headline) rows."""
    stmt = (
        select(Embargo, Article.headline)
        .join(Article, Article.id == Embargo.article_id)
        .where(Embargo.ended_at.is_(None))
        .order_by(Embargo.until, Embargo.id)
        .limit(limit)
    )
    return list(session.execute(stmt).all())
