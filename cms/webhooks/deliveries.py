"""The delivery log (admin): deliveries with their attempts, and redelivery."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.platform import pagination, uow
from cms.platform.clock import utcnow
from cms.platform.errors import Conflict, NotFound
from cms.platform.uow import command
from cms.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Subscription


@dataclass(frozen=True)
class DeliveryFilters:
    subscription_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    article_id: uuid.UUID | None = None
    status: str | None = None
    partner_id: uuid.UUID | None = None  # only this partner's subscriptions (self-service)


def _of_partner(partner_id: uuid.UUID) -> Any:
    return select(Subscription.id).where(Subscription.partner_id == partner_id)


def page(
    session: Session,
    filters: DeliveryFilters,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Delivery], tuple[datetime, uuid.UUID] | None]:
    """Newest first, keyset-paginated on ``(created_at, id)``."""
    stmt = select(Delivery)
    if filters.subscription_id:
        stmt = stmt.where(Delivery.subscription_id == filters.subscription_id)
    if filters.event_id:
        stmt = stmt.where(Delivery.event_id == filters.event_id)
    if filters.article_id:
        stmt = stmt.where(Delivery.article_id == filters.article_id)
    if filters.status:
        stmt = stmt.where(Delivery.status == filters.status)
    if filters.partner_id:
        stmt = stmt.where(Delivery.subscription_id.in_(_of_partner(filters.partner_id)))
    return pagination.newest_first(session, stmt, Delivery.created_at, Delivery.id, limit=limit, after=after)


def attempts_of(session: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[DeliveryAttempt]]:
    out: dict[uuid.UUID, list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        stmt = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.id)
        )
        for attempt in session.scalars(stmt):
            out[attempt.delivery_id].append(attempt)
    return out


def get(session: Session, delivery_id: uuid.UUID, partner_id: uuid.UUID | None = None) -> Delivery:
    """The delivery; with ``partner_id``, only one of that partner's (else 404, as if
    it did not exist: a partner learns nothing of another's)."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is not None and partner_id is not None:
        owner = session.scalar(
            select(Subscription.partner_id).where(Subscription.id == delivery.subscription_id)
        )
        delivery = delivery if owner == partner_id else None
    if delivery is None:
        raise NotFound(f"No delivery with id {delivery_id}.")
    return delivery


@command
def redeliver(session: Session, delivery_id: uuid.UUID, partner_id: uuid.UUID | None = None) -> Delivery:
    """Send a delivery again, whatever became of it, with a fresh retry schedule."""
    delivery = get(session, delivery_id, partner_id)
    if delivery.status == DeliveryStatus.IN_FLIGHT:
        raise Conflict(
            "The delivery is being sent right now; wait for its outcome.", delivery_status=delivery.status
        )
    sub = session.get(Subscription, delivery.subscription_id)
    if sub is None or sub.deleted_at is not None:
        raise Conflict("The subscription was deleted.", delivery_status=delivery.status)
    if not requeue(session, ids=[delivery_id]):  # it went in flight meanwhile
        raise Conflict(
            "The delivery is being sent right now; wait for its outcome.", delivery_status="in_flight"
        )
    session.refresh(delivery)
    return delivery


@command
def requeue(
    session: Session,
    *,
    ids: Collection[uuid.UUID] | None = None,
    failed_only: bool = False,
    subscription_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> int:
    """Queue deliveries to be sent again (same webhook-id, fresh retry schedule); how many.

    The one rule for every redelivery (API, recover, CLI): a delivery in flight is
    never touched (its worker owns it until its outcome or lease expiry), nor is one
    whose subscription was deleted. ``since`` bounds ``created_at`` from below."""
    live = select(Subscription.id).where(Subscription.deleted_at.is_(None))
    stmt = update(Delivery).where(
        Delivery.status != DeliveryStatus.IN_FLIGHT.value, Delivery.subscription_id.in_(live)
    )
    if ids is not None:
        stmt = stmt.where(Delivery.id.in_(list(ids)))
    if failed_only:
        stmt = stmt.where(Delivery.status == DeliveryStatus.FAILED.value)
    if subscription_id is not None:
        stmt = stmt.where(Delivery.subscription_id == subscription_id)
    if since is not None:
        stmt = stmt.where(Delivery.created_at >= since)
    now = utcnow()
    result = session.execute(
        stmt.values(
            status=DeliveryStatus.PENDING.value, retry_index=0, next_attempt_at=now, updated_at=now
        ).execution_options(synchronize_session=False)
    )
    count = result.rowcount or 0  # type: ignore[attr-defined]
    if count:
        uow.after_commit(session, "sweep")
    return count
