"""Request rates per partner, with the ``limits`` library (sliding window counters).

Storage is ``CMS_RATE_LIMIT_STORAGE``: ``memory://`` counts per process (the embedded
default), ``redis://...`` across every API process. If the storage fails, requests
are let through and counted in ``cms_rate_limit_errors_total``: a Redis outage must
not take the content API down with it.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute, storage, strategies

from cms.platform import metrics

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, uri: str) -> None:
        self._strategy = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(uri))
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def refused(self, key: str, per_minute: int) -> int | None:
        """None when a request by ``key`` may go now; else the seconds to wait."""
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        try:
            if self._strategy.hit(item, "partner", key):
                return None
            reset = self._strategy.get_window_stats(item, "partner", key).reset_time
        except Exception:
            log.warning("rate limit storage failed; letting the request through", exc_info=True)
            metrics.get().rate_limit_errors.inc()
            return None
        metrics.get().rate_limited.inc()
        return max(1, math.ceil(reset - time.time()))
