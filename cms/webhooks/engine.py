"""The per-process webhook engine: relay, deliver and sweep, on supervised threads.

Each worker process has one ``Runtime``: the sending loop (``sending``), the
outcome recorder (``recorder``) and, on PostgreSQL, a LISTEN thread that wakes
the relay as soon as an outbox row commits. The Celery tasks in ``workers``
only call ``relay``, ``deliver`` and ``sweep`` here. Whatever is still in
flight when a process dies is re-sent by the sweep once its database lease
expires.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask

from cms.events.outbox import NOTIFY_CHANNEL
from cms.platform import logs, metrics, notifications
from cms.platform.broker import DELIVER_TASK, DELIVERIES_QUEUE, RELAY_TASK, RETRIES_QUEUE
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.platform.supervision import ThreadState, supervise
from cms.webhooks import dispatch, fanout, outcomes
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.outcomes import Recorded
from cms.webhooks.policy import policy as delivery_policy
from cms.webhooks.recorder import Recorder, in_transaction
from cms.webhooks.sending import SendingLoop
from cms.webhooks.transport.sender import Job, Result, Sender
from cms.webhooks.transport.urls import parse_networks

log = logging.getLogger("workers")
T = TypeVar("T")

TASK_WAIT_SECONDS = 1.0  # how long a task waits for its own sends before returning
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
        self._stopping = threading.Event()
        self._wake = threading.Event()
        results: queue.SimpleQueue[Result | None] = queue.SimpleQueue()
        self._results = results
        self.sending = SendingLoop(
            Sender(
                allowed=parse_networks(app.config["CMS_WEBHOOK_ALLOWED_NETWORKS"]),
                connect_timeout=float(app.config["CMS_WEBHOOK_CONNECT_TIMEOUT"]),
                total_timeout=float(app.config["CMS_WEBHOOK_TIMEOUT"]),
                max_connections=MAX_CONNECTIONS,
                connections_per_host=int(app.config["CMS_WEBHOOK_CONNECTIONS_PER_HOST"]),
                proxy=app.config["CMS_WEBHOOK_PROXY"] or None,
            ),
            results,
            retry_limit=RETRY_CONNECTIONS,
            stopping=self._stopping,
        )
        self.recorder = Recorder(app, self.policy, results, then=self._after_recording)
        self.threads: dict[str, ThreadState] = {}

    @classmethod
    def start(cls, app: Flask, send_task: Callable[..., Any]) -> Runtime:
        """Start the threads on ``app`` (built by the caller with ``role="worker"``)."""
        runtime = cls(app, send_task)
        runtime._supervise("webhook-sender", runtime.sending.run, runtime._stopping)
        runtime.sending.open()
        runtime._supervise("webhook-recorder", runtime.recorder.round, runtime.recorder.finished)
        url = runtime.app.config["SQLALCHEMY_DATABASE_URI"]
        if runtime.app.config["CMS_RELAY_LISTEN"] and url.startswith("postgresql"):
            runtime._supervise("outbox-listener", lambda: runtime._listen(url), runtime._stopping)
            runtime._supervise("outbox-relay", runtime._relay_round, runtime._stopping)
        return runtime

    def _supervise(self, name: str, step: Callable[[], None], until: threading.Event) -> None:
        self.threads[name] = supervise(name, step, until)

    # ------------------------------------------------------------ listening

    def _listen(self, url: str) -> None:
        """Wake the relay whenever a transaction commits outbox events (PostgreSQL NOTIFY)."""

        def connected() -> None:
            state = self.threads.get("outbox-listener")  # (not yet there on the very first call)
            if state is not None:
                state.recovered()  # this step only returns when stopping
            self._wake.set()  # catch up on whatever committed while we were not listening

        notifications.listen(
            url,
            NOTIFY_CHANNEL,
            application_name="cms-worker-listener",
            connected=connected,
            notified=self._wake.set,
            stopping=self._stopping,
        )

    def _relay_round(self) -> None:
        if self._wake.wait(timeout=1.0):
            self._wake.clear()
            try:
                self.relay()
            except Exception:
                self._wake.set()  # try again after the backoff, not only at the next event
                raise

    # -------------------------------------------------------------- sending

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
            self.sending.send_and_wait(local, TASK_WAIT_SECONDS)
        else:
            self.sending.submit(local)

    # -------------------------------------------------------------- recorder

    def _after_recording(self, done: Recorded) -> None:
        if done.disabled:
            self.nudge_relay()
        if done.subscriptions:
            # A separate transaction, after the outcomes are committed: a relay
            # committing a successor at the same moment either sees our outcome
            # when it re-checks, or we see its delivery here.
            self._claim_and_send(subscription_ids=done.subscriptions)

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

        self.dispatch(in_transaction(work), wait=False)

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
                relayed = in_transaction(
                    lambda now: fanout.relay(
                        db.session, now, self.policy, self.endpoints, limit=RELAY_EVENTS, bodies=self.bodies
                    )
                )
                if not relayed.event_ids:
                    break
                total += len(relayed.event_ids)
                self.dispatch(relayed.jobs, wait=False)  # first: partners before our log lines
                for event_id, event_type, count in relayed.summary:
                    metrics.get().events_relayed.labels(event_type).inc()
                    with logs.bound(event_id=str(event_id)):
                        log.info(
                            "relayed %s to %d subscription(s)",
                            event_type,
                            count,
                            extra={"event_type": event_type, "deliveries": count},
                        )
                if relayed.waiting or relayed.released:
                    # Some had to wait (an earlier event still open, the in-flight
                    # cap, a paused subscription). Look again now that they are
                    # committed: an outcome recorded meanwhile may have released them.
                    # An embargo's lift released held deliveries of earlier events.
                    self._claim_and_send(event_ids=[*relayed.event_ids, *relayed.released])
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
            expired = in_transaction(lambda now: outcomes.expire_leases(db.session, now, self.policy))
            if expired.disabled:
                self.nudge_relay()
            sent = 0
            while sent < SWEEP_LIMIT:
                jobs = in_transaction(
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
        self.sending.drain(deadline)
        self._results.put(None)
        recorder = self.threads["webhook-recorder"].thread
        if recorder is not None:
            recorder.join(timeout=max(1.0, deadline - time.monotonic()))
        self.sending.close()


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
