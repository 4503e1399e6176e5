"""Record editorial events in the outbox, inside the caller's transaction.

The caller must hold the article's row lock (see ``services.articles.lock``):
the per-article sequence is read and bumped on that row, which is what makes
sequences gap-free and strictly ordered under concurrent publishes.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from cms.clock import utcnow
from cms.models import Article, OutboxEvent


class EventType(enum.StrEnum):
    PUBLISHED = "article.published"
    UPDATED = "article.updated"
    CORRECTED = "article.corrected"
    UNPUBLISHED = "article.unpublished"
    KILLED = "article.killed"
    # System events: not about an article, and not matched by "*".
    PING = "webhook.ping"
    SUBSCRIPTION_DISABLED = "subscription.disabled"


ARTICLE_EVENTS = tuple(t.value for t in EventType if t.value.startswith("article."))


def record(
    session: Session,
    article: Article,
    type_: EventType,
    *,
    version: int,
    actor: str,
    data: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Add one event for ``article`` with the next sequence number; never commits."""
    article.event_sequence += 1
    event = OutboxEvent(
        id=uuid.uuid4(),
        type=str(type_),
        article_id=article.id,
        version=version,
        sequence=article.event_sequence,
        occurred_at=utcnow(),
        actor=actor,
        data=data or {},
    )
    session.add(event)
    # Tells the request that committed it to nudge the relay (see cms.api.http.commit).
    session.info["outbox_recorded"] = True
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
    event = OutboxEvent(
        id=uuid.uuid4(),
        type=str(type_),
        article_id=None,
        subscription_id=subscription_id,
        version=None,
        sequence=None,
        occurred_at=utcnow(),
        actor=actor,
        data=data or {},
    )
    session.add(event)
    session.info["outbox_recorded"] = True
    return event


def claim_unrelayed(session: Session, limit: int) -> list[OutboxEvent]:
    """Lock up to ``limit`` events that are ready to be relayed, oldest first.

    Several relays can run at once: on PostgreSQL rows another relay holds are
    skipped (``FOR UPDATE SKIP LOCKED``). An event waits while an earlier event
    of the same article is unrelayed (possibly locked by another relay), so
    deliveries are always created in sequence order.
    """
    earlier = aliased(OutboxEvent)
    waiting = exists().where(
        earlier.article_id == OutboxEvent.article_id,
        earlier.sequence < OutboxEvent.sequence,
        earlier.relayed_at.is_(None),
    )
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.relayed_at.is_(None), ~waiting)
        .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxEvent)
    )
    return list(session.scalars(stmt))


def mark_relayed(session: Session, event_ids: list[uuid.UUID], now: datetime) -> None:
    session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).values(relayed_at=now))
