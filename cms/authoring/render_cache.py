"""Per-process cache of serialised article bodies (the read hot path)."""

from __future__ import annotations

from collections.abc import Callable

from cms.content.reads import ArticleView
from cms.platform.caches import ByteLRU


class RenderCache:
    """Serialised article bodies, keyed by everything that can change them.

    Versions are immutable and every state change moves ``updated_at``, so a
    key names exactly one representation: an entry can never be stale. Bounded
    by bytes (``CMS_RENDER_CACHE_MB``; bodies can be megabytes), least recently
    used out first, safe to share between a gthread worker's threads.
    """

    def __init__(self, max_bytes: int) -> None:
        self._bodies = ByteLRU("article-bodies", max_bytes)

    @property
    def size(self) -> int:
        return self._bodies.size

    def body(self, item: ArticleView, render: Callable[[ArticleView], bytes]) -> bytes:
        key = (
            item.id,
            item.version,
            item.state,
            item.published_version,
            item.updated_at,
            item.published_at,
            item.kill_reason,
            item.embargo_until,
        )
        body = self._bodies.get(key)
        if body is None:
            body = render(item)
            self._bodies.put(key, body)
        return body
