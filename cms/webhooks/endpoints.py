"""Subscriptions as the delivery engine sees them, cached per worker process.

Fan-out and sending read every subscription for every event; decoding 1,000
rows of JSON columns each time would cost more than the sends. A cache entry
is valid while the table's ``(count, max(updated_at))`` stamp is unchanged:
every configuration change (create, update, enable, disable, rotate, delete)
moves ``updated_at``, while health bookkeeping does not.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.content.models import filter_key
from cms.events.outbox import ARTICLE_EVENTS
from cms.webhooks.models import Subscription, SubscriptionChanges
from cms.webhooks.transport.signing import secret_key


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: uuid.UUID
    url: str
    format: str
    enabled: bool
    max_in_flight: int
    headers: tuple[tuple[str, str], ...]
    event_types: tuple[str, ...]
    sections: frozenset[str]
    tags: frozenset[str]
    languages: tuple[str, ...]
    key: bytes
    previous_key: bytes | None
    previous_until: datetime | None

    @classmethod
    def of(cls, s: Subscription) -> Endpoint:
        return cls(
            id=s.id,
            url=s.url,
            format=s.format,
            enabled=s.enabled,
            max_in_flight=s.max_in_flight,
            headers=tuple(sorted((s.headers or {}).items())),
            event_types=tuple(s.event_types),
            sections=frozenset(filter_key(x) for x in s.sections),
            tags=frozenset(filter_key(x) for x in s.tags),
            languages=tuple(lang.lower() for lang in s.languages),
            key=secret_key(s.secret),
            previous_key=secret_key(s.previous_secret) if s.previous_secret else None,
            previous_until=s.previous_secret_expires_at,
        )

    def keys_at(self, now: datetime) -> tuple[bytes, ...]:
        """The current key, plus the previous one during its grace period."""
        if self.previous_key is not None and self.previous_until is not None and self.previous_until > now:
            return (self.key, self.previous_key)
        return (self.key,)

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
        """Whether every content filter takes the article (case-insensitive, as the
        article list's filters are); an empty filter takes everything."""
        return self._wants_section(article) and self._wants_tags(article) and self._wants_language(article)

    def _wants_section(self, article: dict[str, Any]) -> bool:
        return not self.sections or filter_key(article.get("section")) in self.sections

    def _wants_tags(self, article: dict[str, Any]) -> bool:
        """One shared tag is enough."""
        return not self.tags or bool(self.tags.intersection(filter_key(t) for t in article.get("tags") or ()))

    def _wants_language(self, article: dict[str, Any]) -> bool:
        """A language selects its regional variants: "en" selects "en", "en-GB", "en-US"…"""
        if not self.languages:
            return True
        language = (article.get("language") or "").lower()
        return any(language == lang or language.startswith(lang + "-") for lang in self.languages)


# Raised by database triggers whenever what a subscription sends changes (migration 0006).
STAMP = select(SubscriptionChanges.version).where(SubscriptionChanges.id == 1)
STAMP_SQL = "SELECT version FROM subscription_changes WHERE id = 1"


class EndpointCache:
    """Every live (not deleted) subscription, reloaded only when the table changed.

    Shared by a worker's threads: the endpoints are kept by the stamp they were
    read at (a cachetools LRU of one, behind a lock), so a thread that loaded an
    older stamp late can never pass its endpoints off as the newer ones.
    """

    def __init__(self) -> None:
        self._by_stamp: LRUCache[tuple[Any, ...], dict[uuid.UUID, Endpoint]] = LRUCache(maxsize=1)
        self._lock = threading.Lock()

    def get(self, session: Session, stamp: tuple[Any, ...] | None = None) -> dict[uuid.UUID, Endpoint]:
        """The endpoints; ``stamp`` is the result of ``STAMP`` if the caller already ran it."""
        if stamp is None:
            stamp = tuple(session.execute(STAMP).one())
        with self._lock:
            endpoints = self._by_stamp.get(stamp)
        if endpoints is None:  # loaded outside the lock: two threads may both load, harmlessly
            rows = session.scalars(select(Subscription).where(Subscription.deleted_at.is_(None)))
            endpoints = {s.id: Endpoint.of(s) for s in rows}
            with self._lock:
                self._by_stamp[stamp] = endpoints
        return endpoints


def load(session: Session) -> dict[uuid.UUID, Endpoint]:
    """Without a cache (one-off calls)."""
    return EndpointCache().get(session)
