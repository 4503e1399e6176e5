"""The transactional outbox: one row per editorial event.

Rows are written in the same transaction as the state change they describe,
so an event exists if and only if the change was committed. The relay (the
webhook issue) reads rows whose ``relayed_at`` is empty
and fans each out into deliveries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cms.platform.models import Base, JSONType


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("article_id", "sequence"),
        Index("ix_outbox_events_unrelayed", "relayed_at", "occurred_at"),
        Index("ix_outbox_events_occurred_at_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    article_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("articles.id"))
    # The one subscription a system event (ping, subscription.disabled) concerns.
    subscription_id: Mapped[uuid.UUID | None]
    version: Mapped[int | None]
    sequence: Mapped[int | None]
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    relayed_at: Mapped[datetime | None]
    # Article events: the position in the change feed, given at commit
    # (cms.events.feed), so positions follow commit order and none is skipped.
    feed_position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # The embargo in force when the event happened: until it is lifted, only
    # partners that receive embargoed content get the event (webhooks and feed).
    embargo_until: Mapped[datetime | None]


class FeedClock(Base):
    """One row: the last change-feed position handed out. Taking the next ones locks
    it until the transaction commits, so positions are given in commit order."""

    __tablename__ = "feed_clock"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger)
