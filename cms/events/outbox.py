"""Record editorial events in the outbox, inside the caller's transaction.

The caller must hold the article's row lock (see ``services.articles.lock``):
the per-article sequence is read and bumped on that row, which is what makes
sequences gap-free and strictly ordered under concurrent publishes.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy.orm import Session

from cms.clock import utcnow
from cms.models import Article, OutboxEvent


class EventType(enum.StrEnum):
    PUBLISHED = "article.published"
    UPDATED = "article.updated"
    CORRECTED = "article.corrected"
    UNPUBLISHED = "article.unpublished"
    KILLED = "article.killed"


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
    return event
