"""The published-content API's queries: what a partner may read, and its rendering.

Only the published projection (``cms.content.published``) is consulted, so a later
draft can never be served; a partner's filter (``cms.content.visibility``) applies
to every route, and an article outside it answers exactly as one that does not exist.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, select, tuple_
from sqlalchemy.orm import Session

from cms.content import formats, search
from cms.content.formats import EventFacts
from cms.content.models import ArticleState, ArticleVersion, filter_key
from cms.content.published import PublishedArticle, PublishedTag
from cms.content.visibility import ContentFilter
from cms.platform.caches import ByteLRU
from cms.platform.errors import Gone, NotFound

P = PublishedArticle


class RenderedItems(ByteLRU):
    """Rendered items by (article, version, sequence, format): a published version's
    representation never changes, and the sequence moves with every transition."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__("content-items", max_bytes)


def etag(row: Any, fmt: str) -> str:
    """Strong: one per (published version, the article's last transition, format)."""
    return f'"v{row.version}.{row.sequence}.{fmt}"'


def _tagged(keys: list[str]) -> Any:
    return exists().where(PublishedTag.article_id == P.article_id, PublishedTag.tag_key.in_(keys))


def _visible(audience: ContentFilter) -> list[Any]:
    return audience.conditions(section_key=P.section_key, language=P.language, tagged=_tagged)


def _found(row: PublishedArticle | None, audience: ContentFilter, what: str) -> PublishedArticle:
    """The row when the partner may see it: 404 when it is not published (never was,
    unpublished) or outside its filter, 410 when it was killed."""
    if row is None or not audience.matches_keys(row.section_key, row.tag_keys, row.language):
        raise NotFound(f"No published article {what}.")
    if row.state == ArticleState.KILLED:
        raise Gone(
            f"Article {row.article_id} was withdrawn (killed); take it down.",
            article_id=str(row.article_id),
            slug=row.slug,
            pubstatus="canceled",
            reason=row.kill_reason,
            withdrawn_at=row.changed_at.isoformat(),
        )
    if row.state != ArticleState.PUBLISHED:
        raise NotFound(f"No published article {what}.")
    return row


def by_id(session: Session, audience: ContentFilter, article_id: uuid.UUID) -> PublishedArticle:
    return _found(session.get(P, article_id), audience, f"with id {article_id}")


def by_slug(session: Session, audience: ContentFilter, slug: str) -> PublishedArticle:
    """The article partners know by ``slug`` (its published version's); if two ever
    share one, the live one, then the most recently published."""
    rows = session.scalars(
        select(P)
        .where(P.slug == slug)
        .order_by((P.state == "published").desc(), P.published_at.desc())
        .limit(1)
    )
    return _found(rows.first(), audience, f"with slug {slug!r}")


@dataclass(frozen=True)
class ListQuery:
    limit: int
    after: tuple[datetime, uuid.UUID] | None = None
    section: str | None = None
    tag: str | None = None
    language: str | None = None
    since: datetime | None = None
    q: str | None = None


def page(
    session: Session, audience: ContentFilter, query: ListQuery
) -> tuple[list[PublishedArticle], tuple[datetime, uuid.UUID] | None]:
    """Live articles the partner may see, newest first (by publication), keyset-paginated."""
    stmt: Select[Any] = select(P).where(P.state == "published", *_visible(audience))
    if query.section:
        stmt = stmt.where(P.section_key == filter_key(query.section))
    if query.tag:
        stmt = stmt.where(_tagged([filter_key(query.tag) or ""]))
    if query.language:
        stmt = stmt.where(
            *ContentFilter.of(languages=[query.language]).conditions(
                section_key=P.section_key, language=P.language, tagged=_tagged
            )
        )
    if query.since:
        stmt = stmt.where(P.published_at >= query.since)
    if query.q:
        stmt = stmt.where(search.condition(session.get_bind().dialect.name, query.q, query.language))
    if query.after is not None:
        stmt = stmt.where(tuple_(P.published_at, P.article_id) < tuple_(*query.after))
    stmt = stmt.order_by(P.published_at.desc(), P.article_id.desc()).limit(query.limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, ((rows[-1].published_at, rows[-1].article_id) if more and rows else None)


def sync_page(
    session: Session, audience: ContentFilter, *, after: uuid.UUID | None, limit: int
) -> tuple[list[PublishedArticle], bool]:
    """The change feed's initial sync: live visible articles by id; and whether more follow."""
    stmt = select(P).where(P.state == "published", *_visible(audience))
    if after is not None:
        stmt = stmt.where(P.article_id > after)
    rows = list(session.scalars(stmt.order_by(P.article_id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def facts(
    row: PublishedArticle, content: dict[str, Any], event_type: str = "article.published"
) -> EventFacts:
    """What the formats render for a live article: its published version, dated by its
    last publication, identified by its latest event."""
    return EventFacts(
        id=row.event_id,
        type=event_type,
        occurred_at=row.published_at,
        sequence=row.sequence,
        version=row.version,
        article_id=row.article_id,
        article={**content, **row.facts()},
    )


def rendered(
    session: Session, rows: Sequence[PublishedArticle], fmt: str, cache: RenderedItems | None
) -> list[bytes]:
    """Each row's item in ``fmt`` as JSON bytes; snapshots are read (one query) only for
    items the cache lacks."""
    cache = cache if cache is not None else RenderedItems(0)
    keys = [(r.article_id, r.version, r.sequence, fmt) for r in rows]
    held = {k: cache.get(k) for k in keys}
    missing = [r for r, k in zip(rows, keys, strict=True) if held[k] is None]
    contents = snapshot_data(session, missing)
    for r in missing:
        key = (r.article_id, r.version, r.sequence, fmt)
        held[key] = body = _dumps(formats.item(facts(r, contents[(r.article_id, r.version)]), fmt))
        cache.put(key, body)
    return [held[k] or b"" for k in keys]


def _dumps(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def snapshot_data(
    session: Session, rows: Sequence[PublishedArticle]
) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    if not rows:
        return {}
    V = ArticleVersion
    wanted = [(r.article_id, r.version) for r in rows]
    stmt = select(V.article_id, V.number, V.data).where(tuple_(V.article_id, V.number).in_(wanted))
    return {(a, n): data for a, n, data in session.execute(stmt)}
