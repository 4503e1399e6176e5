"""The ops overview: the last hour of delivery at a glance, from aggregates only.

Every figure comes from a table whose size does not grow with the history: the
per-minute tallies (``cms.webhooks.stats``), the delivery counts kept by triggers,
the unrelayed end of the outbox (an index), and the subscriptions' own health
columns. Nothing here scans deliveries or attempts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.platform import tallies
from cms.webhooks import monitoring
from cms.webhooks.models import OPEN_STATUSES, DeliveryCount, Subscription
from cms.webhooks.stats import ATTEMPT, ATTEMPT_OUTCOMES, EVENTS, LATENCY


@dataclass(frozen=True)
class Failing:
    id: uuid.UUID
    url: str
    partner_id: uuid.UUID | None
    enabled: bool
    consecutive_failures: int
    failing_since: datetime | None
    last_error: str | None
    next_retry_at: datetime | None


@dataclass(frozen=True)
class Overview:
    minutes: list[datetime]  # the start of each minute, oldest first
    events: list[int]
    attempts: dict[str, list[int]]  # outcome -> count per minute
    p50: list[float | None]  # publish -> first delivery, seconds, per minute
    p99: list[float | None]
    hour_p50: float | None
    hour_p99: float | None
    first_deliveries: int
    outbox_lag: float  # seconds the oldest unrelayed event has waited
    unrelayed: int
    open: dict[str, int]  # pending / in_flight
    failing: list[Failing]

    @property
    def total_events(self) -> int:
        return sum(self.events)

    def total(self, outcome: str) -> int:
        return sum(self.attempts.get(outcome, ()))


def overview(session: Session, now: datetime, minutes: int = 60, failing_limit: int = 50) -> Overview:
    last = tallies.minute_of(now)
    first = last - minutes + 1
    counts = tallies.read(session, first, last, (EVENTS, ATTEMPT, LATENCY.prefix))
    span = range(first, last + 1)
    latency, hour = _latency_buckets(counts, span)
    lag, unrelayed = monitoring.outbox_backlog(session, now)
    return Overview(
        minutes=[datetime.fromtimestamp(m * 60, UTC) for m in span],
        events=[counts.get((m, EVENTS), 0) for m in span],
        attempts={o: [counts.get((m, ATTEMPT + o), 0) for m in span] for o in ATTEMPT_OUTCOMES},
        p50=[LATENCY.quantile(c, 0.5) for c in latency],
        p99=[LATENCY.quantile(c, 0.99) for c in latency],
        hour_p50=LATENCY.quantile(hour, 0.5),
        hour_p99=LATENCY.quantile(hour, 0.99),
        first_deliveries=sum(hour.values()),
        outbox_lag=lag,
        unrelayed=unrelayed,
        open=_open_counts(session),
        failing=failing_subscriptions(session, failing_limit),
    )


def _latency_buckets(
    counts: dict[tuple[int, str], int], span: range
) -> tuple[list[dict[int, int]], dict[int, int]]:
    """The latency histogram of each minute of ``span``, and of all of them."""
    per_minute: dict[int, list[tuple[str, int]]] = {}
    for (m, k), n in counts.items():
        per_minute.setdefault(m, []).append((k, n))
    minutes = [LATENCY.counts(per_minute.get(m, ())) for m in span]
    whole: dict[int, int] = {}
    for c in minutes:
        for i, n in c.items():
            whole[i] = whole.get(i, 0) + n
    return minutes, whole


def _open_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(DeliveryCount.status, func.sum(DeliveryCount.n))
        .where(DeliveryCount.status.in_(OPEN_STATUSES))
        .group_by(DeliveryCount.status)
    ).all()
    found = {status: int(n or 0) for status, n in rows}
    return {status: found.get(status, 0) for status in OPEN_STATUSES}


def failing_subscriptions(session: Session, limit: int = 50) -> list[Failing]:
    """Subscriptions whose latest attempts failed, the longest failing first."""
    S = Subscription
    rows = session.execute(
        select(
            S.id,
            S.url,
            S.partner_id,
            S.enabled,
            S.consecutive_failures,
            S.failing_since,
            S.last_error,
            S.next_retry_at,
        )
        .where(S.deleted_at.is_(None), S.consecutive_failures > 0)
        .order_by(S.failing_since, S.id)
        .limit(limit)
    ).all()
    return [Failing(*r) for r in rows]
