"""Partner use cases that span capabilities: removing a partner with its subscriptions,
and a partner creating a subscription within its limit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.accounts import partners
from cms.accounts.models import Partner
from cms.platform.errors import TooMany
from cms.platform.uow import command
from cms.webhooks import subscriptions
from cms.webhooks.models import Subscription


@command
def remove(session: Session, partner_id: uuid.UUID) -> Partner:
    """Delete a partner: its keys are revoked and its subscriptions deleted (their
    pending deliveries cancelled); the delivery log stays."""
    partner = partners.delete(session, partner_id)
    live = select(Subscription.id).where(
        Subscription.partner_id == partner_id, Subscription.deleted_at.is_(None)
    )
    for subscription_id in session.scalars(live).all():
        subscriptions.delete(session, subscription_id)
    return partner


@command
def subscribe(
    session: Session, partner_id: uuid.UUID, fields: dict[str, Any], policy: subscriptions.UrlPolicy
) -> tuple[Subscription, str]:
    """A subscription of the partner's own; 409 once it has its maximum. The partner
    row is locked, so two concurrent requests cannot both take the last place."""
    partner = session.get(Partner, partner_id, with_for_update=True)
    assert partner is not None
    held = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.partner_id == partner_id, Subscription.deleted_at.is_(None))
    )
    if (held or 0) >= partner.max_subscriptions:
        raise TooMany(
            f"This partner may keep {partner.max_subscriptions} subscriptions; delete one first.",
            max_subscriptions=partner.max_subscriptions,
        )
    return subscriptions.create(session, {**fields, "partner_id": partner_id}, policy)
