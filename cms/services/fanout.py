"""Relay: turn outbox events into one delivery per matching subscription.

Runs in a worker's transaction (the task commits). Payloads are rendered once
per (event, format) and stored; deliveries are inserted in bulk and are
unique per (event, subscription), so running a relay twice creates nothing
new. Disabled subscriptions still get their deliveries (a pause): they go out,
in order, when the subscription is enabled again. Deleted ones get none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cms.events import outbox
from cms.events.outbox import ARTICLE_EVENTS, EventType
from cms.models import (
    Article,
    ArticleVersion,
    Delivery,
    DeliveryStatus,
    EventPayload,
    OutboxEvent,
    Subscription,
)
from cms.webhooks.payloads import EventFacts, render


@dataclass(frozen=True)
class Target:
    """What fan-out needs of a subscription."""

    id: uuid.UUID
    format: str
    event_types: tuple[str, ...]
    sections: frozenset[str]
    tags: frozenset[str]
    languages: tuple[str, ...]

    @classmethod
    def of(cls, s: Subscription) -> Target:
        return cls(
            id=s.id,
            format=s.format,
            event_types=tuple(s.event_types),
            sections=frozenset(s.sections),
            tags=frozenset(s.tags),
            languages=tuple(lang.lower() for lang in s.languages),
        )

    def wants_type(self, event_type: str) -> bool:
        for pattern in self.event_types:
            if pattern == event_type:
                return True
            if pattern == "*" and event_type in ARTICLE_EVENTS:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False

    def wants_content(self, article: dict[str, Any]) -> bool:
        if self.sections and article.get("section") not in self.sections:
            return False
        if self.tags and not self.tags.intersection(article.get("tags") or ()):
            return False
        if self.languages:
            language = (article.get("language") or "").lower()
            # "en" selects "en", "en-GB", "en-US"…
            if not any(language == lang or language.startswith(lang + "-") for lang in self.languages):
                return False
        return True


def matching(event: EventFacts, targets: Iterable[Target]) -> list[Target]:
    """The subscriptions ``event`` goes to."""
    if event.type == EventType.PING:
        return [t for t in targets if t.id == event.subscription_id]
    if event.article_id is None:  # subscription.* events: only to those who asked by name
        return [t for t in targets if t.id != event.subscription_id and t.wants_type(event.type)]
    content = event.article or {}
    return [t for t in targets if t.wants_type(event.type) and t.wants_content(content)]


def facts_for(session: Session, events: Sequence[OutboxEvent]) -> list[EventFacts]:
    """Each event with the article content of its version (one query per table)."""
    article_events = [e for e in events if e.article_id is not None and e.version is not None]
    heads: dict[uuid.UUID, Article] = {}
    versions: dict[tuple[uuid.UUID, int], ArticleVersion] = {}
    if article_events:
        ids = {e.article_id for e in article_events}
        heads = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
        keys = {(e.article_id, e.version) for e in article_events}
        stmt = select(ArticleVersion).where(
            tuple_(ArticleVersion.article_id, ArticleVersion.number).in_(keys)
        )
        versions = {(v.article_id, v.number): v for v in session.scalars(stmt)}
    out = []
    for e in events:
        article = None
        if e.article_id is not None and e.version is not None:
            head = heads[e.article_id]
            version = versions[(e.article_id, e.version)]
            article = {
                **version.data,
                "id": e.article_id,
                "state": "published",
                "created_at": head.created_at,
                "updated_at": e.occurred_at,
                "first_published_at": head.first_published_at or e.occurred_at,
                "published_at": e.occurred_at,
                "updated_by": version.created_by,
            }
        out.append(
            EventFacts(
                id=e.id,
                type=e.type,
                occurred_at=e.occurred_at,
                sequence=e.sequence,
                version=e.version,
                article_id=e.article_id,
                subscription_id=e.subscription_id,
                data=dict(e.data or {}),
                article=article,
            )
        )
    return out


def targets(session: Session) -> list[Target]:
    stmt = select(Subscription).where(Subscription.deleted_at.is_(None))
    return [Target.of(s) for s in session.scalars(stmt)]


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table).on_conflict_do_nothing()


@dataclass(frozen=True)
class Relayed:
    event_ids: list[uuid.UUID]
    deliveries: int


def relay(session: Session, now: datetime, *, limit: int = 100) -> Relayed:
    """Fan out up to ``limit`` ready events (none relayed: nothing to do)."""
    events = outbox.claim_unrelayed(session, limit)
    if not events:
        return Relayed([], 0)
    subscribers = targets(session)
    payloads: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for facts in facts_for(session, events):
        chosen = matching(facts, subscribers)
        for fmt in sorted({t.format for t in chosen}):
            payloads.append({"event_id": facts.id, "format": fmt, "body": render(facts, fmt).decode()})
        deliveries.extend(
            {
                "id": uuid.uuid4(),
                "event_id": facts.id,
                "subscription_id": t.id,
                "article_id": facts.article_id,
                "sequence": facts.sequence,
                "event_type": facts.type,
                "format": t.format,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "retry_index": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for t in chosen
        )
    if payloads:
        session.execute(_insert(session, EventPayload.__table__), payloads)
    if deliveries:
        session.execute(_insert(session, Delivery.__table__), deliveries)
    ids = [e.id for e in events]
    outbox.mark_relayed(session, ids, now)
    return Relayed(ids, len(deliveries))
