"""Article authoring rules: create, revise, restore, read and list.

Every write appends an immutable version (``services.versions``) and updates
the ``articles`` head row under a row lock. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cms.clock import utcnow
from cms.models import Article, ArticleState, ArticleTag, ArticleVersion, Role
from cms.services import slugs, versions
from cms.services.actors import Actor
from cms.services.errors import Conflict, InvalidTransition, NotFound, VersionConflict
from cms.services.html import sanitize_body

# The editable fields, with the value a new article gets when one is omitted.
FIELD_DEFAULTS: dict[str, Any] = {
    "headline": None,
    "standfirst": None,
    "body": "",
    "byline": None,
    "dateline": None,
    "section": None,
    "tags": [],
    "language": "en",
    "slug": None,
    "lead_image": None,
    "credits": [],
    "editor_note": None,
}
EDITABLE_FIELDS = tuple(FIELD_DEFAULTS)
LEAD_IMAGE_FIELDS = ("url", "caption", "credit", "alt_text")


@dataclass(frozen=True, slots=True)
class ArticleWithVersion:
    article: Article
    version: ArticleVersion


def get(session: Session, article_id: uuid.UUID) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"No article with id {article_id}.")
    return article


def get_with_latest(session: Session, article_id: uuid.UUID) -> ArticleWithVersion:
    """The head row and its latest version in one primary-key join, whatever the history size."""
    row = session.execute(
        select(Article, ArticleVersion)
        .join(
            ArticleVersion,
            (ArticleVersion.article_id == Article.id) & (ArticleVersion.number == Article.current_version),
        )
        .where(Article.id == article_id)
    ).first()
    if row is None:
        raise NotFound(f"No article with id {article_id}.")
    return ArticleWithVersion(row[0], row[1])


def lock(session: Session, article_id: uuid.UUID) -> Article:
    """Load the head row ``FOR UPDATE``: serialises writers of one article.

    SQLite ignores ``FOR UPDATE``; there every transaction starts with
    ``BEGIN IMMEDIATE`` (see ``cms.db``), which serialises all writers.
    """
    stmt = (
        select(Article)
        .where(Article.id == article_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    article = session.scalars(stmt).one_or_none()
    if article is None:
        raise NotFound(f"No article with id {article_id}.")
    return article


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Apply domain rules to a full snapshot (sanitised body, de-duplicated lists)."""
    data = dict(data)
    data["body"] = sanitize_body(data.get("body") or "")
    data["tags"] = list(dict.fromkeys(t.strip() for t in data.get("tags") or [] if t.strip()))
    data["credits"] = list(dict.fromkeys(c.strip() for c in data.get("credits") or [] if c.strip()))
    if data.get("lead_image") is not None:
        data["lead_image"] = {k: data["lead_image"].get(k) for k in LEAD_IMAGE_FIELDS}
    return data


def _sync_head(article: Article, data: dict[str, Any]) -> None:
    """Copy the list-filterable fields of the latest version onto the head row."""
    article.headline = data["headline"]
    article.section = data["section"]
    article.language = data["language"]
    article.slug = data["slug"]
    wanted = data["tags"]
    if [t.tag for t in article.tags] != wanted:
        existing = {t.tag: t for t in article.tags}
        rows = []
        for position, tag in enumerate(wanted):
            row = existing.get(tag) or ArticleTag(tag=tag, position=position)
            row.position = position
            rows.append(row)
        article.tags = rows


