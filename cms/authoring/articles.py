"""Article authoring rules: create, revise and restore (reads live in ``article_reads``).

Every write appends an immutable version (``services.versions``) and updates
the ``articles`` head row under a row lock. Nothing here commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cms.content import representation, slugs, versions
from cms.content.html import sanitize_body
from cms.content.models import Article, ArticleState, ArticleTag, ArticleVersion, filter_key
from cms.content.reads import ArticleView, article_etag, view_of
from cms.platform.actors import Actor, Role
from cms.platform.clock import utcnow
from cms.platform.errors import Conflict, InvalidTransition, NotFound, VersionConflict
from cms.platform.uow import command


def get(session: Session, article_id: uuid.UUID) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"No article with id {article_id}.")
    return article


def lock(session: Session, article_id: uuid.UUID) -> Article:
    """Load the head row ``FOR UPDATE``: serialises writers of one article.

    SQLite ignores ``FOR UPDATE``; there every transaction starts with
    ``BEGIN IMMEDIATE`` (see ``cms.platform.db``), which serialises all writers.
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


def lock_with_latest(session: Session, article_id: uuid.UUID) -> tuple[Article, ArticleVersion]:
    """``lock``, then the latest version as of the lock.

    Two statements on purpose: a single ``SELECT … JOIN … FOR UPDATE OF
    articles`` is re-checked by PostgreSQL against the *old* version row when
    it had to wait for another writer, and then returns nothing.
    """
    article = lock(session, article_id)
    return article, versions.get(session, article.id, article.current_version)


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Apply domain rules to a full snapshot (sanitised body, de-duplicated lists)."""
    data = dict(data)
    data["body"] = sanitize_body(data.get("body") or "")
    data["tags"] = list(dict.fromkeys(t.strip() for t in data.get("tags") or [] if t.strip()))
    data["credits"] = list(dict.fromkeys(c.strip() for c in data.get("credits") or [] if c.strip()))
    if data.get("lead_image") is not None:
        data["lead_image"] = {k: data["lead_image"].get(k) for k in representation.LEAD_IMAGE}
    return data


def _sync_head(article: Article, data: dict[str, Any], previous_tags: list[str]) -> None:
    """Copy the list-filterable fields of the latest version onto the head row.

    The tag rows mirror the previous version's tags, so they are loaded and
    rewritten only when the tags actually change.
    """
    article.headline = data["headline"]
    article.section = data["section"]
    article.section_key = filter_key(data["section"])
    article.language = data["language"]
    article.slug = data["slug"]
    wanted = data["tags"]
    if previous_tags != wanted:
        existing = {t.tag: t for t in article.tags}
        rows = []
        for position, tag in enumerate(wanted):
            row = existing.get(tag) or ArticleTag(tag=tag, tag_key=filter_key(tag), position=position)
            row.position = position
            rows.append(row)
        article.tags = rows


@command
def create(
    session: Session, actor: Actor, fields: dict[str, Any], *, message: str | None = None
) -> ArticleView:
    """New draft article with version 1. An explicit slug that is taken is a conflict.

    Written with Core inserts (the hot write path): ``INSERT … ON CONFLICT (slug)
    DO NOTHING`` tells a lost slug race apart without aborting the transaction,
    so the next free slug is simply tried.
    """
    now = utcnow()
    data = _normalise({**representation.content_defaults(), **fields})
    explicit_slug = data.get("slug")
    base = explicit_slug or slugs.from_headline(data["headline"])
    article_id = uuid.uuid4()
    # Try the plain slug first (usually free: no lookup needed), then probe for
    # the first free suffix. Each round of a race has at least one winner, so
    # this bound covers 50 writers racing for one headline.
    for attempt in range(50):
        data["slug"] = base if explicit_slug or attempt == 0 else slugs.first_free(session, base)
        head = {
            "id": article_id,
            "slug": data["slug"],
            "state": ArticleState.DRAFT.value,
            "headline": data["headline"],
            "section": data["section"],
            "section_key": filter_key(data["section"]),
            "language": data["language"],
            "current_version": 1,
            "event_sequence": 0,
            "created_at": now,
            "updated_at": now,
        }
        version = versions.row(article_id, 1, data, actor=actor, message=message, prev_hash=None, now=now)
        if _insert_article(session, head, version, data["tags"]):
            break
        if explicit_slug:
            raise Conflict(f"Slug '{explicit_slug}' is used by another article.", field="slug")
    else:
        raise Conflict("Could not allocate a unique slug; retry the request.", field="slug")
    return ArticleView(
        id=article_id,
        state=ArticleState.DRAFT.value,
        version=1,
        published_version=None,
        kill_reason=None,
        created_at=now,
        updated_at=now,
        first_published_at=None,
        published_at=None,
        embargo_until=None,
        updated_by=actor.label,
        content=data,
    )


_HEAD_INSERTS = {
    name: dialect_insert(Article.__table__)
    .on_conflict_do_nothing(index_elements=["slug"])
    .returning(Article.__table__.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_VERSION_INSERT = insert(ArticleVersion.__table__)
_TAG_INSERT = insert(ArticleTag.__table__)

# PostgreSQL: head, version 1 and tags in one prepared statement (one round
# trip instead of three). The version and tag inserts select from the head
# insert's RETURNING, so a slug conflict inserts nothing at all.
_CREATE_PG = """
WITH head AS (
    INSERT INTO articles (id, slug, state, headline, section, section_key, language,
                          current_version, event_sequence, created_at, updated_at)
    VALUES (%(id)s, %(slug)s, %(state)s, %(headline)s, %(section)s, %(section_key)s, %(language)s,
            1, 0, %(created_at)s, %(created_at)s)
    ON CONFLICT (slug) DO NOTHING
    RETURNING id
), version AS (
    INSERT INTO article_versions (article_id, number, data, message, created_at, created_by,
                                  created_by_key_id, prev_hash, content_hash)
    SELECT id, 1, %(data)s::jsonb, %(message)s, %(created_at)s, %(created_by)s,
           %(created_by_key_id)s, NULL, %(content_hash)s
    FROM head
), tags AS (
    INSERT INTO article_tags (article_id, tag, tag_key, position)
    SELECT head.id, t.tag, t.tag_key, t.ord - 1
    FROM head, unnest(%(tags)s::text[], %(tag_keys)s::text[]) WITH ORDINALITY AS t(tag, tag_key, ord)
)
SELECT id FROM head
"""


def _insert_article(session: Session, head: dict[str, Any], version: dict[str, Any], tags: list[str]) -> bool:
    """Insert the head row, version 1 and the tag rows, unless the slug is taken."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        params = {
            **head,
            **version,
            "data": json.dumps(version["data"], ensure_ascii=False),
            "tags": tags,
            "tag_keys": [filter_key(t) for t in tags],
        }
        cursor = driver.cursor()
        cursor.execute(_CREATE_PG, params, prepare=True)
        return cursor.fetchone() is not None
    stmt = _HEAD_INSERTS[connection.dialect.name]
    if connection.execute(stmt, head).first() is None:
        return False
    connection.execute(_VERSION_INSERT, [version])
    if tags:
        connection.execute(
            _TAG_INSERT,
            [
                {"article_id": head["id"], "tag": t, "tag_key": filter_key(t), "position": i}
                for i, t in enumerate(tags)
            ],
        )
    return True


