"""Delivery bookkeeping: claim what may be sent now, record what happened.

The rules live here, in the database, so any number of workers can share the
work and a crashed one loses nothing:

* ordering: a delivery is sent only when no earlier delivery (lower sequence)
  of the same article to the same subscription is still open (pending or in
  flight). A final failure releases the next one, or one dead event would
  block an article for ever;
* isolation: at most ``max_in_flight`` deliveries per subscription are in
  flight at a claim (concurrent claimers can overshoot by a batch each);
* leases: a claimed delivery is ``in_flight`` until ``lease_expires_at``. If
  no outcome is recorded by then (the worker was killed), the sweep counts a
  failed attempt and the retry schedule sends it again;
* retries wait in the database (``next_attempt_at``) for the periodic sweep.

Nothing here commits: the worker task that calls it owns the transaction.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from cms.events import outbox
from cms.events.outbox import EventType
from cms.platform import bulk
from cms.platform.caches import ByteLRU
from cms.webhooks.endpoints import Endpoint
from cms.webhooks.models import (
    OPEN_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EventPayload,
    Subscription,
)
from cms.webhooks.transport.schedule import RetryPolicy, parse_retry_after, parse_schedule
from cms.webhooks.transport.sender import Job, Result

D = Delivery.__table__
S = Subscription.__table__

LEASE_EXPIRED = "no outcome was recorded before the lease expired (worker lost?)"


@dataclass(frozen=True)
class DeliveryPolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_seconds: float = 60.0
    disable_after: timedelta = timedelta(days=5)
    rng: random.Random | None = None


class BodyCache(ByteLRU):
    """Recently rendered payloads by (event id, format), so a worker sending a
    batch another process claimed does not read the same body again for each.
    The worker's own is named (metrics) and sized by CMS_WORKER_BODY_CACHE_MB."""

    def __init__(self, max_bytes: int = 4 * 2**20, name: str | None = None) -> None:
        super().__init__(name, max_bytes)


def policy(config: Mapping[str, Any]) -> DeliveryPolicy:
    """The delivery policy from ``CMS_WEBHOOK_*`` settings."""
    return DeliveryPolicy(
        retry=RetryPolicy(schedule=parse_schedule(config["CMS_WEBHOOK_RETRY_SCHEDULE"])),
        lease_seconds=float(config["CMS_WEBHOOK_LEASE_SECONDS"]),
        disable_after=timedelta(days=float(config["CMS_WEBHOOK_DISABLE_AFTER_DAYS"])),
    )


def _claim_ids(
    session: Session,
    now: datetime,
    *,
    limit: int,
    event_ids: Sequence[uuid.UUID] | None,
    subscription_ids: Iterable[uuid.UUID] | None,
) -> Select[Any]:
    """Ids of deliveries that may be sent now, at most ``limit``.

    Room under each subscription's cap is computed once (in-flight rows have
    their own small index); subscriptions that are full, paused or deleted are
    left out before any delivery is looked at, so a backlog waiting behind a
    hanging endpoint costs nothing. Within a subscription, the oldest due
    deliveries take the free slots.
    """
    earlier = D.alias("earlier")
    flying = (
        select(D.c.subscription_id, func.count().label("n"))
        .where(D.c.status == DeliveryStatus.IN_FLIGHT.value)
        .group_by(D.c.subscription_id)
        .cte("flying")
    )
    room = (
        select(S.c.id, (S.c.max_in_flight - func.coalesce(flying.c.n, 0)).label("room"))
        .select_from(S.outerjoin(flying, flying.c.subscription_id == S.c.id))
        .where(S.c.enabled.is_(True), S.c.deleted_at.is_(None))
        .cte("room")
    )
    blocked = exists().where(
        earlier.c.subscription_id == D.c.subscription_id,
        earlier.c.article_id == D.c.article_id,
        earlier.c.sequence < D.c.sequence,
        earlier.c.status.in_(OPEN_STATUSES),
    )
    due = (
        select(D.c.id, D.c.subscription_id, D.c.next_attempt_at, D.c.created_at, room.c.room)
        .join(room, room.c.id == D.c.subscription_id)
        .where(
            D.c.status == DeliveryStatus.PENDING.value,
            D.c.next_attempt_at <= now,
            room.c.room > 0,
            ~blocked,
        )
        .order_by(D.c.next_attempt_at, D.c.created_at)
        .limit(limit * 4)
    )
    if event_ids is not None:
        due = due.where(D.c.event_id.in_(event_ids))
    if subscription_ids is not None:
        due = due.where(D.c.subscription_id.in_(list(subscription_ids)))
    due_sq = due.subquery("due")
    ranked = select(
        due_sq.c.id,
        due_sq.c.next_attempt_at,
        due_sq.c.room,
        func.row_number()
        .over(partition_by=due_sq.c.subscription_id, order_by=(due_sq.c.next_attempt_at, due_sq.c.created_at))
        .label("rank"),
    ).subquery("ranked")
    return (
        select(ranked.c.id)
        .where(ranked.c.rank <= ranked.c.room)
        .order_by(ranked.c.next_attempt_at)
        .limit(limit)
    )


