"""Building a feed: which entries (the content API's query: published versions only, a
partner's filters and the embargo gate included), its validators and its bytes.

A feed is read with three queries whatever its length: the entries (the published
projection), when its selection last changed (withdrawals included), and the
snapshots of the entries. The validators (``ETag`` from the entries' versions and
last transitions, ``Last-Modified``) are known before the snapshots are read or
anything is rendered, so a revalidation costs the first two only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from cms.content.visibility import ContentFilter
from cms.delivery import content
from cms.feeds import render

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    """Any combination of one section, one tag and one language (None: all)."""

    section: str | None = None
    tag: str | None = None
    language: str | None = None

    def describe(self) -> str:
        parts = [f"{name} {value}" for name, value in vars(self).items() if value]
        return ", ".join(parts) if parts else "all stories"


@dataclass(frozen=True)
class Head:
    """What a feed's validators are made of, and the rows to render if they do not match."""

    etag: str
    last_modified: datetime
    rows: list[Any]


def head(session: Session, audience: ContentFilter, selection: Selection, fmt: str, limit: int) -> Head:
    query = content.ListQuery(
        limit=limit, section=selection.section, tag=selection.tag, language=selection.language
    )
    rows, _ = content.page(session, audience, query)
    changed = content.last_change(session, audience, query) or EPOCH
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{fmt}|{changed.isoformat()}".encode())
    for r in rows:
        digest.update(f"|{r.article_id}.{r.version}.{r.sequence}".encode())
    return Head(f'"f{digest.hexdigest()}"', changed, rows)


def body(
    session: Session,
    fmt: str,
    rows: list[Any],
    channel: render.Channel,
    article_url: Callable[[dict[str, Any]], str | None],
) -> bytes:
    """The feed's bytes: one query for every entry's snapshot, then the format."""
    snapshots = content.snapshot_data(session, rows)
    entries = []
    for r in rows:
        article = content.facts(r, snapshots[(r.article_id, r.version)]).article
        assert article is not None
        entries.append(render.entry(article, article_url(article)))
    return render.render(fmt, channel, entries)
