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

from sqlalchemy import ForeignKey, Index, String, Text, Uuid, bindparam, delete, insert, text, update
from sqlalchemy.orm import Mapped, Session, load_only, mapped_column

from cms.content import search
from cms.content.models import Article, ArticleState, filter_key
from cms.content.visibility import language_key
from cms.platform import uow
from cms.platform.models import Base, JSONType, UTCDateTime

LIVE = text("state = 'published'")
# What a publication writes to its row (besides the key, created_at and the search document).
_COLUMNS = (
    "state", "version", "sequence", "event_id", "slug", "section_key", "language", "tag_keys", "kill_reason",
    "first_published_at", "published_at", "changed_at", "updated_by", "embargo_until",
)  # fmt: skip
_TIMES = ("created_at", "first_published_at", "published_at", "changed_at", "embargo_until")


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
    # Published under embargo until then: only partners that receive embargoed
    # content see it until the embargo is lifted (cms.publishing.embargo).
    embargo_until: Mapped[datetime | None]


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
    session: Session,
    article: Article,
    content: dict[str, Any],
    *,
    event: Any,
    updated_by: str,
    embargo_until: datetime | None = None,
) -> None:
    """``article`` went live (or live with a newer version) with ``content``, under
    embargo until ``embargo_until`` if given."""
    values = _publication(article, content, event, updated_by)
    if session.get_bind().dialect.name == "postgresql":
        _pg_publish(session, article, values, content, embargo_until)
        return
    row = session.get(PublishedArticle, article.id)
    if row is None:
        row = PublishedArticle(article_id=article.id, created_at=article.created_at)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.embargo_until = embargo_until
    session.flush()
    session.execute(delete(PublishedTag).where(PublishedTag.article_id == article.id))
    session.add_all(PublishedTag(article_id=article.id, tag_key=k) for k in values["tag_keys"])
    search.index(session, row, content)
    uow.after_commit(session, "published")  # this process's content cache (cms.delivery)


# PostgreSQL: the row, its search document and its tags in one statement (one round trip
# inside the publish transaction, where every millisecond delays the commit and so the
# first webhook). The tags a publication drops go; the ones it keeps stay.
_PG_PUBLISH = text(
    f"""
WITH projected AS (
    INSERT INTO published_articles AS p (article_id, created_at, {", ".join(_COLUMNS)}, search)
    VALUES (:article_id, :created_at, {", ".join(":" + c for c in _COLUMNS)}, {search.PG_VECTOR})
    ON CONFLICT (article_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)},
        search = EXCLUDED.search
    RETURNING p.article_id
), untagged AS (
    DELETE FROM published_tags WHERE article_id = :article_id AND tag_key <> ALL(:tags)
)
INSERT INTO published_tags (article_id, tag_key)
SELECT (SELECT article_id FROM projected), k FROM unnest(CAST(:tags AS text[])) AS k
ON CONFLICT DO NOTHING
"""
).bindparams(bindparam("tag_keys", type_=JSONType), *(bindparam(c, type_=UTCDateTime()) for c in _TIMES))


def _pg_publish(
    session: Session,
    article: Article,
    values: dict[str, Any],
    content: dict[str, Any],
    embargo_until: datetime | None,
) -> None:
    known = session.identity_map.get(session.identity_key(PublishedArticle, (article.id,)))
    if known is not None:
        session.expunge(known)  # the statement below is the truth from now on
    params = {
        **values,
        **search.pg_params(content),
        "article_id": article.id,
        "created_at": article.created_at,
        "embargo_until": embargo_until,
        "tags": values["tag_keys"],
    }
    session.execute(_PG_PUBLISH, params)
    uow.after_commit(session, "published")  # this process's content cache (cms.delivery)


def _publication(article: Any, content: dict[str, Any], event: Any, updated_by: str) -> dict[str, Any]:
    """The projection's columns for a publication (the columns of migration 0011)."""
    assert article.first_published_at is not None and article.published_at is not None
    return {
        "state": ArticleState.PUBLISHED.value,
        "version": event.version,
        "sequence": event.sequence,
        "event_id": event.id,
        "slug": content["slug"],
        "section_key": filter_key(content.get("section")),
        "language": language_key(content.get("language")),
        "tag_keys": list(dict.fromkeys(k for k in (filter_key(t) for t in content.get("tags") or ()) if k)),
        "kill_reason": None,
        "first_published_at": article.first_published_at,
        "published_at": article.published_at,
        "changed_at": event.occurred_at,
        "updated_by": updated_by,
    }


def record_withdrawal(session: Session, article: Article, *, event: Any) -> None:
    """``article`` was unpublished or killed: partners get 404 or 410 from now on (a
    publication whose embargo never lifted stays hidden: 404 to partners it was kept from)."""
    row = session.get(PublishedArticle, article.id)
    if row is None:  # never published: nothing partners could have seen
        return
    row.state = article.state
    row.sequence = event.sequence
    row.event_id = event.id
    row.kill_reason = article.kill_reason
    row.changed_at = event.occurred_at
    uow.after_commit(session, "published")


def record_embargo(session: Session, article: Article, *, event: Any, embargo_until: datetime | None) -> None:
    """The embargo of the live article moved (``embargo_until``) or was lifted (None:
    from now on every partner sees it, published as of the lift)."""
    row = session.get(PublishedArticle, article.id)
    assert row is not None
    row.embargo_until = embargo_until
    row.sequence = event.sequence
    row.event_id = event.id
    row.changed_at = event.occurred_at
    assert article.published_at is not None
    row.published_at = article.published_at
    row.first_published_at = article.first_published_at or article.published_at
    uow.after_commit(session, "published")


def slug_of(session: Session, article: Article) -> str:
    """The slug partners know the article by (its published version's)."""
    row = session.get(PublishedArticle, article.id)
    return row.slug if row is not None else article.slug


def record_existing(connection: Any, article_id: uuid.UUID) -> None:
    """Project an article published before this table existed (migration 0011)."""
    from cms.content.models import ArticleVersion

    session = Session(bind=connection)
    # Only the columns of that revision (later ones do not exist yet at 0011), and Core
    # statements below, not the ORM's (which would write every column the model has).
    article = session.get(
        Article, article_id, options=[load_only(*(getattr(Article, c) for c in _ARTICLE_0011))]
    )
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
    values = {
        "article_id": article.id,
        "created_at": article.created_at,
        **_publication(article, version.data, publication, version.created_by),
    }
    if article.state != ArticleState.PUBLISHED:
        values.update(state=article.state, kill_reason=article.kill_reason)
    session.flush()
    _insert_existing(session, values, version.data)
    session.expunge_all()


def _insert_existing(session: Session, values: dict[str, Any], content: dict[str, Any]) -> None:
    """The projection row, its tags and its search entry, with Core statements."""
    session.execute(insert(PublishedArticle.__table__).values(values))
    tags = [{"article_id": values["article_id"], "tag_key": k} for k in values["tag_keys"]]
    if tags:
        session.execute(insert(PublishedTag.__table__), tags)
    indexed = SimpleNamespace(article_id=values["article_id"], search_rowid=None)
    search.index(session, indexed, content)
    if indexed.search_rowid is not None:
        session.execute(
            update(PublishedArticle.__table__)
            .where(PublishedArticle.__table__.c.article_id == values["article_id"])
            .values(search_rowid=indexed.search_rowid)
        )


_ARTICLE_0011 = (
    "id", "state", "published_version", "kill_reason", "created_at", "updated_at", "first_published_at",
    "published_at",
)  # fmt: skip
