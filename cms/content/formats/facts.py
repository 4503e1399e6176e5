"""What a webhook body is made of: the facts of one event, captured when it is relayed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ARTICLE_URN = "urn:newsroom-cms:article:"
PUBLISHING_EVENTS = ("article.published", "article.updated", "article.corrected")
# Events that carry the article as published, as the publishing ones do.
EMBARGO_EVENTS = ("article.embargo_lifted", "article.embargo_changed")
CONTENT_EVENTS = PUBLISHING_EVENTS + EMBARGO_EVENTS
WITHDRAWAL_EVENTS = ("article.unpublished", "article.killed")


@dataclass(frozen=True)
class EventFacts:
    """Everything a payload is made of."""

    id: uuid.UUID
    type: str
    occurred_at: datetime
    sequence: int | None = None
    version: int | None = None
    article_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The article as of ``version``: content fields plus id, state, created_at,
    # first_published_at, published_at, updated_by. None for system events.
    article: dict[str, Any] | None = None
    # Published under embargo until then: formats mark the item (``embargo_until``,
    # ninjs ``embargoed`` / ``embargoedUntil``).
    embargo_until: datetime | None = None


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Standard Webhooks examples use."""
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def facts_of(row: Any) -> EventFacts:
    """An outbox row (joined with its article and version) as payload facts."""
    article = None
    if row.article_id is not None and row.content is not None:
        article = {
            **row.content,
            "id": row.article_id,
            "state": "published",
            "created_at": row.article_created_at,
            "updated_at": row.occurred_at,
            "first_published_at": row.first_published_at or row.occurred_at,
            "published_at": row.occurred_at,
            "updated_by": row.version_created_by,
        }
    return EventFacts(
        id=row.id,
        type=row.type,
        occurred_at=row.occurred_at,
        sequence=row.sequence,
        version=row.version,
        article_id=row.article_id,
        subscription_id=row.subscription_id,
        data=dict(row.data or {}),
        article=article,
        embargo_until=getattr(row, "embargo_until", None),
    )
