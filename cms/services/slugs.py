"""Readable, unique URL slugs, transliterated for non-Latin headlines."""

from __future__ import annotations

import re

from slugify import slugify

MAX_SLUG_LENGTH = 120
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def slug_from_headline(headline: str) -> str:
    """``Путин поздрави Тръмп`` -> ``putin-pozdravi-trmp``; never empty."""
    slug = slugify(headline, max_length=MAX_SLUG_LENGTH, word_boundary=True, lowercase=True)
    return slug or "article"


def with_suffix(base: str, n: int) -> str:
    """``base-n``, trimming ``base`` so the result stays within the length limit."""
    suffix = f"-{n}"
    return base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix
