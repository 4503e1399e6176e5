"""Writing a batch of outcomes: attempt rows, delivery states, subscription health.

PostgreSQL does it in one statement (one round trip whatever the batch size);
elsewhere it takes a few. Only a delivery still in flight from the same attempt moves.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, update
from sqlalchemy.orm import Session

from cms.platform import bulk
from cms.webhooks import stats
from cms.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Subscription

D = Delivery.__table__
S = Subscription.__table__


_DELIVERY_UPDATE = (
    update(D)
    .where(
        D.c.id == bindparam("b_id"),
        D.c.status == DeliveryStatus.IN_FLIGHT.value,
        D.c.attempts == bindparam("b_prev_attempts"),
    )
    .values(
        status=bindparam("v_status"),
        attempts=bindparam("v_attempts"),
        retry_index=bindparam("v_retry_index"),
        next_attempt_at=bindparam("v_next_attempt_at"),
        lease_expires_at=None,
        last_attempt_at=bindparam("v_last_attempt_at"),
        # The first success stays (a failed redelivery does not unsay it).
        delivered_at=func.coalesce(bindparam("v_delivered_at"), D.c.delivered_at),
        last_status_code=bindparam("v_last_status_code"),
        last_error=bindparam("v_last_error"),
        updated_at=bindparam("v_updated_at"),
    )
)


ATTEMPT_COLUMNS = (
    "delivery_id",
    "number",
    "attempted_at",
    "duration_ms",
    "status_code",
    "error",
    "response_excerpt",
    "outcome",
)

# PostgreSQL: every outcome of a batch in one statement (attempt log, delivery
# states, subscription health), one round trip whatever the batch size. Arrays
# go in binary (%(…)b): quoting a thousand response excerpts as text costs more
# than the statement.
_PG_RECORD = (
    """
WITH v AS (
    SELECT *, 'in_flight'::text AS was FROM unnest(
        %(id)b::uuid[], %(prev)b::int[], %(status)b::text[], %(attempts)b::int[], %(retry_index)b::int[],
        %(next_at)b::timestamptz[], %(last_at)b::timestamptz[], %(delivered_at)b::timestamptz[],
        %(code)b::int[], %(error)b::text[], %(excerpt)b::text[], %(outcome)b::text[], %(duration)b::float8[]
    ) AS v(id, prev, status, attempts, retry_index, next_at, last_at, delivered_at, code, error,
           excerpt, outcome, duration)
), logged AS (
    INSERT INTO delivery_attempts (delivery_id, number, attempted_at, duration_ms, status_code, error,
                                   response_excerpt, outcome)
    SELECT id, attempts, last_at, duration, code, error, excerpt, outcome FROM v
), healthy AS (
    UPDATE subscriptions SET last_success_at = %(now)s, failing_since = NULL, consecutive_failures = 0,
        next_retry_at = NULL
    WHERE id = ANY(%(healthy)b::uuid[])
      AND (failing_since IS NOT NULL OR consecutive_failures <> 0 OR last_success_at IS NULL
           OR last_success_at < %(stale)s)
), failing AS (
    UPDATE subscriptions AS s SET last_failure_at = %(now)s,
        failing_since = coalesce(s.failing_since, %(now)s),
        consecutive_failures = s.consecutive_failures + f.n,
        last_error = f.error, next_retry_at = f.next_at
    FROM unnest(%(f_id)b::uuid[], %(f_n)b::int[], %(f_error)b::text[], %(f_next)b::timestamptz[])
        AS f(id, n, error, next_at)
    WHERE s.id = f.id
), """
    + stats.PG_TALLIES
    + """
UPDATE deliveries AS d SET
    status = v.status, attempts = v.attempts, retry_index = v.retry_index,
    next_attempt_at = v.next_at, lease_expires_at = NULL, last_attempt_at = v.last_at,
    delivered_at = coalesce(v.delivered_at, d.delivered_at), last_status_code = v.code, last_error = v.error,
    updated_at = %(now)s
