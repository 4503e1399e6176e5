"""Figures for monitoring, read from the database (the truth about delivery)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.events.models import OutboxEvent
from cms.platform.clock import utcnow
from cms.webhooks.models import OPEN_STATUSES, Delivery, DeliveryStatus, Subscription, status_is


def outbox_backlog(session: Session, now: datetime) -> tuple[float, int]:
    """Seconds the oldest unrelayed event has waited, and how many wait (an index range)."""
    oldest, unrelayed = session.execute(
        select(func.min(OutboxEvent.occurred_at), func.count()).where(OutboxEvent.relayed_at.is_(None))
    ).one()
    return (max(0.0, (now - oldest).total_seconds()) if oldest else 0.0), unrelayed


def delivery_facts(session: Session) -> dict[str, Any]:
    lag, unrelayed = outbox_backlog(session, utcnow())
    open_counts = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(status_is(Delivery.status, *OPEN_STATUSES))
            .group_by(Delivery.status)
        ).all()
    )
    retries = session.scalar(
        select(func.count()).where(status_is(Delivery.status, DeliveryStatus.PENDING), Delivery.attempts > 0)
    )
    failing = session.execute(
        select(Subscription.id, Subscription.consecutive_failures).where(
            Subscription.deleted_at.is_(None), Subscription.consecutive_failures > 0
        )
    ).all()
    return {
        "outbox_lag": lag,
        "unrelayed": unrelayed,
        "open": {status: open_counts.get(status, 0) for status in OPEN_STATUSES},
        "pending_retries": retries or 0,
        "failing": [(sid, n) for sid, n in failing],
    }