def claim(
    session: Session,
    now: datetime,
    policy: DeliveryPolicy,
    *,
    limit: int = 1000,
    event_ids: Sequence[uuid.UUID] | None = None,
    subscription_ids: Iterable[uuid.UUID] | None = None,
    endpoints: Mapping[uuid.UUID, Endpoint] | None = None,
    bodies: BodyCache | None = None,
) -> list[Job]:
    """Mark up to ``limit`` sendable deliveries in flight (leased) and return their jobs."""
    ids = _claim_ids(session, now, limit=limit, event_ids=event_ids, subscription_ids=subscription_ids)
    lease = now + timedelta(seconds=policy.lease_seconds)
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.IN_FLIGHT.value, lease_expires_at=lease, updated_at=now)
        .returning(
            Delivery.id,
            Delivery.event_id,
            Delivery.subscription_id,
            Delivery.format,
            Delivery.attempts,
            Delivery.retry_index,
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(stmt).all()
    return _jobs(session, rows, now, endpoints, bodies)


def has_due(session: Session, now: datetime, subscription_ids: Iterable[uuid.UUID]) -> bool:
    """Whether any of these subscriptions has a delivery waiting that is due (a cheap pre-check)."""
    if bulk.is_postgres(session):
        row = bulk.driver_cursor(session).execute(_PG_HAS_DUE, {"now": now, "subs": list(subscription_ids)})
        return bool(row.fetchone()[0])
    stmt = (
        select(D.c.id)
        .where(
            D.c.status == DeliveryStatus.PENDING.value,
            D.c.next_attempt_at <= now,
            D.c.subscription_id.in_(list(subscription_ids)),
        )
        .limit(1)
    )
    return session.execute(stmt).first() is not None


_PG_HAS_DUE = """
SELECT EXISTS (
    SELECT 1 FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s AND subscription_id = ANY(%(subs)s::uuid[])
)
"""


def load_jobs(
    session: Session,
    delivery_ids: Sequence[uuid.UUID],
    now: datetime,
    endpoints: Mapping[uuid.UUID, Endpoint] | None = None,
    bodies: BodyCache | None = None,
) -> list[Job]:
    """Jobs for deliveries claimed earlier (by the relay) whose lease still holds."""
    if not delivery_ids:
        return []
    stmt = select(D.c.id, D.c.event_id, D.c.subscription_id, D.c.format, D.c.attempts, D.c.retry_index).where(
        D.c.id.in_(delivery_ids),
        D.c.status == DeliveryStatus.IN_FLIGHT.value,
        D.c.lease_expires_at > now,
    )
    return _jobs(session, session.execute(stmt).all(), now, endpoints, bodies)


def _jobs(
    session: Session,
    rows: Sequence[Any],
    now: datetime,
    endpoints: Mapping[uuid.UUID, Endpoint] | None,
    bodies: BodyCache | None,
) -> list[Job]:
    if not rows:
        return []
    if endpoints is None or any(r.subscription_id not in endpoints for r in rows):
        wanted = {r.subscription_id for r in rows}
        subs = session.scalars(select(Subscription).where(Subscription.id.in_(wanted)))
        endpoints = {**(endpoints or {}), **{s.id: Endpoint.of(s) for s in subs}}
    cache = bodies if bodies is not None else BodyCache()
    missing = {(r.event_id, r.format) for r in rows if cache.get((r.event_id, r.format)) is None}
    if missing:
        stmt = select(EventPayload.event_id, EventPayload.format, EventPayload.body).where(
            EventPayload.event_id.in_({event_id for event_id, _fmt in missing})
        )
        for event_id, fmt, body in session.execute(stmt):
            cache.put((event_id, fmt), body.encode())
    jobs = []
    for r in rows:
        endpoint = endpoints[r.subscription_id]
        body = cache.get((r.event_id, r.format))
        if body is None:  # larger than the cache keeps
            body = session.scalar(
                select(EventPayload.body).where(
                    EventPayload.event_id == r.event_id, EventPayload.format == r.format
                )
            ).encode()
        jobs.append(
            Job(
                delivery_id=r.id,
                event_id=r.event_id,
                subscription_id=r.subscription_id,
                url=endpoint.url,
                body=body,
                keys=endpoint.keys_at(now),
                headers=endpoint.headers,
                attempt=r.attempts + 1,
                max_in_flight=endpoint.max_in_flight,
                retry_index=r.retry_index,
            )
        )
    return jobs


@dataclass
class Recorded:
    """What ``record`` did: subscriptions to look at again, and ones it disabled."""

    subscriptions: set[uuid.UUID] = field(default_factory=set)
    disabled: list[uuid.UUID] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # per result, in order
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0


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
        delivered_at=bindparam("v_delivered_at"),
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
_PG_RECORD = """
WITH v AS (
    SELECT * FROM unnest(
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
    UPDATE subscriptions SET last_success_at = %(now)s, failing_since = NULL, consecutive_failures = 0
    WHERE id = ANY(%(healthy)b::uuid[])
      AND (failing_since IS NOT NULL OR consecutive_failures <> 0 OR last_success_at IS NULL
           OR last_success_at < %(stale)s)
), failing AS (
    UPDATE subscriptions AS s SET last_failure_at = %(now)s,
        failing_since = coalesce(s.failing_since, %(now)s),
        consecutive_failures = s.consecutive_failures + f.n
    FROM unnest(%(f_id)b::uuid[], %(f_n)b::int[]) AS f(id, n)
    WHERE s.id = f.id
)
UPDATE deliveries AS d SET
    status = v.status, attempts = v.attempts, retry_index = v.retry_index,
    next_attempt_at = v.next_at, lease_expires_at = NULL, last_attempt_at = v.last_at,
    delivered_at = v.delivered_at, last_status_code = v.code, last_error = v.error,
    updated_at = %(now)s
FROM v
WHERE d.id = v.id AND d.status = 'in_flight' AND d.attempts = v.prev
"""


def record(session: Session, results: Sequence[Result], now: datetime, policy: DeliveryPolicy) -> Recorded:
    """Log each attempt and move its delivery on: succeeded, retry later, or failed.

    An outcome only moves a delivery still in flight from that same attempt: a
    late answer for a lease that already expired is logged but changes nothing.
    """
    done = Recorded()
    if not results:
        return done
    attempts: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    healthy: set[uuid.UUID] = set()
    failing: dict[uuid.UUID, int] = defaultdict(int)
    gone: set[uuid.UUID] = set()
    for r in results:
        job = r.job
        done.subscriptions.add(job.subscription_id)
        failures = job.retry_index
        next_at = None
        if r.ok:
            outcome, status = "succeeded", DeliveryStatus.SUCCEEDED
            healthy.add(job.subscription_id)
            done.succeeded += 1
        elif r.status_code == 410:
            outcome, status = "gone", DeliveryStatus.FAILED
            gone.add(job.subscription_id)
            done.failed += 1
        else:
            failures += 1
            if r.error != LEASE_EXPIRED:  # a lost worker is not the endpoint's fault
                failing[job.subscription_id] += 1
            retry_after = parse_retry_after(r.retry_after, now) if r.status_code in (429, 503) else None
            next_at = policy.retry.next_attempt_at(failures, now, retry_after=retry_after, rng=policy.rng)
            if next_at is None:
                outcome, status = "failed", DeliveryStatus.FAILED
                done.failed += 1
            else:
                outcome, status = "retrying", DeliveryStatus.PENDING
                done.retrying += 1
        if r.error == LEASE_EXPIRED and status == DeliveryStatus.PENDING:
            outcome = "lease-expired"
        done.outcomes.append(outcome)
        attempts.append(
            (
                job.delivery_id,
                job.attempt,
                r.started_at,
                r.duration_ms,
                r.status_code,
                r.error,
                r.excerpt,
                outcome,
            )
        )
        updates.append(
            {
                "id": job.delivery_id,
                "prev": job.attempt - 1,
                "status": status.value,
                "attempts": job.attempt,
                "retry_index": failures,
                "next_at": next_at,
                "last_at": r.started_at,
                "delivered_at": now if r.ok else None,
                "code": r.status_code,
                "error": r.error,
            }
        )
    failing_only = {sid: n for sid, n in failing.items() if sid not in healthy}
    if bulk.is_postgres(session):
        columns = {name: [u[name] for u in updates] for name in updates[0]}
        bulk.driver_cursor(session).execute(
            _PG_RECORD,
            {
                **columns,
                "excerpt": [a[6] for a in attempts],
                "outcome": [a[7] for a in attempts],
                "duration": [a[3] for a in attempts],
                "now": now,
                "stale": now - HEALTH_REFRESH,
                "healthy": list(healthy),
                "f_id": list(failing_only),
                "f_n": list(failing_only.values()),
            },
        )
    else:
        bulk.copy_rows(session, DeliveryAttempt.__table__, ATTEMPT_COLUMNS, attempts)
        _write_outcomes(session, updates, now)
        _update_health(session, now, healthy, failing_only)
    for sid in gone:
        if _disable(session, sid, now, "The endpoint answered 410 Gone."):
            done.disabled.append(sid)
    done.disabled.extend(_disable_failing(session, now, policy, set(failing) - healthy - gone))
    return done


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
    session: Session, now: datetime, healthy: set[uuid.UUID], failing: dict[uuid.UUID, int]
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
            .values(last_success_at=now, failing_since=None, consecutive_failures=0)
        )
    counts: dict[int, list[uuid.UUID]] = defaultdict(list)
    for sid, n in failing.items():
        counts[n].append(sid)
    for n, sids in counts.items():
        session.execute(
            update(S)
            .where(S.c.id.in_(sids))
            .values(
                last_failure_at=now,
                failing_since=func.coalesce(S.c.failing_since, now),
                consecutive_failures=S.c.consecutive_failures + n,
            )
        )


