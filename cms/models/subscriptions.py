"""Webhook subscriptions: where partners want events, in which format, and how to sign them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cms.models.base import Base, JSONType


class PayloadFormat(enum.StrEnum):
    JSON = "json"
    NINJS = "ninjs"


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
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
