"""Immutable versions: append, read, diff, restore and verify the hash chain.

Each version's ``content_hash`` covers its own fields and the previous
version's hash, so changing or removing any row breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonpatch
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.content.models import Article, ArticleVersion
from cms.platform import pagination
from cms.platform.actors import Actor
from cms.platform.clock import utcnow
from cms.platform.errors import NotFound


def version_hash(
    *,
    prev_hash: str | None,
    article_id: uuid.UUID,
    number: int,
    data: dict[str, Any],
    message: str | None,
    created_at: datetime,
    created_by: str,
    created_by_key_id: uuid.UUID | None,
) -> str:
    """SHA-256 over the previous hash and a canonical JSON of this version."""
    canonical = json.dumps(
        {
            "article_id": str(article_id),
            "number": number,
            "data": data,
            "message": message,
            "created_at": created_at.isoformat(timespec="microseconds"),
            "created_by": created_by,
            "created_by_key_id": str(created_by_key_id) if created_by_key_id else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash or ''}\n{canonical}".encode()).hexdigest()


def _hash_of(v: ArticleVersion) -> str:
    return version_hash(
        prev_hash=v.prev_hash,
        article_id=v.article_id,
        number=v.number,
        data=v.data,
        message=v.message,
        created_at=v.created_at,
        created_by=v.created_by,
        created_by_key_id=v.created_by_key_id,
    )


def row(
    article_id: uuid.UUID,
    number: int,
    data: dict[str, Any],
    *,
    actor: Actor,
    message: str | None,
    prev_hash: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The column values of a new version, its hash included."""
    values: dict[str, Any] = {
        "article_id": article_id,
        "number": number,
        "data": data,
        "message": message,
        "created_at": now,
        "created_by": actor.label,
        "created_by_key_id": actor.key_id,
        "prev_hash": prev_hash,
    }
    values["content_hash"] = version_hash(**values)
    return values


def append(
    session: Session,
    article: Article,
    data: dict[str, Any],
    *,
    actor: Actor,
    message: str | None,
    prev_hash: str | None,
) -> ArticleVersion:
    """Add version ``article.current_version + 1``; the caller holds the row lock."""
    now = utcnow()
    number = article.current_version + 1
    version = ArticleVersion(
        **row(article.id, number, data, actor=actor, message=message, prev_hash=prev_hash, now=now)
    )
    session.add(version)
    article.current_version = number
    article.updated_at = now
    return version


def get(session: Session, article_id: uuid.UUID, number: int) -> ArticleVersion:
    """One version by its primary key: the same cost with 1 or 5,000 versions."""
    version = session.get(ArticleVersion, (article_id, number))
    if version is None:
        raise NotFound(f"Article {article_id} has no version {number}.", version=number)
    return version


def page(
    session: Session, article_id: uuid.UUID, *, limit: int, after: int | None
) -> tuple[list[ArticleVersion], int | None]:
    """Versions in ascending order, keyset-paginated by number."""
    stmt = select(ArticleVersion).where(ArticleVersion.article_id == article_id)
    return pagination.ascending(session, stmt, ArticleVersion.number, limit=limit, after=after)


@dataclass(frozen=True)
class Diff:
    from_version: int
    to_version: int
    changed: list[str]
    patch: list[dict[str, Any]]


def diff(session: Session, article_id: uuid.UUID, from_n: int, to_n: int) -> Diff:
    """Fields that differ and the RFC 6902 patch turning ``from_n`` into ``to_n``."""
    a = get(session, article_id, from_n).data
    b = get(session, article_id, to_n).data
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return Diff(from_n, to_n, changed, jsonpatch.make_patch(a, b).patch)


@dataclass(frozen=True)
class ChainReport:
    valid: bool
    versions_checked: int
    first_invalid_version: int | None
    reason: str | None


def _iter_versions(session: Session, article_id: uuid.UUID) -> Iterator[ArticleVersion]:
    stmt = (
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article_id)
        .order_by(ArticleVersion.number)
        .execution_options(yield_per=500)
    )
    yield from session.scalars(stmt)


def verify_chain(session: Session, article: Article) -> ChainReport:
    """Recompute every hash in order; report the first version that does not match."""
    expected_prev: str | None = None
    checked = 0
    for v in _iter_versions(session, article.id):
        checked += 1
        if v.number != checked:
            return ChainReport(False, checked, checked, f"version {checked} is missing")
        if v.prev_hash != expected_prev:
            return ChainReport(False, checked, v.number, "previous-hash link is broken")
        if _hash_of(v) != v.content_hash:
            return ChainReport(False, checked, v.number, "content does not match its hash")
        expected_prev = v.content_hash
    if checked != article.current_version:
        return ChainReport(False, checked, checked + 1, "versions are missing at the end")
    return ChainReport(True, checked, None, None)
