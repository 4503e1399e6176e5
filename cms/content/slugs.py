"""Readable, unique URL slugs, transliterated for non-Latin headlines."""

from __future__ import annotations

import re
import uuid

from slugify import slugify
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.content.models import Article

MAX_SLUG_LENGTH = 120
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def from_headline(headline: str) -> str:
    """``Путин поздрави Тръмп`` -> ``putin-pozdravi-trmp``; never empty."""
    slug = slugify(headline, max_length=MAX_SLUG_LENGTH, word_boundary=True, lowercase=True)
    return slug or "article"


def with_suffix(base: str, n: int) -> str:
    """``base-n``, trimming ``base`` so the result stays within the length limit."""
    suffix = f"-{n}"
    return base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix


def taken(session: Session, slug: str, article_id: uuid.UUID | None) -> bool:
    """Whether another article (not ``article_id``) already uses ``slug``."""
    stmt = select(Article.id).where(Article.slug == slug)
    if article_id is not None:
        stmt = stmt.where(Article.id != article_id)
    return session.scalars(stmt.limit(1)).first() is not None


def first_free(session: Session, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``… whichever is free first.

    Probes candidates in batches with ``IN`` (unique-index lookups) rather than
    ``LIKE 'base-%'``, which PostgreSQL cannot serve from a btree index under a
    linguistic collation.
    """
    start = 1
    while True:
        candidates = [base if n == 1 else with_suffix(base, n) for n in range(start, start + 20)]
        taken = set(session.scalars(select(Article.slug).where(Article.slug.in_(candidates))))
        for candidate in candidates:
            if candidate not in taken:
                return candidate
        start += 20
