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
from cms.models import (
    OPEN_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EventPayload,
    Subscription,
)
from cms.webhooks.schedule import RetryPolicy, parse_retry_after, parse_schedule
from cms.webhooks.sender import Job, Result
from cms.webhooks.signing import secret_key

D = Delivery.__table__
S = Subscription.__table__

LEASE_EXPIRED = "no outcome was recorded before the lease expired (worker lost?)"


@dataclass(frozen=True)
class DeliveryPolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_seconds: float = 60.0
    disable_after: timedelta = timedelta(days=5)
    rng: random.Random | None = None


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
    earlier = D.alias("earlier")
    flying = D.alias("flying")
    blocked = exists().where(
        earlier.c.subscription_id == D.c.subscription_id,
        earlier.c.article_id == D.c.article_id,
        earlier.c.sequence < D.c.sequence,
        earlier.c.status.in_(OPEN_STATUSES),
    )
    due = (
        select(D.c.id, D.c.subscription_id, D.c.next_attempt_at, D.c.created_at)
        .where(D.c.status == DeliveryStatus.PENDING.value, D.c.next_attempt_at <= now, ~blocked)
        .order_by(D.c.next_attempt_at, D.c.created_at)
        .limit(limit * 4)
    )
    if event_ids is not None:
        due = due.where(D.c.event_id.in_(event_ids))
    if subscription_ids is not None:
        due = due.where(D.c.subscription_id.in_(list(subscription_ids)))
    due_sq = due.subquery("due")
    in_flight = (
        select(func.count())
        .select_from(flying)
        .where(flying.c.subscription_id == due_sq.c.subscription_id, flying.c.status == "in_flight")
        .scalar_subquery()
    )
    ranked = (
        select(
            due_sq.c.id,
            due_sq.c.next_attempt_at,
            func.row_number()
            .over(
                partition_by=due_sq.c.subscription_id,
                order_by=(due_sq.c.next_attempt_at, due_sq.c.created_at),
            )
            .label("rank"),
            (S.c.max_in_flight - in_flight).label("room"),
        )
        .join(S, S.c.id == due_sq.c.subscription_id)
        .where(S.c.enabled.is_(True), S.c.deleted_at.is_(None))
        .subquery("ranked")
    )
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
) -> list[Job]:
    """Mark up to ``limit`` sendable deliveries in flight (leased) and return their jobs."""
    ids = _claim_ids(session, now, limit=limit, event_ids=event_ids, subscription_ids=subscription_ids)
    lease = now + timedelta(seconds=policy.lease_seconds)
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.IN_FLIGHT.value, lease_expires_at=lease, updated_at=now)
        .returning(
            Delivery.id, Delivery.event_id, Delivery.subscription_id, Delivery.format, Delivery.attempts
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(stmt).all()
    return _jobs(session, rows, now)


def load_jobs(session: Session, delivery_ids: Sequence[uuid.UUID], now: datetime) -> list[Job]:
    """Jobs for deliveries claimed earlier (by the relay) whose lease still holds."""
    if not delivery_ids:
        return []
    stmt = select(D.c.id, D.c.event_id, D.c.subscription_id, D.c.format, D.c.attempts).where(
        D.c.id.in_(delivery_ids),
        D.c.status == DeliveryStatus.IN_FLIGHT.value,
        D.c.lease_expires_at > now,
    )
    return _jobs(session, session.execute(stmt).all(), now)


def _jobs(session: Session, rows: Sequence[Any], now: datetime) -> list[Job]:
    if not rows:
        return []
    subs = {
        s.id: s
        for s in session.scalars(
            select(Subscription).where(Subscription.id.in_({r.subscription_id for r in rows}))
        )
    }
    bodies = {
        (p.event_id, p.format): p.body.encode()
        for p in session.execute(
            select(EventPayload.event_id, EventPayload.format, EventPayload.body).where(
                EventPayload.event_id.in_({r.event_id for r in rows})
            )
        )
    }
    keys: dict[uuid.UUID, tuple[bytes, ...]] = {
        sid: tuple(secret_key(secret) for secret in s.secrets_at(now)) for sid, s in subs.items()
    }
    return [
        Job(
            delivery_id=r.id,
            event_id=r.event_id,
            subscription_id=r.subscription_id,
            url=subs[r.subscription_id].url,
            body=bodies[(r.event_id, r.format)],
            keys=keys[r.subscription_id],
            headers=tuple(sorted((subs[r.subscription_id].headers or {}).items())),
            attempt=r.attempts + 1,
            max_in_flight=subs[r.subscription_id].max_in_flight,
        )
        for r in rows
    ]


@dataclass
class Recorded:
    """What ``record`` did: subscriptions to look at again, and ones it disabled."""

    subscriptions: set[uuid.UUID] = field(default_factory=set)
    disabled: list[uuid.UUID] = field(default_factory=list)
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


def record(session: Session, results: Sequence[Result], now: datetime, policy: DeliveryPolicy) -> Recorded:
    """Log each attempt and move its delivery on: succeeded, retry later, or failed."""
    done = Recorded()
    if not results:
        return done
    retry_index = dict(
        session.execute(
            select(D.c.id, D.c.retry_index).where(D.c.id.in_([r.job.delivery_id for r in results]))
        ).all()
    )
    attempts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    healthy: set[uuid.UUID] = set()
    failing: dict[uuid.UUID, int] = defaultdict(int)
    gone: set[uuid.UUID] = set()
    for r in results:
        job = r.job
        done.subscriptions.add(job.subscription_id)
        failures = retry_index.get(job.delivery_id, 0)
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
        if r.error == LEASE_EXPIRED:
            outcome = "lease-expired" if status == DeliveryStatus.PENDING else outcome
        attempts.append(
            {
                "delivery_id": job.delivery_id,
                "number": job.attempt,
                "attempted_at": r.started_at,
                "duration_ms": r.duration_ms,
                "status_code": r.status_code,
                "error": r.error,
                "response_excerpt": r.excerpt,
                "outcome": outcome,
            }
        )
        updates.append(
            {
                "b_id": job.delivery_id,
                "b_prev_attempts": job.attempt - 1,
                "v_status": status.value,
                "v_attempts": job.attempt,
                "v_retry_index": failures,
                "v_next_attempt_at": next_at,
                "v_last_attempt_at": r.started_at,
                "v_delivered_at": now if r.ok else None,
                "v_last_status_code": r.status_code,
                "v_last_error": r.error,
                "v_updated_at": now,
            }
        )
    session.execute(DeliveryAttempt.__table__.insert(), attempts)
    session.execute(_DELIVERY_UPDATE, updates)
    _update_health(session, now, healthy, failing)
    for sid in gone:
        if _disable(session, sid, now, "The endpoint answered 410 Gone."):
            done.disabled.append(sid)
    done.disabled.extend(_disable_failing(session, now, policy, set(failing) - healthy - gone))
    return done


def _update_health(
    session: Session, now: datetime, healthy: set[uuid.UUID], failing: dict[uuid.UUID, int]
) -> None:
    if healthy:
        session.execute(
            update(S)
            .where(S.c.id.in_(healthy))
            .values(last_success_at=now, failing_since=None, consecutive_failures=0)
        )
    counts: dict[int, list[uuid.UUID]] = defaultdict(list)
    for sid, n in failing.items():
        if sid not in healthy:
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
        select(D.c.id, D.c.event_id, D.c.subscription_id, D.c.attempts)
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
