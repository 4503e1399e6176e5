"""Read model for articles: plain values, fetched with Core queries.

Reads are the hot path (partners and editors poll), so they skip ORM
hydration: one primary-key join returns the head row and the latest version,
whatever the size of the history.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, literal_column, select, true
from sqlalchemy.orm import Session, scoped_session, selectinload

from cms.content import representation
from cms.content.models import Article, ArticleTag, ArticleVersion, filter_key
from cms.platform import pagination
from cms.platform.errors import NotFound

A = Article.__table__
V = ArticleVersion.__table__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def article_etag(version: int, updated_at: datetime) -> str:
    """The article's entity tag: its version, and its last change (a publish or a kill
    changes the representation without a new version). ``If-Match`` compares only
    the version part (:func:`etag_version`): a state change does not conflict with an edit."""
    if updated_at.tzinfo is None:  # SQLite hands back naive UTC
        updated_at = updated_at.replace(tzinfo=UTC)
    return f'"v{version}.{(updated_at - _EPOCH) // _MICROSECOND:x}"'


@dataclass(frozen=True, slots=True)
class ArticleView:
    """An article as the API shows it: head fields plus the latest version's content."""

    id: uuid.UUID
    state: str
    version: int
    published_version: int | None
    kill_reason: str | None
    created_at: datetime
    updated_at: datetime
    first_published_at: datetime | None
    published_at: datetime | None
    embargo_until: datetime | None
    updated_by: str
    # The version snapshot; ``read`` leaves it as JSON text, so it is decoded
    # only when a body has to be rendered (not on cache hits).
    content: dict[str, Any] | str

    def content_dict(self) -> dict[str, Any]:
        """The snapshot, with null for a nullable field it predates (as the fast
        renderer shows it)."""
        content = json.loads(self.content) if isinstance(self.content, str) else self.content
        return {**_ABSENT, **content}

    @property
    def etag(self) -> str:
        return article_etag(self.version, self.updated_at)

    def head(self) -> dict[str, Any]:
        """Every field but the version snapshot."""
        return {name: getattr(self, name) for name in _HEAD_NAMES}

    def as_dict(self) -> dict[str, Any]:
        return {**self.content_dict(), **self.head()}


_HEAD_NAMES = tuple(name for name in ArticleView.__slots__ if name != "content")
_ABSENT: dict[str, Any] = {f.name: None for f in representation.CONTENT if f.nullable}


def view_of(article: Article, version: ArticleVersion) -> ArticleView:
    return ArticleView(
        id=article.id,
        state=article.state,
        version=article.current_version,
        published_version=article.published_version,
        kill_reason=article.kill_reason,
        created_at=article.created_at,
        updated_at=article.updated_at,
        first_published_at=article.first_published_at,
        published_at=article.published_at,
        embargo_until=article.embargo_until,
        updated_by=version.created_by,
        content=version.data,
    )


_HEAD = (
    A.c.id,
    A.c.state,
    A.c.current_version.label("version"),
    A.c.published_version,
    A.c.kill_reason,
    A.c.created_at,
    A.c.updated_at,
    A.c.first_published_at,
    A.c.published_at,
    A.c.embargo_until,
)
# The snapshot comes back as JSON text: it is decoded only when a body has to be
# rendered, not on render-cache hits (jsonb's text form is what its binary form holds).
_LATEST = select(*_HEAD, V.c.created_by.label("updated_by"), cast(V.c.data, Text).label("content")).join(
    V, (V.c.article_id == A.c.id) & (V.c.number == A.c.current_version)
)
_LATEST_BY_ID = _LATEST.where(A.c.id == bindparam("article_id"))

# On PostgreSQL the version is fetched in a LATERAL subquery whose LIMIT keeps
# the planner from flattening it: the inner lookup is then always an index
# probe on (article_id, number). A plain join lets the planner match on
# article_id alone and filter by number, touching every version of the article.
_VERSION_OF_HEAD = (
    select(V.c.created_by, V.c.data)
    .where(V.c.article_id == A.c.id, V.c.number == A.c.current_version)
    .limit(literal_column("1"))
    .lateral("latest")
)
_LATEST_BY_ID_PG = (
    select(
        *_HEAD,
        _VERSION_OF_HEAD.c.created_by.label("updated_by"),
        cast(_VERSION_OF_HEAD.c.data, Text).label("content"),
    )
    .select_from(A.join(_VERSION_OF_HEAD, true()))
    .where(A.c.id == bindparam("article_id"))
)


def read(connection: Session | scoped_session[Session] | Connection, article_id: uuid.UUID) -> ArticleView:
    """The latest state of one article: a single primary-key join.

    The statement is built once, so SQLAlchemy compiles it once (its compiled
    cache) and sends the same text every time; psycopg then prepares it on the
    server (``prepare_threshold``) and later reads only bind and execute it.
    It runs on the Core connection under the session: no ORM hydration.
    """
    if not isinstance(connection, Connection):  # a Session or scoped_session
        connection = connection.connection()
    stmt = _LATEST_BY_ID_PG if connection.dialect.name == "postgresql" else _LATEST_BY_ID
    row = connection.execute(stmt, {"article_id": article_id}).first()
    if row is None:
        raise NotFound(f"No article with id {article_id}.")
    return ArticleView(*row)


@dataclass(frozen=True, slots=True)
class ListFilters:
    state: str | None = None
    section: str | None = None
    tag: str | None = None
    updated_since: datetime | None = None
    q: str | None = None  # words the headline contains, in any case


def page(
    session: Session,
    filters: ListFilters,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Article], tuple[datetime, uuid.UUID] | None]:
    """Most recently updated first, keyset-paginated on ``(updated_at, id)``."""
    stmt = select(Article)
    if filters.state:
        stmt = stmt.where(Article.state == filters.state)
    if filters.section:
        stmt = stmt.where(Article.section_key == filter_key(filters.section))
    if filters.tag:
        tagged = select(ArticleTag.article_id).where(ArticleTag.tag_key == filter_key(filters.tag))
        stmt = stmt.where(Article.id.in_(tagged))
    if filters.updated_since:
        stmt = stmt.where(Article.updated_at >= filters.updated_since)
    for word in (filters.q or "").split()[:8]:
        stmt = stmt.where(Article.headline.icontains(word, autoescape=True))
    stmt = stmt.options(selectinload(Article.tags))
    return pagination.newest_first(session, stmt, Article.updated_at, Article.id, limit=limit, after=after)
