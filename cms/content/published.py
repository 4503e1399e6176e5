"""What partners can see: one row per article that has ever been published, describing
its *published* version (never a later draft), kept by the publishing commands in
the same transaction as the transition.

The content API, the change feed's initial sync and search read this table, so a
partner's question is answered by keys here (state, published version, section,
tags, language), and the snapshot is read only for what is actually shown.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, Uuid, bindparam, delete, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from cms.content import search
from cms.content.models import Article, ArticleState, filter_key
from cms.content.visibility import language_key
from cms.platform import uow
from cms.platform.models import Base, JSONType, UTCDateTime

LIVE = text("state = 'published'")


class PublishedArticle(Base):
    __tablename__ = "published_articles"
    __table_args__ = (
        # Newest first, live only: the content API's list and its cursor.
        Index(
            "ix_published_articles_live",
            "published_at",
            "article_id",
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        ),
    )

    article_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("articles.id"), primary_key=True)
    # published | unpublished (404 to partners) | killed (410, with the reason)
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int]
    # The article's latest event: it names the representation (ETag) and its time.
    sequence: Mapped[int]
    event_id: Mapped[uuid.UUID]
    slug: Mapped[str] = mapped_column(String(200), index=True)
    section_key: Mapped[str | None] = mapped_column(String(100), index=True)
    language: Mapped[str] = mapped_column(String(35))
    tag_keys: Mapped[list[str]] = mapped_column(JSONType)
    kill_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    first_published_at: Mapped[datetime]
    published_at: Mapped[datetime]
    # When what partners see last changed (Last-Modified).
    changed_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))
    search_rowid: Mapped[int | None]  # SQLite: the row in the FTS5 index


def head(row: Any) -> dict[str, Any]:
    """The head fields a partner representation shows (``EventFacts.article``), from a
    row of this table."""
    return {
        "id": row.article_id,
        "state": "published",
        "created_at": row.created_at,
        "updated_at": row.published_at,
        "first_published_at": row.first_published_at,
        "published_at": row.published_at,
        "updated_by": row.updated_by,
    }


class PublishedTag(Base):
    __tablename__ = "published_tags"

    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("published_articles.article_id", ondelete="CASCADE"), primary_key=True
    )
    tag_key: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


def record_publication(
    session: Session, article: Article, content: dict[str, Any], *, event: Any, updated_by: str
) -> PublishedArticle:
    """``article`` went live (or live with a newer version) with ``content``."""
    row = session.get(PublishedArticle, article.id)
    if row is None:
        row = PublishedArticle(article_id=article.id, created_at=article.created_at)
        session.add(row)
    tag_keys = list(dict.fromkeys(k for k in (filter_key(t) for t in content.get("tags") or ()) if k))
    row.state = ArticleState.PUBLISHED.value
    row.version = event.version
    row.sequence = event.sequence
    row.event_id = event.id
    row.slug = content["slug"]
    row.section_key = filter_key(content.get("section"))
    row.language = language_key(content.get("language"))
    row.tag_keys = tag_keys
    row.kill_reason = None
    assert article.first_published_at is not None and article.published_at is not None
    row.first_published_at = article.first_published_at
    row.published_at = article.published_at
    row.changed_at = event.occurred_at
    row.updated_by = updated_by
    session.flush()
    session.execute(delete(PublishedTag).where(PublishedTag.article_id == article.id))
    session.add_all(PublishedTag(article_id=article.id, tag_key=k) for k in tag_keys)
    search.index(session, row, content)
    uow.after_commit(session, "published")  # this process's content cache (cms.delivery)
    return row


def record_withdrawal(session: Session, article: Article, *, event: Any) -> None:
    """``article`` was unpublished or killed: partners get 404 or 410 from now on."""
    row = session.get(PublishedArticle, article.id)
    if row is None:  # never published: nothing partners could have seen
        return
    row.state = article.state
    row.sequence = event.sequence
    row.event_id = event.id
    row.kill_reason = article.kill_reason
    row.changed_at = event.occurred_at
    uow.after_commit(session, "published")


def slug_of(session: Session, article: Article) -> str:
    """The slug partners know the article by (its published version's)."""
    row = session.get(PublishedArticle, article.id)
    return row.slug if row is not None else article.slug


def record_existing(connection: Any, article_id: uuid.UUID) -> None:
    """Project an article published before this table existed (migration 0011)."""
    from cms.content.models import ArticleVersion

    session = Session(bind=connection)
    article = session.get(Article, article_id)
    assert article is not None and article.published_version is not None
    version = session.get(ArticleVersion, (article_id, article.published_version))
    last = session.execute(
        text(
            "SELECT id, sequence, occurred_at FROM outbox_events WHERE article_id = :a"
            " ORDER BY sequence DESC LIMIT 1"
        )
        .bindparams(bindparam("a", type_=Uuid()))
        .columns(id=Uuid(), occurred_at=UTCDateTime()),
        {"a": article_id},
    ).first()
    if version is None or last is None:
        return
    article.published_at = article.published_at or last.occurred_at
    article.first_published_at = article.first_published_at or article.published_at
    publication = SimpleNamespace(
        id=last.id, version=article.published_version, sequence=last.sequence, occurred_at=last.occurred_at
    )
    record_publication(session, article, version.data, event=publication, updated_by=version.created_by)
    if article.state != ArticleState.PUBLISHED:
        record_withdrawal(session, article, event=publication)
    session.flush()
    session.expunge_all()
