"""Articles and their immutable versions.

The ``articles`` row is the mutable head: editorial state, pointers to the
latest and published versions, and a few fields copied from the latest version
so lists can filter without reading snapshots. ``article_versions`` rows are
append-only snapshots chained by hash.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cms.platform.models import Base, JSONType


class ArticleState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    KILLED = "killed"


def filter_key(value: str | None) -> str | None:
    """Sections and tags match case-insensitively (Unicode too: "Русия" is "русия"),
    so each is stored a second time, case-folded in Python: SQLite's lower() and a
    PostgreSQL database with the C locale only fold ASCII."""
    return value.casefold() if value is not None else None


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (Index("ix_articles_updated_at_id", "updated_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    headline: Mapped[str] = mapped_column(String(300))
    section: Mapped[str | None] = mapped_column(String(100))
    # filter_key(section): lists filter on it, so "politics" finds "Politics".
    section_key: Mapped[str | None] = mapped_column(String(100), index=True)
    language: Mapped[str] = mapped_column(String(35))
    current_version: Mapped[int]
    published_version: Mapped[int | None]
    # Last outbox sequence number handed out for this article; incremented
    # under the row lock so per-article sequences have no gaps.
    event_sequence: Mapped[int] = mapped_column(default=0)
    kill_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_published_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    # The embargo in force on the live publication (cms.publishing.embargo), if any.
    embargo_until: Mapped[datetime | None]

    # Loaded only when needed (lists use selectinload; reads take tags from the version).
    tags: Mapped[list[ArticleTag]] = relationship(
        cascade="all, delete-orphan", lazy="select", order_by="ArticleTag.position"
    )


class ArticleTag(Base):
    """Tags of the latest version, one row each, so lists can filter by tag."""

    __tablename__ = "article_tags"

    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    tag_key: Mapped[str] = mapped_column(String(100), index=True)  # filter_key(tag)
    position: Mapped[int]


class ArticleVersion(Base):
    """One immutable save. Never updated or deleted (guarded in the database too)."""

    __tablename__ = "article_versions"

    article_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("articles.id"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_key_id: Mapped[uuid.UUID | None]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))


class ImmutableVersionError(Exception):
    """Raised when code tries to change or delete a stored version."""


@event.listens_for(ArticleVersion, "before_update")
@event.listens_for(ArticleVersion, "before_delete")
def _refuse_version_changes(_mapper: Any, _connection: Any, target: ArticleVersion) -> None:
    # The database refuses too (triggers); failing here names the culprit early.
    raise ImmutableVersionError(
        f"article version {target.article_id}/{target.number} is immutable; write a new version"
    )
