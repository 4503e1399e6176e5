"""Per-process cache of the published projection's rows, trusted only while this
process hears every commit that could change them.

Partners poll: most content API requests ask again for what they already have
(304) or for the same popular articles. Each would cost a pooled connection, its
pre-ping and a query. Here a row is kept until *any* article event commits: every
outbox insert NOTIFYs ``cms_outbox`` at commit (migration 0003) and a LISTEN thread
in each API process then drops the whole cache. Transitions made through this
process drop it at once too (after-commit hook ``published``), so a process never
answers from a row older than its own last write.

What it gives up: a request in another process, arriving in the milliseconds
between a commit and its notification, may still get the previous state, as it
would have if it had come a moment earlier. (``Cache-Control`` lets any cache
between us and the partner serve a copy for up to ``CMS_CONTENT_MAX_AGE`` anyway.)
While the listener is not connected (starting, or the database unreachable) nothing
is served from the cache, and ``cms_worker_thread_up{thread="content-listener"}``
says so. SQLite (embedded) has no NOTIFY: no cache there.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache

from cms.events.outbox import NOTIFY_CHANNEL
from cms.platform import notifications
from cms.platform.supervision import ThreadState, supervise


class ProjectionCache:
    def __init__(self, url: str, max_entries: int) -> None:
        self.url = url
        self.enabled = url.startswith("postgresql") and max_entries > 0
        self._rows: LRUCache[Hashable, tuple[Any, int]] = LRUCache(maxsize=max(1, max_entries))
        self._lock = threading.Lock()
        self._generation = 0
        self._listening = False
        self._stopping = threading.Event()
        self.state: ThreadState | None = None

    # ------------------------------------------------------------ reading

    def get(self, key: Hashable) -> tuple[Any, int | None]:
        """The cached row (or None) and the token to ``put`` a row read now under
        (None: do not cache, the listener is not connected)."""
        if not self._listening:
            self._start()
            return None, None
        with self._lock:
            entry = self._rows.get(key)
            generation = self._generation
        if entry is not None and entry[1] == generation:
            return entry[0], generation
        return None, generation

    def put(self, key: Hashable, row: Any, token: int | None) -> None:
        """Keep ``row``, read after ``get`` gave ``token``, unless a commit came since."""
        if token is None:
            return
        with self._lock:
            if token == self._generation:
                self._rows[key] = (row, token)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._rows.clear()

    # ------------------------------------------------------------ listening

    def _start(self) -> None:
        """The listener starts with the first read in a process (after gunicorn forked)."""
        if not self.enabled or self.state is not None:
            return
        with self._lock:
            if self.state is not None:
                return
            self.state = supervise("content-listener", self._listen, self._stopping)

    def _listen(self) -> None:
        def connected() -> None:
            self.invalidate()  # whatever committed while we were not listening
            self._listening = True
            if self.state is not None:
                self.state.recovered()  # this step only returns when stopping

        try:
            notifications.listen(
                self.url,
                NOTIFY_CHANNEL,
                application_name="cms-api-listener",
                connected=connected,
                notified=self.invalidate,
                stopping=self._stopping,
            )
        finally:
            self._listening = False

    def stop(self) -> None:
        self._stopping.set()
