"""The recorder: outcomes of sends, written in bulk, one transaction per batch.

A batch is kept until it is committed: if the database is gone, the same
outcomes are written once it is back, so no delivery waits for its lease to
expire and goes out twice. After each batch the caller claims what the
outcomes unblocked (the next event of an article, a freed in-flight slot).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from flask import Flask
from sqlalchemy.exc import DBAPIError

from cms.platform import logs, metrics
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import outcomes
from cms.webhooks.outcomes import Recorded
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.sender import Result

log = logging.getLogger("workers")
T = TypeVar("T")

RECORD_BATCH = 1000
RECORD_WINDOW = 0.005  # seconds to gather more outcomes into one transaction


def in_transaction(work: Callable[[datetime], T]) -> T:
    """Run ``work(now)`` on the app's session and commit, retrying twice on database errors."""
    for attempt in range(3):
        try:
            value = work(utcnow())
            db.session.commit()
            return value
        except DBAPIError:
            discard_session()
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def discard_session() -> None:
    """Drop the session and its connection, which may be dead: the next use starts afresh."""
    with contextlib.suppress(Exception):
        db.session.rollback()
    with contextlib.suppress(Exception):
        db.session.remove()


class Recorder:
    def __init__(
        self,
        app: Flask,
        policy: DeliveryPolicy,
        results: queue.SimpleQueue[Result | None],
        then: Callable[[Recorded], None],
    ) -> None:
        self.app = app
        self.policy = policy
        self.results = results
        self.finished = threading.Event()  # met the end-of-results marker (None)
        self._then = then
        self._pending: list[Result] = []  # taken from the queue, not yet committed

    def round(self) -> None:
        """Record one batch of outcomes (the supervised thread's step)."""
        if not self._pending:
            self._pending = self._next_batch()
            if not self._pending:
                return
        with self.app.app_context():
            try:
                done = in_transaction(
                    lambda now: outcomes.record(db.session, self._pending, now, self.policy)
                )
            except Exception:
                discard_session()
                raise
            results, self._pending = self._pending, []
            observe(results, done.outcomes)
            self._then(done)

    def _next_batch(self) -> list[Result]:
        """Outcomes that arrive within RECORD_WINDOW of the first, up to RECORD_BATCH."""
        try:
            first = self.results.get(timeout=1.0)
        except queue.Empty:
            return []
        if first is None:
            self.finished.set()
            return []
        batch = [first]
        deadline = time.monotonic() + RECORD_WINDOW
        while len(batch) < RECORD_BATCH:
            remaining = deadline - time.monotonic()
            try:
                item = self.results.get(timeout=remaining) if remaining > 0 else self.results.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self.finished.set()  # record this batch, then stop
                break
            batch.append(item)
        return batch


def observe(results: list[Result], labels: list[str]) -> None:
    """Metrics for every attempt; a log line for each one that did not succeed."""
    m = metrics.get()
    for result, outcome in zip(results, labels, strict=True):
        m.deliveries.labels(outcome).inc()
        m.delivery_duration.observe(result.duration_ms / 1000)
        if outcome == "succeeded":
            continue
        job = result.job
        with logs.bound(event_id=str(job.event_id), delivery_id=str(job.delivery_id)):
            log.log(
                logging.ERROR if outcome in ("failed", "gone") else logging.WARNING,
                "delivery attempt %d %s: %s",
                job.attempt,
                outcome,
                result.error or f"HTTP {result.status_code}",
                extra=logs.fields(
                    subscription_id=str(job.subscription_id),
                    url=logs.safe_url(job.url) if job.url else None,
                    attempt=job.attempt,
                    outcome=outcome,
                    status_code=result.status_code,
                    duration_ms=result.duration_ms,
                ),
            )
