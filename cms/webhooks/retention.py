"""Retention of the delivery log: attempt rows of finished deliveries expire first,
then (after ``CMS_DELIVERY_RETENTION_DAYS``) the finished deliveries themselves.

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

Delivery rows are bounded the same way, later: a finished delivery not touched
for ``CMS_DELIVERY_RETENTION_DAYS`` (default 365) is deleted with its attempts,
and so are the rendered payloads of events left with no delivery. The events
themselves stay (they are the articles' change history). A walk follows the
``(created_at, id)`` index of the delivery log from the oldest row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select, tuple_
from sqlalchemy.orm import Session

from cms.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, EventPayload

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


def _walk(
    step: Callable[[Any], Any], commit: Callable[[], None], max_batches: int | None
) -> tuple[int, bool]:
    """Batch after batch, each committed by ``commit``, until a batch says it is the last."""
    total, after, batches = 0, None, 0
    while max_batches is None or batches < max_batches:
        batch = step(after)
        commit()
        total += batch.deleted
        batches += 1
        if batch.next_after is None:
            return total, True
        after = batch.next_after
    return total, False


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
    return _walk(
        lambda after: prune_attempts_batch(session, cutoff, after=after or 0, limit=limit, dry_run=dry_run),
        commit,
        max_batches,
    )


@dataclass(frozen=True)
class DeliveryBatch:
    deleted: int
    next_after: tuple[datetime, object] | None  # (created_at, id) to go on from; None: done


def prune_deliveries_batch(
    session: Session,
    cutoff: datetime,
    *,
    after: tuple[datetime, object] | None = None,
    limit: int = 1000,
    dry_run: bool = False,
) -> DeliveryBatch:
    """Delete (or count) finished deliveries last changed before ``cutoff``, among the
    next ``limit`` oldest rows, with their attempts and any payload left unused."""
    rows = _oldest_deliveries(session, after, limit)
    if not rows:
        return DeliveryBatch(0, None)
    expired = [r for r in rows if r.status in FINISHED and r.updated_at < cutoff]
    if expired and not dry_run:
        _delete_deliveries(session, expired)
    return DeliveryBatch(len(expired), _deliveries_next_after(rows, cutoff, limit))


def _oldest_deliveries(session: Session, after: tuple[datetime, object] | None, limit: int) -> Sequence[Any]:
    """The next ``limit`` deliveries along the ``(created_at, id)`` index, after ``after``."""
    stmt = select(Delivery.id, Delivery.created_at, Delivery.updated_at, Delivery.status, Delivery.event_id)
    if after is not None:
        stmt = stmt.where(tuple_(Delivery.created_at, Delivery.id) > tuple_(*after))
    return session.execute(stmt.order_by(Delivery.created_at, Delivery.id).limit(limit)).all()


def _delete_deliveries(session: Session, expired: Sequence[Any]) -> None:
    """The deliveries with their attempts, then their events' payloads that no delivery uses now."""
    ids = [r.id for r in expired]
    session.execute(
        delete(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(Delivery).where(Delivery.id.in_(ids)).execution_options(synchronize_session=False))
    events = {r.event_id for r in expired}
    session.execute(
        delete(EventPayload)
        .where(
            EventPayload.event_id.in_(events),
            ~exists().where(Delivery.event_id == EventPayload.event_id),
        )
        .execution_options(synchronize_session=False)
    )


def _deliveries_next_after(
    rows: Sequence[Any], cutoff: datetime, limit: int
) -> tuple[datetime, object] | None:
    """Where the walk goes on, or None when done: after a short batch, or one that
    reached rows created at or after the cutoff (those, and all later ones, changed
    after it)."""
    last = rows[-1]
    done = last.created_at >= cutoff or len(rows) < limit
    return None if done else (last.created_at, last.id)


def prune_deliveries(
    session: Session,
    cutoff: datetime,
    *,
    commit: Callable[[], None],
    max_batches: int | None = None,
    dry_run: bool = False,
    limit: int = 1000,
) -> tuple[int, bool]:
    """Like :func:`prune_attempts`, for whole finished deliveries."""
    return _walk(
        lambda after: prune_deliveries_batch(session, cutoff, after=after, limit=limit, dry_run=dry_run),
        commit,
        max_batches,
    )
