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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.accounts.models import Partner
from cms.content.visibility import ContentFilter
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
    content: ContentFilter
    # Secrets stay out of reprs, hence out of any log line or traceback that shows one.
    key: bytes = field(repr=False)
    previous_key: bytes | None = field(repr=False)
    previous_until: datetime | None
    # A partner's subscription: the partner's own filter narrows it too, and its
    # webhooks carry the partner's change-feed cursor (signed with cursor_key).
    partner_id: uuid.UUID | None = None
    partner_content: ContentFilter | None = None
    cursor_key: bytes | None = field(default=None, repr=False)
    # Sent events under embargo at once (``embargo: send``, and its partner is
    # trusted with them now); otherwise they are held until the lift.
    embargo_send: bool = False

    @classmethod
    def of(cls, s: Subscription, partner: Any = None) -> Endpoint:
        """``partner``: the owning partner's row (its filter, cursor key and enabled flag)."""
        return cls(
            id=s.id,
            url=s.url,
            format=s.format,
            enabled=s.enabled and (partner is None or partner.active),
            max_in_flight=s.max_in_flight,
            headers=tuple(sorted((s.headers or {}).items())),
            event_types=tuple(s.event_types),
            content=ContentFilter.of(s.sections, s.tags, s.languages),
            key=secret_key(s.secret),
            previous_key=secret_key(s.previous_secret) if s.previous_secret else None,
            previous_until=s.previous_secret_expires_at,
            partner_id=s.partner_id,
            partner_content=partner.content_filter() if partner is not None else None,
            cursor_key=partner.cursor_key() if partner is not None else None,
            embargo_send=s.embargo == "send" and partner is not None and bool(partner.receives_embargoed),
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
        """Whether the subscription's filter, and its partner's, take the article
        (``cms.content.visibility``: the rule the content API and change feed apply)."""
        if not self.content.matches(article):
            return False
        return self.partner_content is None or self.partner_content.matches(article)


# Subscriptions with their partner (None: managed by the newsroom); LIVE: not deleted.
WITH_PARTNER = select(Subscription, Partner).outerjoin(Partner, Partner.id == Subscription.partner_id)
LIVE = WITH_PARTNER.where(Subscription.deleted_at.is_(None))
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
            endpoints = {s.id: Endpoint.of(s, partner) for s, partner in session.execute(LIVE).all()}
            with self._lock:
                self._by_stamp[stamp] = endpoints
        return endpoints


def load(session: Session) -> dict[uuid.UUID, Endpoint]:
    """Without a cache (one-off calls)."""
    return EndpointCache().get(session)
