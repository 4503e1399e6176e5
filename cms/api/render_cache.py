"""Per-process cache of serialised article bodies (the read hot path)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cms.services.article_reads import ArticleView


class RenderCache:
    """Serialised article bodies, keyed by everything that can change them.

    Versions are immutable and every state change moves ``updated_at``, so a
    key names exactly one representation: an entry can never be stale. Bounded
    by bytes (bodies can be megabytes), least recently used out first.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def body(self, item: ArticleView, render: Callable[[ArticleView], bytes]) -> bytes:
        key = (
            item.id,
            item.version,
            item.state,
            item.published_version,
            item.updated_at,
            item.published_at,
            item.kill_reason,
        )
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        body = render(item)
        if len(body) * 8 <= self.max_bytes:  # one huge article must not evict everything
            self._bodies[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _key, old = self._bodies.popitem(last=False)
                self.size -= len(old)
        return body
