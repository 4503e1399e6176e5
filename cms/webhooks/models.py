"""Webhook tables: subscriptions, deliveries (one row per event and subscription), attempts.

Subscriptions say where partners want events, in which format, and how to sign them.

The database, not the broker, is the truth about what was sent: a delivery
is ``pending`` (waiting for ``next_attempt_at``), ``in_flight`` (claimed by a
worker until ``lease_expires_at``), or final (``succeeded``, ``failed``,
``cancelled``).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from cms.platform.models import Base, JSONType


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)


def status_is(column: Any, *statuses: str) -> ColumnElement[bool]:
    """``status = 'x'`` (or ``IN ('x', 'y')``) with the statuses written as SQL
    literals, not bind parameters. The partial indexes below (``WHERE status =
    'pending'`` ...) only match a literal: once psycopg prepares a statement, the
    server's generic plan cannot use them for a parameter, and scans the history."""
    literals = [literal_column(f"'{DeliveryStatus(s).value}'") for s in statuses]
    if len(literals) == 1:
        return column == literals[0]
    return column.in_(literals)


# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        # Ordering checks: open deliveries per (subscription, article). Partial
        # indexes hold only open rows, so they stay small whatever the history,
        # and a delivery leaving them costs no new entry.
        Index(
            "ix_deliveries_open_order",
            "subscription_id",
            "article_id",
            "sequence",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
            sqlite_where=text("status IN ('pending', 'in_flight')"),
        ),
        Index(
            "ix_deliveries_open_article",
            "article_id",
            "subscription_id",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
            sqlite_where=text("status IN ('pending', 'in_flight')"),
        ),
        # In-flight counts per subscription (the max_in_flight cap).
        Index(
            "ix_deliveries_in_flight",
            "subscription_id",
            postgresql_where=text("status = 'in_flight'"),
            sqlite_where=text("status = 'in_flight'"),
        ),
        # What the claim and sweep look for, on both databases (migration 0007): SQLite
        # cannot use ix_deliveries_open for "status = 'pending'" (IN does not imply it).
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_deliveries_leases",
            "lease_expires_at",
            postgresql_where=text("status = 'in_flight'"),
            sqlite_where=text("status = 'in_flight'"),
        ),
        # The delivery log, newest first: all, or by status (migration 0008).
        Index("ix_deliveries_created_id", "created_at", "id"),
        Index("ix_deliveries_status_created_id", "status", "created_at", "id"),
        Index("ix_deliveries_subscription_created", "subscription_id", "created_at"),
        Index("ix_deliveries_article_id", "article_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    # Copied from the event: ordering is per (subscription, article), by sequence.
    article_id: Mapped[uuid.UUID | None]
    sequence: Mapped[int | None]
    event_type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    # Failed attempts in the current cycle (a redelivery starts a new cycle).
    retry_index: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Under an embargo (cms.webhooks.embargo): "early" sent before the lift to a
    # subscription that takes embargoed content; "held" waiting for the lift (never
    # claimable); "released" held and let go at the lift. None: no embargo.
    embargo: Mapped[str | None] = mapped_column(String(8))


class DeliveryAttempt(Base):
    """What happened on one HTTP attempt (the delivery log; pruned after CMS_DELIVERY_LOG_DAYS
    once the delivery is finished, see cms.webhooks.retention)."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id"))
    number: Mapped[int]
    attempted_at: Mapped[datetime]
    duration_ms: Mapped[float | None]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    # succeeded | retrying | failed | gone (410) | lease-expired
    outcome: Mapped[str] = mapped_column(String(16))


class EventPayload(Base):
    """An event rendered once per format; every subscriber gets these exact bytes."""

    __tablename__ = "event_payloads"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class DeliveryCount(Base):
    """How many deliveries are in each status, kept by database triggers (migration
    0008) in shards that concurrent writers fill independently: sum ``n`` by status."""

    __tablename__ = "delivery_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class PayloadFormat(enum.StrEnum):
    JSON = "json"
    NINJS = "ninjs"
    NINJS3 = "ninjs3"


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The partner that manages it (self-service); None: managed by the newsroom's admins.
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    # Patterns: exact types, "*" or "article.*".
    event_types: Mapped[list[str]] = mapped_column(JSONType)
    # Content filters; an empty list matches everything.
    sections: Mapped[list[str]] = mapped_column(JSONType)
    tags: Mapped[list[str]] = mapped_column(JSONType)
    languages: Mapped[list[str]] = mapped_column(JSONType)
    format: Mapped[str] = mapped_column(String(16))
    headers: Mapped[dict[str, str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_in_flight: Mapped[int]
    # "hold" (default): events under embargo are sent when it lifts; "send": at once,
    # marked (only for partners that receive embargoed content).
    embargo: Mapped[str] = mapped_column(String(8), default="hold", server_default="hold")
    # Signing secrets ("whsec_" + base64) are needed in clear to sign; they are
    # only ever returned by create and rotate-secret, never listed or logged.
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Health: the first failure since the last success (auto-disable clock).
    failing_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    # Of the latest failing batch: its last error, and the earliest retry it set
    # (cleared by a success); what the console shows of a failing subscription.
    last_error: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[datetime | None]

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets to sign with: the current one, and the previous during its grace period."""
        out = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > now:
            out.append(self.previous_secret)
        return out

    def summary(self) -> dict[str, Any]:
        return {"id": str(self.id), "url": self.url}


class SubscriptionChanges(Base):
    """One row whose ``version`` database triggers raise on every change to what a
    subscription sends (migration 0006), so workers know when to reload them without
    trusting any process's clock."""

    __tablename__ = "subscription_changes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
