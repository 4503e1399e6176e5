"""Outcomes: log each attempt and move its delivery on (succeeded, retry later, failed),
keep each subscription's health, and disable endpoints that are gone or failing for days.

Nothing here commits: the worker task that calls it owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.events import outbox
from cms.events.outbox import EventType
from cms.webhooks import outcome_writes
from cms.webhooks.models import Delivery, DeliveryStatus, Subscription, status_is
from cms.webhooks.outcome_writes import Failing
from cms.webhooks.policy import LEASE_EXPIRED, DeliveryPolicy
from cms.webhooks.transport.schedule import parse_retry_after
from cms.webhooks.transport.sender import Job, Result

D = Delivery.__table__
S = Subscription.__table__


@dataclass
class Recorded:
    """What ``record`` did: subscriptions to look at again, and ones it disabled."""

    subscriptions: set[uuid.UUID] = field(default_factory=set)
    disabled: list[uuid.UUID] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # per result, in order
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0

    def count(self, status: DeliveryStatus) -> None:
        if status == DeliveryStatus.SUCCEEDED:
            self.succeeded += 1
        elif status == DeliveryStatus.FAILED:
            self.failed += 1
        else:
            self.retrying += 1


@dataclass
class _Health:
    """What a batch says about each endpoint: answered fine, gone (410), or failing
    (how often, the last error, the earliest retry it scheduled)."""

    healthy: set[uuid.UUID] = field(default_factory=set)
    gone: set[uuid.UUID] = field(default_factory=set)
    failing: dict[uuid.UUID, Failing] = field(default_factory=dict)

    def note(self, r: Result, outcome: str, next_at: datetime | None) -> None:
        sid = r.job.subscription_id
        if r.ok:
            self.healthy.add(sid)
        elif outcome == "gone":
            self.gone.add(sid)
        elif r.error != LEASE_EXPIRED:  # a lost worker is not the endpoint's fault
            before = self.failing.get(sid)
            error = r.error or f"HTTP {r.status_code}"
            if before is None:
                self.failing[sid] = Failing(1, error, next_at)
            else:
                soonest = min((t for t in (before.next_at, next_at) if t is not None), default=None)
                self.failing[sid] = Failing(before.n + 1, error, soonest)

    def failing_only(self) -> dict[uuid.UUID, Failing]:
        return {sid: f for sid, f in self.failing.items() if sid not in self.healthy}


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
    health = _Health()
    for r in results:
        job = r.job
        done.subscriptions.add(job.subscription_id)
        outcome, status, failures, next_at = _classify(r, now, policy)
        done.count(status)
        health.note(r, outcome, next_at)
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
    outcome_writes.write(session, now, attempts, updates, health.healthy, health.failing_only())
    for sid in health.gone:
        if _disable(session, sid, now, "The endpoint answered 410 Gone."):
            done.disabled.append(sid)
    candidates = set(health.failing) - health.healthy - health.gone
    done.disabled.extend(_disable_failing(session, now, policy, candidates))
    return done


def _classify(
    r: Result, now: datetime, policy: DeliveryPolicy
) -> tuple[str, DeliveryStatus, int, datetime | None]:
    """(attempt outcome, new status, failures so far, next attempt) for one result."""
    failures = r.job.retry_index
    if r.ok:
        return "succeeded", DeliveryStatus.SUCCEEDED, failures, None
    if r.status_code == 410:
        return "gone", DeliveryStatus.FAILED, failures, None
    failures += 1
    retry_after = parse_retry_after(r.retry_after, now) if r.status_code in (429, 503) else None
    next_at = policy.retry.next_attempt_at(failures, now, retry_after=retry_after, rng=policy.rng)
    if next_at is None:
        return "failed", DeliveryStatus.FAILED, failures, None
    return (
        ("lease-expired" if r.error == LEASE_EXPIRED else "retrying"),
        DeliveryStatus.PENDING,
        failures,
        next_at,
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
        .where(status_is(D.c.status, DeliveryStatus.IN_FLIGHT), D.c.lease_expires_at < now)
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