FROM v
WHERE d.id = v.id AND d.status = v.was AND d.attempts = v.prev
"""
)
# ``d.status = v.was`` ('in_flight', from the materialised v) and not a literal: with
# the literal the planner matched the partial in-flight index and scanned every
# in-flight row (dead index entries too) for each batch instead of probing the key.


class Failing(NamedTuple):
    """What a batch says of a failing subscription: failed attempts, the last error,
    and the earliest retry it scheduled (None: nothing left to retry)."""

    n: int
    error: str | None
    next_at: datetime | None


def write(
    session: Session,
    now: datetime,
    attempts: list[tuple[Any, ...]],
    updates: list[dict[str, Any]],
    healthy: set[uuid.UUID],
    failing: dict[uuid.UUID, Failing],
) -> None:
    if not bulk.is_postgres(session):
        stats.add_outcomes(session, attempts, updates)  # before the deliveries move
        bulk.copy_rows(session, DeliveryAttempt.__table__, ATTEMPT_COLUMNS, attempts)
        _write_outcomes(session, updates, now)
        _update_health(session, now, healthy, failing)
        return
    params = {
        **{name: [u[name] for u in updates] for name in updates[0]},
        "excerpt": [a[6] for a in attempts],
        "outcome": [a[7] for a in attempts],
        "duration": [a[3] for a in attempts],
        "now": now,
        "stale": now - HEALTH_REFRESH,
        "healthy": list(healthy),
        **_failing_arrays(failing),
        **_tally_arrays(attempts),
    }
    bulk.driver_cursor(session).execute(_PG_RECORD, params)


def _failing_arrays(failing: dict[uuid.UUID, Failing]) -> dict[str, list[Any]]:
    return {
        "f_id": list(failing),
        "f_n": [f.n for f in failing.values()],
        "f_error": [f.error for f in failing.values()],
        "f_next": [f.next_at for f in failing.values()],
    }


def _tally_arrays(attempts: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    counted = stats.attempt_counts(attempts)
    return {
        "t_minute": [minute for minute, _ in counted],
        "t_metric": [metric for _, metric in counted],
        "t_n": list(counted.values()),
        "latency_bounds": list(stats.LATENCY.bounds),
    }


def _write_outcomes(session: Session, updates: list[dict[str, Any]], now: datetime) -> None:
    session.execute(
        _DELIVERY_UPDATE,
        [
            {
                "b_id": u["id"],
                "b_prev_attempts": u["prev"],
                "v_status": u["status"],
                "v_attempts": u["attempts"],
                "v_retry_index": u["retry_index"],
                "v_next_attempt_at": u["next_at"],
                "v_last_attempt_at": u["last_at"],
                "v_delivered_at": u["delivered_at"],
                "v_last_status_code": u["code"],
                "v_last_error": u["error"],
                "v_updated_at": now,
            }
            for u in updates
        ],
    )


HEALTH_REFRESH = timedelta(minutes=1)


def _update_health(
    session: Session, now: datetime, healthy: set[uuid.UUID], failing: dict[uuid.UUID, Failing]
) -> None:
    if healthy:
        # Only rows whose record changes: a healthy subscription's last_success_at
        # is refreshed at most once a minute instead of on every delivery.
        session.execute(
            update(S)
            .where(
                S.c.id.in_(healthy),
                S.c.failing_since.is_not(None)
                | (S.c.consecutive_failures != 0)
                | S.c.last_success_at.is_(None)
                | (S.c.last_success_at < now - HEALTH_REFRESH),
            )
            .values(last_success_at=now, failing_since=None, consecutive_failures=0, next_retry_at=None)
        )
    if failing:
        session.execute(
            update(S)
            .where(S.c.id == bindparam("b_id"))
            .values(
                last_failure_at=now,
                failing_since=func.coalesce(S.c.failing_since, now),
                consecutive_failures=S.c.consecutive_failures + bindparam("b_n"),
                last_error=bindparam("b_error"),
                next_retry_at=bindparam("b_next"),
            ),
            [
                {"b_id": sid, "b_n": f.n, "b_error": f.error, "b_next": f.next_at}
                for sid, f in failing.items()
            ],
        )
