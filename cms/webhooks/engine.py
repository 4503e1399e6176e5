"""Per worker process: the Flask app, the sending loop and the outcome recorder.

Sending happens on one asyncio loop per process, in a background thread, with
one HTTP client (keep-alive connections to every endpoint). A task hands
its jobs to the loop and waits for them only briefly: a hanging endpoint
keeps one coroutine busy until its timeout, never a worker process. Outcomes
go to a recorder thread that writes them in bulk, one transaction per batch,
and immediately claims what they unblocked (the next event of an article, a
freed in-flight slot). Whatever is still in flight when a process dies is
re-sent by the sweep once its database lease expires.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from cms.events.outbox import NOTIFY_CHANNEL
from cms.platform import logs, metrics
from cms.platform.broker import DELIVER_TASK, DELIVERIES_QUEUE, RELAY_TASK, RETRIES_QUEUE
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.platform.supervision import ThreadState, supervise
from cms.webhooks import dispatch, fanout, outcomes
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.policy import policy as delivery_policy
from cms.webhooks.transport.sender import Job, Lanes, Result, Sender
from cms.webhooks.transport.urls import parse_networks

log = logging.getLogger("workers")
T = TypeVar("T")

TASK_WAIT_SECONDS = 1.0  # how long a task waits for its own sends before returning
MAX_OUTSTANDING = 20_000  # jobs queued in one process's loop before submitters wait
RECORD_BATCH = 1000
RECORD_WINDOW = 0.005  # seconds to gather more outcomes into one transaction
RELAY_EVENTS = 100  # events per relay transaction
RELAY_ROUNDS = 50
CLAIM_LIMIT = 10_000
MAX_CONNECTIONS = 2000  # concurrent requests per worker process (file descriptors)
RETRY_CONNECTIONS = MAX_CONNECTIONS // 2  # retries never hold more than half
SWEEP_LIMIT = 2000  # due retries claimed per sweep run


class Runtime:
    """Everything one worker process needs; build with ``Runtime.start``."""

    def __init__(self, app: Flask, send_task: Callable[..., Any]) -> None:
        self.app = app
        self.config = app.config
        self.policy = delivery_policy(app.config)
        self.endpoints = EndpointCache()
        self.bodies = dispatch.BodyCache(
            max_bytes=int(float(app.config["CMS_WORKER_BODY_CACHE_MB"]) * 2**20), name="webhook-bodies"
        )
        self.batch = int(app.config["CMS_WEBHOOK_BATCH"])
        self._send_task = send_task
        self.loop = asyncio.new_event_loop()
        self.sender = Sender(
            allowed=parse_networks(app.config["CMS_WEBHOOK_ALLOWED_NETWORKS"]),
            connect_timeout=float(app.config["CMS_WEBHOOK_CONNECT_TIMEOUT"]),
            total_timeout=float(app.config["CMS_WEBHOOK_TIMEOUT"]),
            max_connections=MAX_CONNECTIONS,
        )
        self._lanes: Lanes | None = None  # created inside the loop
        self._results: queue.Queue[Result | None] = queue.Queue()
        self._pending: list[Result] = []  # outcomes taken from the queue, not yet committed
        self._outstanding = 0
        self._room = threading.Condition()
        self._stopping = threading.Event()
        self._recorded_all = threading.Event()  # the recorder met the end-of-results marker
        self._wake = threading.Event()
        self.threads: dict[str, ThreadState] = {}

    @classmethod
    def start(cls, app: Flask, send_task: Callable[..., Any]) -> Runtime:
        """Start the threads on ``app`` (built by the caller with ``role="worker"``)."""
        runtime = cls(app, send_task)
        runtime._supervise("webhook-sender", runtime._run_loop, runtime._stopping)
        asyncio.run_coroutine_threadsafe(runtime.sender.open(), runtime.loop).result(timeout=10)
        runtime._supervise("webhook-recorder", runtime._record_round, runtime._recorded_all)
        url = runtime.app.config["SQLALCHEMY_DATABASE_URI"]
        if runtime.app.config["CMS_RELAY_LISTEN"] and url.startswith("postgresql"):
            runtime._supervise("outbox-listener", lambda: runtime._listen(url), runtime._stopping)
            runtime._supervise("outbox-relay", runtime._relay_round, runtime._stopping)
        return runtime

    def _supervise(self, name: str, step: Callable[[], None], until: threading.Event) -> None:
        self.threads[name] = supervise(name, step, until)

    # ------------------------------------------------------------ listening

    def _listen(self, url: str) -> None:
        """Wake the relay whenever a transaction commits outbox events (PostgreSQL NOTIFY).
        A lost connection raises, and the supervisor connects again after a backoff."""
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, application_name="cms-worker-listener") as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            state = self.threads.get("outbox-listener")  # (not yet there on the very first call)
            if state is not None:
                state.recovered()  # this step only returns when stopping
            self._wake.set()  # catch up on whatever committed while we were not listening
            while not self._stopping.is_set():
                for _notify in conn.notifies(timeout=1.0):
                    self._wake.set()

    def _relay_round(self) -> None:
        if self._wake.wait(timeout=1.0):
            self._wake.clear()
            try:
                self.relay()
            except Exception:
                self._wake.set()  # try again after the backoff, not only at the next event
                raise

    # ------------------------------------------------------------------ loop

    def _run_loop(self) -> None:
        """Until ``close`` stops the loop; should it ever fail, the supervisor runs it again."""
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _send_one(self, job: Job) -> Result:
        if self._lanes is None:
            self._lanes = Lanes(retry_limit=RETRY_CONNECTIONS)
        async with self._lanes.slot(job):
            result = await self.sender.send(job)
        self._results.put(result)
        with self._room:
            self._outstanding -= 1
            self._room.notify_all()
        return result

    async def _send_batch(self, jobs: Sequence[Job]) -> list[Result]:
        return list(await asyncio.gather(*(self._send_one(job) for job in jobs)))

    def submit(self, jobs: Sequence[Job]) -> concurrent.futures.Future[list[Result]]:
        """Start sending ``jobs`` on the loop; outcomes are recorded whatever the caller does."""
        with self._room:
            while self._outstanding > MAX_OUTSTANDING and not self._stopping.is_set():
                self._room.wait(timeout=1.0)
            self._outstanding += len(jobs)
        return asyncio.run_coroutine_threadsafe(self._send_batch(jobs), self.loop)

    def send_and_wait(self, jobs: Sequence[Job], wait: float = TASK_WAIT_SECONDS) -> None:
        if not jobs:
            return
        future = self.submit(jobs)
        # Slow endpoints finish in the background; their leases cover a crash.
        with contextlib.suppress(concurrent.futures.TimeoutError):
            future.result(timeout=wait)

    def dispatch(self, jobs: Sequence[Job], *, wait: bool = True) -> None:
        """Send the first batch here and queue the rest for other worker processes.

        If the broker is unreachable the rest is sent here too: the jobs are
        already claimed, and waiting for their leases to expire would only
        delay them.
        """
        if not jobs:
            return
        local, rest = list(jobs[: self.batch]), list(jobs[self.batch :])
        while rest:
            chunk, rest = rest[: self.batch], rest[self.batch :]
            queue_name = DELIVERIES_QUEUE if chunk[0].attempt == 1 else RETRIES_QUEUE
            try:
                self._send_task(DELIVER_TASK, args=[[str(j.delivery_id) for j in chunk]], queue=queue_name)
            except Exception as exc:
                log.warning("could not queue %d deliveries (%s); sending them here", len(chunk), exc)
                local.extend(chunk)
        if wait:
            self.send_and_wait(local)
        else:
            self.submit(local)

    # -------------------------------------------------------------- recorder

    def _record_round(self) -> None:
        """Record one batch of outcomes. A batch is kept until it is committed: if the
        database is gone, the same outcomes are written once it is back, so no delivery
        waits for its lease to expire and goes out twice."""
        if not self._pending:
            self._pending = self._next_batch()
            if not self._pending:
                return
        with self.app.app_context():
            try:
                done = self._in_transaction(
                    lambda now: outcomes.record(db.session, self._pending, now, self.policy)
                )
            except Exception:
                _discard_session()
                raise
            results, self._pending = self._pending, []
            self._observe(results, done.outcomes)
            if done.disabled:
                self.nudge_relay()
            if done.subscriptions:
                # A separate transaction, after the outcomes are committed: a relay
                # committing a successor at the same moment either sees our outcome
                # when it re-checks, or we see its delivery here.
                self._claim_and_send(subscription_ids=done.subscriptions)

    def _next_batch(self) -> list[Result]:
        """Outcomes that arrive within RECORD_WINDOW of the first, up to RECORD_BATCH."""
        try:
            first = self._results.get(timeout=1.0)
        except queue.Empty:
            return []
        if first is None:
            self._recorded_all.set()
            return []
        batch = [first]
        deadline = time.monotonic() + RECORD_WINDOW
        while len(batch) < RECORD_BATCH:
            remaining = deadline - time.monotonic()
            try:
                item = self._results.get(timeout=remaining) if remaining > 0 else self._results.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._recorded_all.set()  # record this batch, then stop
                break
            batch.append(item)
        return batch

    def _observe(self, results: list[Result], outcomes: list[str]) -> None:
        """Metrics for every attempt; a log line for each one that did not succeed."""
        m = metrics.get()
        for result, outcome in zip(results, outcomes, strict=True):
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

    def _in_transaction(self, work: Callable[[datetime], T]) -> T:
        """Run ``work(now)`` and commit, retrying twice on database errors."""
        for attempt in range(3):
            try:
                value = work(utcnow())
                db.session.commit()
                return value
            except DBAPIError:
                _discard_session()
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _claim_and_send(self, **scope: Any) -> None:
        def work(now: datetime) -> list[Job]:
            if "subscription_ids" in scope and not dispatch.has_due(
                db.session, now, scope["subscription_ids"]
            ):
                return []
            return dispatch.claim(
                db.session,
                now,
                self.policy,
                limit=CLAIM_LIMIT,
                endpoints=self.endpoints.get(db.session),
                bodies=self.bodies,
                **scope,
            )

        self.dispatch(self._in_transaction(work), wait=False)

    def nudge_relay(self) -> None:
        try:
            self._send_task(RELAY_TASK)
        except Exception:
            log.warning("could not queue a relay; the periodic one will run")

    # ----------------------------------------------------------------- tasks

    def relay(self) -> int:
        """Fan out every ready event and send what can go now; returns events relayed."""
        total = 0
        for _ in range(RELAY_ROUNDS):
            with self.app.app_context():
                relayed = self._in_transaction(
                    lambda now: fanout.relay(
                        db.session, now, self.policy, self.endpoints, limit=RELAY_EVENTS, bodies=self.bodies
                    )
                )
                if not relayed.event_ids:
                    break
                total += len(relayed.event_ids)
                for event_id, event_type, count in relayed.summary:
                    metrics.get().events_relayed.labels(event_type).inc()
                    with logs.bound(event_id=str(event_id)):
                        log.info(
                            "relayed %s to %d subscription(s)",
                            event_type,
                            count,
                            extra={"event_type": event_type, "deliveries": count},
                        )
                self.dispatch(relayed.jobs, wait=False)
                if relayed.waiting:
                    # Some had to wait (an earlier event still open, the in-flight
                    # cap, a paused subscription). Look again now that they are
                    # committed: an outcome recorded meanwhile may have released them.
                    self._claim_and_send(event_ids=relayed.event_ids)
        return total

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        with self.app.app_context():
            now = utcnow()
            jobs = dispatch.load_jobs(
                db.session,
                [uuid.UUID(i) for i in delivery_ids],
                now,
                self.endpoints.get(db.session),
                self.bodies,
            )
            db.session.rollback()
        self.dispatch(jobs, wait=False)

    def sweep(self) -> int:
        """Expired leases back to the schedule, then send everything that is due."""
        with self.app.app_context():
            expired = self._in_transaction(lambda now: outcomes.expire_leases(db.session, now, self.policy))
            if expired.disabled:
                self.nudge_relay()
            sent = 0
            while sent < SWEEP_LIMIT:
                jobs = self._in_transaction(
                    lambda now, sent=sent: dispatch.claim(
                        db.session,
                        now,
                        self.policy,
                        limit=min(1000, SWEEP_LIMIT - sent),
                        endpoints=self.endpoints.get(db.session),
                        bodies=self.bodies,
                    )
                )
                if not jobs:
                    break
                sent += len(jobs)
                self.dispatch(jobs, wait=False)
        return sent

    def close(self, timeout: float = 10.0) -> None:
        """Let sends in progress finish (up to ``timeout``), record them, stop."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._room:
            while self._outstanding > 0 and time.monotonic() < deadline:
                self._room.wait(timeout=0.1)
        self._results.put(None)
        recorder = self.threads["webhook-recorder"].thread
        if recorder is not None:
            recorder.join(timeout=max(1.0, deadline - time.monotonic()))
        asyncio.run_coroutine_threadsafe(self.sender.close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _discard_session() -> None:
    """Drop the session and its connection, which may be dead: the next use starts afresh."""
    with contextlib.suppress(Exception):
        db.session.rollback()
    with contextlib.suppress(Exception):
        db.session.remove()


_runtime: Runtime | None = None
_pid: int | None = None
_lock = threading.Lock()


def get_runtime(make_app: Callable[[], Flask], send_task: Callable[..., Any]) -> Runtime:
    """This process's runtime (a forked child never reuses its parent's)."""
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            _runtime = Runtime.start(make_app(), send_task)
            _pid = os.getpid()
        return _runtime


def shutdown() -> None:
    global _runtime
    with _lock:
        if _runtime is not None and _pid == os.getpid():
            _runtime.close()
        _runtime = None
