"""The published-content API's queries: what a partner may read, and its rendering.

Only the published projection (``cms.content.published``) is consulted, so a later
draft can never be served; a partner's filter (``cms.content.visibility``) applies
to every route, and an article outside it answers exactly as one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Select, bindparam, exists, func, literal_column, select, tuple_
from sqlalchemy.orm import Session

from cms.content import formats, published, search
from cms.content.formats import EventFacts
from cms.content.models import ArticleState, ArticleVersion, filter_key
from cms.content.published import PublishedArticle, PublishedTag
from cms.content.visibility import ContentFilter
from cms.platform.caches import ByteLRU
from cms.platform.errors import Gone, NotFound

P = PublishedArticle.__table__
# What the API reads of a row (not the search index); statements built once, so
# SQLAlchemy compiles them once and psycopg prepares them on the server.
_ROW = select(*(c for c in P.c if c.name not in {"search", "search_rowid"}))
_BY_ID = _ROW.where(P.c.article_id == bindparam("article_id"))
_BY_SLUG = (
    _ROW.where(P.c.slug == bindparam("slug"))
    .order_by((P.c.state == "published").desc(), P.c.published_at.desc())
    .limit(literal_column("1"))
)


class RenderedItems(ByteLRU):
    """Rendered items by (article, version, sequence, format): a published version's
    representation never changes, and the sequence moves with every transition."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__("content-items", max_bytes)


def etag(row: Any, fmt: str) -> str:
    """Strong: one per (published version, the article's last transition, format)."""
    return f'"v{row.version}.{row.sequence}.{fmt}"'


def _tagged(keys: list[str]) -> Any:
    T = PublishedTag.__table__
    return exists().where(T.c.article_id == P.c.article_id, T.c.tag_key.in_(keys))


def _visible(audience: ContentFilter) -> list[Any]:
    return audience.conditions(
        section_key=P.c.section_key, language=P.c.language, tagged=_tagged, embargo_until=P.c.embargo_until
    )


def _found(row: Any, audience: ContentFilter, what: str) -> Any:
    """The row when the partner may see it: 404 when it is not published (never was,
    unpublished), outside its filter or under an embargo it is not trusted with (also
    once withdrawn: it never had the story), 410 when it was killed."""
    if (
        row is None
        or not audience.takes_embargo(row.embargo_until)
        or not audience.matches_keys(row.section_key, row.tag_keys, row.language)
    ):
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


def by_id(session: Session, audience: ContentFilter, article_id: uuid.UUID, cache: Rows | None = None) -> Any:
    """A row of the projection (Core, not the ORM: this is the content API's hot path)."""
    row = _row(session, cache, ("id", article_id), _BY_ID, {"article_id": article_id})
    return _found(row, audience, f"with id {article_id}")


def by_slug(session: Session, audience: ContentFilter, slug: str, cache: Rows | None = None) -> Any:
    """The article partners know by ``slug`` (its published version's); if two ever
    share one, the live one, then the most recently published."""
    row = _row(session, cache, ("slug", slug), _BY_SLUG, {"slug": slug})
    return _found(row, audience, f"with slug {slug!r}")


class Rows(Protocol):
    """Where rows may be kept between requests (``cms.delivery.freshness``)."""

    def get(self, key: Hashable) -> tuple[Any, int | None]: ...
    def put(self, key: Hashable, row: Any, token: int | None) -> None: ...


def _row(session: Session, cache: Rows | None, key: Hashable, stmt: Any, params: dict[str, Any]) -> Any:
    if cache is None:
        return session.connection().execute(stmt, params).first()
    row, token = cache.get(key)
    if row is None:
        row = session.connection().execute(stmt, params).first()
        if row is not None:
            cache.put(key, row, token)
    return row


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
) -> tuple[list[Any], tuple[datetime, uuid.UUID] | None]:
    """Live articles the partner may see, newest first (by publication), keyset-paginated."""
    stmt: Select[Any] = _ROW.where(P.c.state == "published", *_selected(session, audience, query))
    if query.after is not None:
        stmt = stmt.where(tuple_(P.c.published_at, P.c.article_id) < tuple_(*query.after))
    stmt = stmt.order_by(P.c.published_at.desc(), P.c.article_id.desc()).limit(query.limit + 1)
    rows = list(session.execute(stmt))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, ((rows[-1].published_at, rows[-1].article_id) if more and rows else None)


def _selected(session: Session, audience: ContentFilter, query: ListQuery) -> list[Any]:
    """What the partner may see and asked for, in any state."""
    out = _visible(audience)
    if query.section:
        out.append(P.c.section_key == filter_key(query.section))
    if query.tag:
        out.append(_tagged([filter_key(query.tag) or ""]))
    if query.language:
        out += ContentFilter.of(languages=[query.language]).conditions(
            section_key=P.c.section_key, language=P.c.language, tagged=_tagged
        )
    if query.since:
        out.append(P.c.published_at >= query.since)
    if query.q:
        out.append(search.condition(session.get_bind().dialect.name, query.q, query.language))
    return out


def last_change(session: Session, audience: ContentFilter, query: ListQuery) -> datetime | None:
    """When what ``page`` lists last changed, withdrawals included (a story leaving a
    list changes it as much as one entering it)."""
    return session.scalar(select(func.max(P.c.changed_at)).where(*_selected(session, audience, query)))


def sync_page(
    session: Session, audience: ContentFilter, *, after: uuid.UUID | None, limit: int
) -> tuple[list[Any], bool]:
    """The change feed's initial sync: live visible articles by id; and whether more follow."""
    stmt = _ROW.where(P.c.state == "published", *_visible(audience))
    if after is not None:
        stmt = stmt.where(P.c.article_id > after)
    rows = list(session.execute(stmt.order_by(P.c.article_id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def facts(row: Any, content: dict[str, Any], event_type: str = "article.published") -> EventFacts:
    """What the formats render for a live article: its published version, dated by its
    last publication, identified by its latest event."""
    return EventFacts(
        id=row.event_id,
        type=event_type,
        occurred_at=row.published_at,
        sequence=row.sequence,
        version=row.version,
        article_id=row.article_id,
        article={**content, **published.head(row)},
        embargo_until=row.embargo_until,
    )


def rendered(session: Session, rows: Sequence[Any], fmt: str, cache: RenderedItems | None) -> list[bytes]:
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
    return orjson.dumps(item)


def snapshot_data(session: Session, rows: Sequence[Any]) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    if not rows:
        return {}
    V = ArticleVersion
    wanted = [(r.article_id, r.version) for r in rows]
    stmt = select(V.article_id, V.number, V.data).where(tuple_(V.article_id, V.number).in_(wanted))
    return {(a, n): data for a, n, data in session.execute(stmt)}
