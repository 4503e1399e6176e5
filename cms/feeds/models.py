"""Feed tokens (a partner's private feeds are read with a token in the URL: feed
readers cannot send headers; stored as a SHA-256 hash, shown once, revocable), and the
built-in WebSub hub's subscribers and what they were last told."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cms.platform.models import Base


class FeedToken(Base):
    __tablename__ = "feed_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WebSubSubscription(Base):
    """A subscriber of the built-in WebSub hub: ``pending`` (subscribe/unsubscribe asked,
    intent not verified yet) or active until ``expires_at`` (its lease)."""

    __tablename__ = "websub_subscriptions"

    topic_url: Mapped[str] = mapped_column(Text, primary_key=True)
    callback_url: Mapped[str] = mapped_column(Text, primary_key=True)
    secret: Mapped[str | None] = mapped_column(String(200))
    lease_seconds: Mapped[int]
    pending: Mapped[str | None] = mapped_column(String(16))  # subscribe | unsubscribe | None
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # None: never verified


class WebSubTopic(Base):
    """What subscribers of a topic were last told: the feed's ETag then."""

    __tablename__ = "websub_topics"

    topic_url: Mapped[str] = mapped_column(Text, primary_key=True)
    etag: Mapped[str] = mapped_column(String(64))
    notified_at: Mapped[datetime]


class WebSubClock(Base):
    """One row: the change-feed position the notifier has looked at (nothing to do while
    the feed has not moved)."""

    __tablename__ = "websub_clock"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger)
