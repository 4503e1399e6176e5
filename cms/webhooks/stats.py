"""What the delivery engine counts per minute for the ops overview (``cms.platform.tallies``).

- ``events``: outbox events, by the minute they happened (a database trigger on
  ``outbox_events``, migration 0014, so every writer is counted);
- ``attempt:<outcome>``: delivery attempts by outcome (succeeded, retrying, failed,
  gone, lease-expired), by the minute they started;
- ``latency:<bucket>``: publish -> first delivery, per delivery: from the event (or,
  for a delivery held for an embargo, from the end of that embargo) to the delivery's
  first success. Redeliveries and replays of a delivered webhook are not counted again.

On PostgreSQL the attempts and latencies are added by the statement that records the
outcomes (``cms.webhooks.outcome_writes``); elsewhere by ``add_outcomes`` below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.events.models import OutboxEvent
from cms.platform import tallies
from cms.webhooks.models import Delivery, DeliveryStatus, status_is

EVENTS = "events"
ATTEMPT = "attempt:"
LATENCY = tallies.Histogram.geometric("latency:", 0.01, 1.25, 86400.0)
ATTEMPT_OUTCOMES = ("succeeded", "retrying", "lease-expired", "failed", "gone")


def waited_since(occurred_at: datetime, embargo: str | None, embargo_until: datetime | None) -> datetime:
    """When the clock of a delivery's latency starts (the rule the SQL writer repeats)."""
    if embargo == "released" and embargo_until is not None:
        return max(occurred_at, embargo_until)
    return occurred_at


def attempt_counts(attempts: Sequence[tuple[Any, ...]]) -> Counter[tuple[int, str]]:
    """``{(minute, "attempt:<outcome>"): n}`` for a batch of attempt rows
    (``cms.webhooks.outcome_writes.ATTEMPT_COLUMNS``: started at [2], outcome [7])."""
    return Counter((tallies.minute_of(a[2]), ATTEMPT + a[7]) for a in attempts)


def add_outcomes(
    session: Session, attempts: Sequence[tuple[Any, ...]], updates: Sequence[dict[str, Any]]
) -> None:
    """Count a batch of attempts and the first deliveries among them, before the
    deliveries move (a delivery counts as first delivered while its ``delivered_at``
    is empty). ``attempts`` and ``updates`` are ``cms.webhooks.outcome_writes``'."""
    counts = attempt_counts(attempts)
    delivered = {u["id"]: u for u in updates if u["delivered_at"] is not None}
    if delivered:
        D, E = Delivery.__table__, OutboxEvent.__table__
        rows = session.execute(
            select(D.c.id, D.c.attempts, D.c.embargo, E.c.occurred_at, E.c.embargo_until)
            .join(E, E.c.id == D.c.event_id)
            .where(
                D.c.id.in_(list(delivered)),
                status_is(D.c.status, DeliveryStatus.IN_FLIGHT),
                D.c.delivered_at.is_(None),
            )
        ).all()
        for r in rows:
            u = delivered[r.id]
            if r.attempts != u["prev"]:
                continue  # a late answer: the delivery will not move
            start = waited_since(r.occurred_at, r.embargo, r.embargo_until)
            at: datetime = u["delivered_at"]
            counts[(tallies.minute_of(at), LATENCY.metric((at - start).total_seconds()))] += 1
    tallies.add(session, counts)


# The same counts inside PostgreSQL's one-statement outcome writer (``v``: the batch): the
# attempts counted in Python (``attempt_counts``, as arrays), the first deliveries found
# with one index probe each (``OFFSET 0`` keeps the planner from turning the probes into
# a join that scans the outbox).
PG_TALLIES = f"""
firsts AS (
    SELECT v.delivered_at AS at,
           extract(epoch FROM v.delivered_at - CASE WHEN x.embargo = 'released'
               THEN greatest(x.occurred_at, x.embargo_until) ELSE x.occurred_at END)::float8 AS waited
    FROM v CROSS JOIN LATERAL (
        SELECT d.embargo, e.occurred_at, e.embargo_until
        FROM deliveries AS d JOIN outbox_events AS e ON e.id = d.event_id
        WHERE d.id = v.id AND d.status = v.was AND d.attempts = v.prev AND d.delivered_at IS NULL
        OFFSET 0
    ) AS x
    WHERE v.delivered_at IS NOT NULL
), tallied AS (
    INSERT INTO minute_tallies AS t (minute, metric, shard, n)
    SELECT minute, metric, pg_backend_pid() %% {tallies.SHARDS}, sum(n) FROM (
        SELECT * FROM unnest(%(t_minute)b::bigint[], %(t_metric)b::text[], %(t_n)b::bigint[])
            AS a(minute, metric, n)
        UNION ALL
        SELECT floor(extract(epoch FROM at) / 60)::bigint,
               '{LATENCY.prefix}' || width_bucket(waited, %(latency_bounds)s::float8[]), 1
        FROM firsts
    ) AS x GROUP BY minute, metric ORDER BY minute, metric
    ON CONFLICT (minute, metric, shard) DO UPDATE SET n = t.n + EXCLUDED.n
)"""
