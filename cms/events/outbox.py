"""Record editorial events in the outbox, inside the caller's transaction.

The caller must hold the article's row lock (see ``services.articles.lock``):
the per-article sequence is read and bumped on that row, which is what makes
sequences gap-free and strictly ordered under concurrent publishes.
"""

from __future__ import annotations

import enum
import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.orm import Session

from cms.content.models import Article, ArticleVersion
from cms.events import feed
from cms.events.models import OutboxEvent
from cms.platform import uow
from cms.platform.clock import utcnow


class EventType(enum.StrEnum):
    PUBLISHED = "article.published"
    UPDATED = "article.updated"
    CORRECTED = "article.corrected"
    UNPUBLISHED = "article.unpublished"
    KILLED = "article.killed"
    # An embargo ended before its time, or at it (the story is public now), or moved.
    EMBARGO_LIFTED = "article.embargo_lifted"
    EMBARGO_CHANGED = "article.embargo_changed"
    # System events: not about an article, and not matched by "*".
    PING = "webhook.ping"
    SUBSCRIPTION_DISABLED = "subscription.disabled"


# Migration 0003 makes every outbox INSERT notify this channel (PostgreSQL).
NOTIFY_CHANNEL = "cms_outbox"

ARTICLE_EVENTS = tuple(t.value for t in EventType if t.value.startswith("article."))


def record(
    session: Session,
    article: Article,
    type_: EventType,
    *,
    version: int,
    actor: str,
    data: dict[str, Any] | None = None,
    embargo_until: datetime | None = None,
) -> OutboxEvent:
    """Add one event for ``article`` with the next sequence number; never commits.
    ``embargo_until``: the embargo in force (the event goes only to partners trusted
    with embargoed content until it lifts)."""
    article.event_sequence += 1
    event = _add(
        session,
        type_,
        actor,
        data,
        article_id=article.id,
        version=version,
        sequence=article.event_sequence,
        embargo_until=embargo_until,
    )
    feed.enlist(session, event)  # its change-feed position, given at commit
    return event


def record_system(
    session: Session,
    type_: EventType,
    *,
    subscription_id: uuid.UUID,
    actor: str,
    data: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Add an event about a subscription (a ping, an automatic disable); never commits."""
    return _add(session, type_, actor, data, subscription_id=subscription_id)


def _add(
    session: Session, type_: EventType, actor: str, data: dict[str, Any] | None, **about: Any
) -> OutboxEvent:
    event = OutboxEvent(
        id=uuid.uuid4(), type=str(type_), occurred_at=utcnow(), actor=actor, data=data or {}, **about
    )
    session.add(event)
    uow.after_commit(session, "relay")  # wake the relay once this is durable
    return event


def claim_unrelayed(session: Session, limit: int) -> list[Any]:
    """Lock up to ``limit`` events that are ready to be relayed, oldest first.

    Several relays can run at once: on PostgreSQL rows another relay holds are
    skipped (``FOR UPDATE SKIP LOCKED``). An event waits while an earlier event
    of the same article is unrelayed (possibly locked by another relay), so
    deliveries are always created in sequence order. Each row carries what a
    payload needs: the article's creation dates and the event's version.
    """
    return list(session.execute(_unrelayed_statement(), {"relay_limit": limit}))


def with_content() -> Select[Any]:
    """Outbox rows with what a payload is made of (``cms.content.formats.facts.facts_of``):
    the article's creation dates and the content of the event's version."""
    E = OutboxEvent.__table__
    A = Article.__table__
    V = ArticleVersion.__table__
    return select(
        E.c.id,
        E.c.type,
        E.c.article_id,
        E.c.subscription_id,
        E.c.version,
        E.c.sequence,
        E.c.occurred_at,
        E.c.data,
        E.c.feed_position,
        E.c.embargo_until,
        A.c.created_at.label("article_created_at"),
        A.c.first_published_at,
        V.c.data.label("content"),
        V.c.created_by.label("version_created_by"),
    ).select_from(
        E.outerjoin(A, A.c.id == E.c.article_id).outerjoin(
            V, (V.c.article_id == E.c.article_id) & (V.c.number == E.c.version)
        )
    )


@functools.cache
def _unrelayed_statement() -> Select[Any]:
    """Built once: building it costs more than running it when one event waits."""
    E = OutboxEvent.__table__
    earlier = E.alias("earlier")
    waiting = exists().where(
        earlier.c.article_id == E.c.article_id,
        earlier.c.sequence < E.c.sequence,
        earlier.c.relayed_at.is_(None),
    )
    return (
        with_content()
        .where(E.c.relayed_at.is_(None), ~waiting)
        .order_by(E.c.occurred_at, E.c.id)
        .limit(bindparam("relay_limit"))
        .with_for_update(skip_locked=True, of=E)
    )


def mark_relayed(session: Session, event_ids: list[uuid.UUID], now: datetime) -> None:
    session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).values(relayed_at=now))
