"""Per-process caches: cachetools' LRU and TTL caches, each behind a lock (gthread
workers and the worker's threads share them; cachetools' caches are not thread-safe
on their own: even a read reorders an LRU), bounded by a setting, and reporting
their size in ``cms_cache_bytes`` / ``cms_cache_entries`` (labelled by cache),
set under the same lock so the gauges never go back to an older size.

- ``article-bodies`` (API): serialised article bodies, ``CMS_RENDER_CACHE_MB``.
- ``webhook-bodies`` (workers): rendered webhook payloads, ``CMS_WORKER_BODY_CACHE_MB``.
- ``api-keys`` (API): recently verified keys, ``CMS_AUTH_CACHE_ENTRIES`` for
  ``CMS_AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache, TTLCache

from cms.platform import metrics


class ByteLRU:
    """Bytes values, least recently used out first, at most ``max_bytes`` in all.

    A value larger than an eighth of the cache is not kept: one huge article or
    payload must not evict everything else.
    """

    def __init__(self, name: str | None, max_bytes: int) -> None:
        self.name = name  # None: a short-lived cache that reports nothing
        self.max_bytes = max(0, int(max_bytes))
        self._cache: LRUCache[Hashable, bytes] = LRUCache(maxsize=max(1, self.max_bytes), getsizeof=len)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) * 8 > self.max_bytes:
            return
        with self._lock:
            self._cache[key] = value
            _report(self.name, self._cache.currsize, len(self._cache))

    @property
    def size(self) -> int:
        with self._lock:
            return int(self._cache.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)


class ExpiringMemo:
    """Values for ``ttl`` seconds, at most ``max_entries`` of them (oldest out first)."""

    def __init__(self, name: str, ttl: float, max_entries: int) -> None:
        self.name = name
        self.ttl = ttl
        self._cache: TTLCache[Hashable, Any] | None = (
            TTLCache(maxsize=max(1, max_entries), ttl=ttl) if ttl > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        if self._cache is None:
            return
        with self._lock:
            self._cache[key] = value
            _report(self.name, None, len(self._cache))

    def forget(self, key: Hashable) -> None:
        if self._cache is None:
            return
        with self._lock:
            self._cache.pop(key, None)
            _report(self.name, None, len(self._cache))

    def clear(self) -> None:
        if self._cache is None:
            return
        with self._lock:
            self._cache.clear()
            _report(self.name, None, 0)

    def __len__(self) -> int:
        if self._cache is None:
            return 0
        with self._lock:
            return len(self._cache)


def _report(name: str | None, size: int | None, entries: int) -> None:
    if name is None:
        return
    m = metrics.get()
    if size is not None:
        m.cache_bytes.labels(name).set(size)
    m.cache_entries.labels(name).set(entries)