def create(
    session: Session, actor: Actor, fields: dict[str, Any], *, message: str | None = None
) -> ArticleWithVersion:
    """New draft article with version 1. An explicit slug that is taken is a conflict."""
    now = utcnow()
    data = _normalise({**FIELD_DEFAULTS, **fields})
    explicit_slug = data.get("slug")
    if explicit_slug and slugs.taken(session, explicit_slug, None):
        raise Conflict(f"Slug '{explicit_slug}' is used by another article.", field="slug")
    base = explicit_slug or slugs.from_headline(data["headline"])

    for _attempt in range(5):
        data["slug"] = explicit_slug or slugs.first_free(session, base)
        article = Article(
            id=uuid.uuid4(),
            state=ArticleState.DRAFT,
            current_version=0,
            event_sequence=0,
            created_at=now,
            updated_at=now,
            tags=[],
        )
        _sync_head(article, data)
        try:
            # A savepoint, so losing a race for a generated slug only retries this insert.
            with session.begin_nested():
                session.add(article)
                version = versions.append(
                    session, article, data, actor=actor, message=message, prev_hash=None
                )
                session.flush()
        except IntegrityError:
            if explicit_slug:
                raise Conflict(f"Slug '{explicit_slug}' is used by another article.", field="slug") from None
            continue
        return ArticleWithVersion(article, version)
    raise Conflict("Could not allocate a unique slug; retry the request.", field="slug")


def _check_expected(article: Article, expected_versions: Collection[int]) -> None:
    if article.current_version not in expected_versions:
        seen = ", ".join(str(v) for v in sorted(expected_versions)) or "an unknown version"
        raise VersionConflict(
            f"You edited version {seen}, but the latest is {article.current_version}.",
            current_version=article.current_version,
            current_etag=f'"v{article.current_version}"',
        )


def _check_editable(article: Article, actor: Actor) -> None:
    if article.state == ArticleState.KILLED and not actor.can(Role.ADMIN):
        raise InvalidTransition("This article was killed; only an admin may revise it.", state=article.state)


def _write_version(
    session: Session,
    article: Article,
    actor: Actor,
    data: dict[str, Any],
    *,
    message: str | None,
) -> ArticleWithVersion:
    latest = versions.get(session, article.id, article.current_version)
    data = _normalise(data)
    if data["slug"] != article.slug and slugs.taken(session, data["slug"], article.id):
        raise Conflict(f"Slug '{data['slug']}' is used by another article.", field="slug")
    version = versions.append(
        session, article, data, actor=actor, message=message, prev_hash=latest.content_hash
    )
    _sync_head(article, data)
    return ArticleWithVersion(article, version)


def update(
    session: Session,
    actor: Actor,
    article_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    expected_versions: Collection[int],
    message: str | None = None,
) -> ArticleWithVersion:
    """Apply ``changes`` on top of the latest version as a new version.

    ``expected_versions`` holds the version the editor started from (its ETag);
    if another save landed since, nothing is written.
    """
    article = lock(session, article_id)
    _check_expected(article, expected_versions)
    _check_editable(article, actor)
    latest = versions.get(session, article.id, article.current_version)
    data = {**latest.data, **changes}
    if not data.get("slug"):
        data["slug"] = article.slug
    return _write_version(session, article, actor, data, message=message)


def restore(
    session: Session,
    actor: Actor,
    article_id: uuid.UUID,
    number: int,
    *,
    expected_versions: Collection[int],
    message: str | None = None,
) -> ArticleWithVersion:
    """A new version whose content equals version ``number``; history is kept."""
    article = lock(session, article_id)
    _check_expected(article, expected_versions)
    _check_editable(article, actor)
    source = versions.get(session, article.id, number)
    return _write_version(
        session, article, actor, dict(source.data), message=message or f"Restored version {number}"
    )


@dataclass(frozen=True, slots=True)
class ListFilters:
    state: str | None = None
    section: str | None = None
    tag: str | None = None
    updated_since: datetime | None = None


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
        stmt = stmt.where(Article.section == filters.section)
    if filters.tag:
        stmt = stmt.where(Article.id.in_(select(ArticleTag.article_id).where(ArticleTag.tag == filters.tag)))
    if filters.updated_since:
        stmt = stmt.where(Article.updated_at >= filters.updated_since)
    if after is not None:
        stmt = stmt.where(tuple_(Article.updated_at, Article.id) < tuple_(*after))
    stmt = (
        stmt.options(selectinload(Article.tags))
        .order_by(Article.updated_at.desc(), Article.id.desc())
        .limit(limit + 1)
    )
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = (rows[-1].updated_at, rows[-1].id) if more and rows else None
    return rows, cursor
