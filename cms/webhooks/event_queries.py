"""The event log: outbox events with what became of their deliveries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.events.models import OutboxEvent
from cms.platform import pagination
from cms.webhooks.models import Delivery


@dataclass(frozen=True)
class EventFilters:
    type: str | None = None
    article_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None


def page(
    session: Session,
    filters: EventFilters,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[OutboxEvent], tuple[datetime, uuid.UUID] | None]:
    """Newest first, keyset-paginated on ``(occurred_at, id)``."""
    stmt = select(OutboxEvent)
    if filters.type:
        stmt = stmt.where(OutboxEvent.type == filters.type)
    if filters.article_id:
        stmt = stmt.where(OutboxEvent.article_id == filters.article_id)
    if filters.subscription_id:
        stmt = stmt.where(OutboxEvent.subscription_id == filters.subscription_id)
    return pagination.newest_first(
        session, stmt, OutboxEvent.occurred_at, OutboxEvent.id, limit=limit, after=after
    )


def delivery_counts(session: Session, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """``{event_id: {status: n}}`` for the given events."""
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    if event_ids:
        stmt = (
            select(Delivery.event_id, Delivery.status, func.count())
            .where(Delivery.event_id.in_(event_ids))
            .group_by(Delivery.event_id, Delivery.status)
        )
        for event_id, status, n in session.execute(stmt):
            out[event_id][status] = n
    return out
