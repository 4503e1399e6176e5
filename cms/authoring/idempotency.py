"""Idempotency keys: the same request twice yields one article, never two."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cms.authoring import articles
from cms.authoring.models import IdempotencyRecord
from cms.content import reads as article_reads
from cms.content.reads import ArticleView
from cms.platform.actors import Actor
from cms.platform.clock import utcnow
from cms.platform.errors import Conflict, IdempotencyMismatch
from cms.platform.uow import command


def request_fingerprint(payload: Any) -> str:
    """Hash of the request body, insensitive to key order and whitespace."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(session: Session, actor: Actor, key: str, fingerprint: str) -> uuid.UUID | None:
    """Reserve ``key`` for this request, or return the article an earlier one created.

    Returns ``None`` when the caller should go on and create the article (then
    call ``complete``). Raises ``IdempotencyMismatch`` when the key was used with
    another body. Concurrent requests with one key serialise on the primary key:
    the loser waits for the winner's commit, then replays its result.
    """
    assert actor.key_id is not None
    existing = session.get(IdempotencyRecord, (actor.key_id, key))
    if existing is None:
        record = IdempotencyRecord(
            api_key_id=actor.key_id, key=key, request_hash=fingerprint, created_at=utcnow()
        )
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
            return None
        except IntegrityError:
            existing = session.get(IdempotencyRecord, (actor.key_id, key), populate_existing=True)
            if existing is None:  # pragma: no cover - the winner rolled back; let the client retry
                raise Conflict("A request with this Idempotency-Key is in progress; retry.") from None
    if existing.request_hash != fingerprint:
        raise IdempotencyMismatch("This Idempotency-Key was already used with a different request body.")
    if existing.article_id is None:  # pragma: no cover - only while the first request is in flight
        raise Conflict("A request with this Idempotency-Key is in progress; retry.")
    return existing.article_id


def complete(session: Session, actor: Actor, key: str, article_id: uuid.UUID) -> None:
    assert actor.key_id is not None
    record = session.get(IdempotencyRecord, (actor.key_id, key))
    assert record is not None
    record.article_id = article_id


@command
def create_article(
    session: Session,
    actor: Actor,
    body: dict[str, Any],
    *,
    message: str | None,
    key: str | None,
    fingerprint: str | None,
) -> tuple[ArticleView, bool]:
    """Create an article, once per Idempotency-Key: ``(article, replayed)``.

    The key's record and the article commit together, so a retried request either
    finds both or neither."""
    if key is not None:
        assert fingerprint is not None
        existing = claim(session, actor, key, fingerprint)
        if existing is not None:
            return article_reads.read(session, existing), True
    item = articles.create(session, actor, body, message=message)
    if key is not None:
        complete(session, actor, key, item.id)
    return item, False
