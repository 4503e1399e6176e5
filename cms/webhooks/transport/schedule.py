"""When to try a delivery again.

Attempt 1 goes out at once; after a failed attempt ``n`` the next waits
``schedule[n]`` seconds, give or take 20% so that a receiver coming back up is
not hit by every retry in the same second. ``Retry-After`` can only lengthen
the wait (capped at a day). After the last attempt the delivery has failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# Seconds before attempts 1..10: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.2
MAX_RETRY_AFTER = 86400.0


def parse_schedule(spec: str | tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """``"0,5,300"`` -> ``(0.0, 5.0, 300.0)``; at least one attempt, no negative waits."""
    values = (
        tuple(float(v) for v in spec.split(",") if v.strip())
        if isinstance(spec, str)
        else tuple(float(v) for v in spec)
    )
    if not values or any(v < 0 for v in values):
        raise ValueError("a retry schedule needs at least one attempt and no negative delays")
    return values


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = JITTER

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def next_attempt_at(
        self,
        failed_attempts: int,
        now: datetime,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again after ``failed_attempts`` failures in this cycle (None: give up)."""
        if failed_attempts >= self.max_attempts:
            return None
        base = self.schedule[failed_attempts]
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter) if base else 1.0
        delay = base * spread
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return now + timedelta(seconds=delay)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
