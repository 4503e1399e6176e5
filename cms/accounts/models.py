"""API keys (authoring) and partners with their own keys: keys are stored as a SHA-256
hash, listed by prefix, revoked not deleted."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from cms.content.visibility import ContentFilter
from cms.platform.actors import Role
from cms.platform.models import Base, JSONType

__all__ = ["ApiKey", "Partner", "PartnerKey", "Role"]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    # Keys carry 256 random bits, so a fast hash is enough (no password stretching).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Partner(Base):
    """A partner site or syndication partner: its own keys, subscriptions and view of
    the content (``sections``/``tags``/``languages``: empty means all published content)."""

    __tablename__ = "partners"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sections: Mapped[list[str]] = mapped_column(JSONType)
    tags: Mapped[list[str]] = mapped_column(JSONType)
    languages: Mapped[list[str]] = mapped_column(JSONType)
    max_subscriptions: Mapped[int]
    rate_limit_per_minute: Mapped[int]
    # Trusted with stories before their embargo lifts (content API, feed, "send" webhooks).
    receives_embargoed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Signs the partner's change-feed cursors (HMAC): a cursor of another partner,
    # or one made up, does not verify. Never shown.
    cursor_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.enabled and self.deleted_at is None

    def content_filter(self) -> ContentFilter:
        return ContentFilter.of(self.sections, self.tags, self.languages)

    def cursor_key(self) -> bytes:
        return bytes.fromhex(self.cursor_secret)


class PartnerKey(Base):
    """A partner's API key: like ``ApiKey`` (hashed, listed by prefix, revoked softly),
    but a separate table and prefix, so it can never pass for an authoring key."""

    __tablename__ = "partner_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