def _check_expected(article: Article, expected_versions: Collection[int]) -> None:
    if article.current_version not in expected_versions:
        seen = ", ".join(str(v) for v in sorted(expected_versions)) or "an unknown version"
        raise VersionConflict(
            f"You edited version {seen}, but the latest is {article.current_version}.",
            current_version=article.current_version,
            current_etag=article_etag(article.current_version, article.updated_at),
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
) -> ArticleView:
    latest = versions.get(session, article.id, article.current_version)  # already in the session
    data = _normalise(data)
    if data == latest.data:
        # Nothing changed: an empty version would only add noise to the history.
        return view_of(article, latest)
    if data["slug"] != article.slug and slugs.taken(session, data["slug"], article.id):
        raise Conflict(f"Slug '{data['slug']}' is used by another article.", field="slug")
    version = versions.append(
        session, article, data, actor=actor, message=message, prev_hash=latest.content_hash
    )
    _sync_head(article, data, latest.data.get("tags") or [])
    return view_of(article, version)


@command
def update(
    session: Session,
    actor: Actor,
    article_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    expected_versions: Collection[int],
    message: str | None = None,
) -> ArticleView:
    """Apply ``changes`` on top of the latest version as a new version.

    ``expected_versions`` holds the version the editor started from (its ETag);
    if another save landed since, nothing is written.
    """
    article, latest = lock_with_latest(session, article_id)
    _check_expected(article, expected_versions)
    _check_editable(article, actor)
    data = {**latest.data, **changes}
    if not data.get("slug"):
        data["slug"] = article.slug
    return _write_version(session, article, actor, data, message=message)


@command
def restore(
    session: Session,
    actor: Actor,
    article_id: uuid.UUID,
    number: int,
    *,
    expected_versions: Collection[int],
    message: str | None = None,
) -> ArticleView:
    """A new version whose content equals version ``number``; history is kept."""
    article, _latest = lock_with_latest(session, article_id)
    _check_expected(article, expected_versions)
    _check_editable(article, actor)
    source = versions.get(session, article.id, number)
    return _write_version(
        session, article, actor, dict(source.data), message=message or f"Restored version {number}"
    )
