"""Retention of the delivery log: attempt rows of finished deliveries expire.

Every HTTP attempt writes a ``delivery_attempts`` row with up to 4 KB of the
receiver's answer, so the log is by far the fastest-growing table. After
``CMS_DELIVERY_LOG_DAYS`` the attempt rows of deliveries that are finished
(succeeded, failed, cancelled) are deleted. What a partner or an operator
needs for good is kept: the events, their rendered payloads (redelivery sends
the same bytes), and each delivery's row with its status, attempt count, last
status code and error. Attempts of open deliveries are never touched.

Attempt ids grow with time, so a prune walks the primary key from the oldest
row in bounded batches and stops at the first batch with nothing old enough:
no index on ``attempted_at`` is needed, and each batch is its own transaction
(the caller commits), so pruning never holds long locks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cms.models import Delivery, DeliveryAttempt, DeliveryStatus

FINISHED = (DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value, DeliveryStatus.CANCELLED.value)


@dataclass(frozen=True)
class Batch:
    """One step of a prune: rows deleted (or that would be), and where to go on from."""

    deleted: int
    next_after: int | None  # None: nothing older than the cutoff remains past this batch


def prune_attempts_batch(
    session: Session, cutoff: datetime, *, after: int = 0, limit: int = 2000, dry_run: bool = False
) -> Batch:
    """Delete (or with ``dry_run`` count) expired attempts among the next ``limit`` rows by id."""
    rows = session.execute(
        select(DeliveryAttempt.id, DeliveryAttempt.attempted_at, Delivery.status)
        .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(DeliveryAttempt.id > after)
        .order_by(DeliveryAttempt.id)
        .limit(limit)
    ).all()
    if not rows:
        return Batch(0, None)
    old = [r for r in rows if r.attempted_at < cutoff]
    expired = [r.id for r in old if r.status in FINISHED]
    if expired and not dry_run:
        session.execute(
            delete(DeliveryAttempt)
            .where(DeliveryAttempt.id.in_(expired))
            .execution_options(synchronize_session=False)
        )
    # Ids follow time only roughly (workers record in batches), so stop at a batch
    # holding nothing old rather than at the first recent row.
    done = not old or len(rows) < limit
    return Batch(len(expired), None if done else rows[-1].id)


def prune_attempts(
    session: Session,
    cutoff: datetime,
    *,
    commit: Callable[[], None],
    max_batches: int | None = None,
    dry_run: bool = False,
    limit: int = 2000,
) -> tuple[int, bool]:
    """Batch after batch until nothing expired is left (or ``max_batches``).

    ``commit`` is the caller's: the command or task that owns the unit of work
    ends each batch's transaction with it. Returns ``(rows, finished)``.
    """
    total, after, batches = 0, 0, 0
    while max_batches is None or batches < max_batches:
        batch = prune_attempts_batch(session, cutoff, after=after, limit=limit, dry_run=dry_run)
        commit()
        total += batch.deleted
        batches += 1
        if batch.next_after is None:
            return total, True
        after = batch.next_after
    return total, False