def _disable(session: Session, sid: uuid.UUID, now: datetime, reason: str) -> bool:
    """Disable one subscription and record ``subscription.disabled`` (False if it already was)."""
    stmt = (
        update(S)
        .where(S.c.id == sid, S.c.enabled.is_(True))
        .values(enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now)
        .returning(S.c.id)
    )
    if session.execute(stmt).first() is None:
        return False
    outbox.record_system(
        session,
        EventType.SUBSCRIPTION_DISABLED,
        subscription_id=sid,
        actor="system",
        data={"reason": reason, "disabled_at": now.isoformat()},
    )
    return True


def _disable_failing(
    session: Session, now: datetime, policy: DeliveryPolicy, candidates: set[uuid.UUID]
) -> list[uuid.UUID]:
    if not candidates:
        return []
    since = now - policy.disable_after
    stale = session.scalars(
        select(S.c.id).where(S.c.id.in_(candidates), S.c.enabled.is_(True), S.c.failing_since <= since)
    ).all()
    days = policy.disable_after.total_seconds() / 86400
    reason = f"Every delivery has failed for {days:g} days."
    return [sid for sid in stale if _disable(session, sid, now, reason)]


def expire_leases(session: Session, now: datetime, policy: DeliveryPolicy, *, limit: int = 1000) -> Recorded:
    """Deliveries whose worker vanished: count a failed attempt and schedule a retry."""
    rows = session.execute(
        select(D.c.id, D.c.event_id, D.c.subscription_id, D.c.attempts, D.c.retry_index)
        .where(D.c.status == DeliveryStatus.IN_FLIGHT.value, D.c.lease_expires_at < now)
        .limit(limit)
    ).all()
    if not rows:
        return Recorded()
    results = [
        Result(
            Job(
                delivery_id=r.id,
                event_id=r.event_id,
                subscription_id=r.subscription_id,
                url="",
                body=b"",
                keys=(),
                headers=(),
                attempt=r.attempts + 1,
                max_in_flight=0,
                retry_index=r.retry_index,
            ),
            started_at=now,
            duration_ms=0.0,
            error=LEASE_EXPIRED,
        )
        for r in rows
    ]
    return record(session, results, now, policy)


def stats(session: Session) -> dict[str, int]:
    """Delivery counts by status."""
    return dict(session.execute(select(D.c.status, func.count()).group_by(D.c.status)).all())


def open_for(session: Session, subscription_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                and_(D.c.subscription_id == subscription_id, D.c.status.in_(OPEN_STATUSES))
            )
        )
        or 0
    )
