"""Long-lived threads that survive any error, with backoff, and say when they are down.

A worker process runs a few threads for its whole life (the sending loop, the
outcome recorder, the outbox listener and relay). If one of them died on a lost
database connection, that process would quietly stop doing its part. Each runs
its body through :func:`supervise` instead: an error is logged, the thread is
marked down in the ``cms_worker_thread_up`` gauge, and the body runs again after
a backoff (0.1 s doubling to 5 s) until it succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cms.platform import metrics

log = logging.getLogger("workers")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


class Backoff:
    """Wait times after consecutive failures; :meth:`reset` after a success."""

    def __init__(self, first: float = BACKOFF_FIRST, most: float = BACKOFF_MAX) -> None:
        self.first, self.most, self.next = first, most, first

    def failed(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.most)
        return delay

    def reset(self) -> None:
        self.next = self.first


class ThreadState:
    """What one supervised thread reports: up or not, and how often it failed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.failures = 0
        self.last_error: str | None = None
        self.thread: threading.Thread | None = None
        metrics.get().worker_thread_up.labels(name).set(1)

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.up:
            log.error("%s thread failed (%s); retrying", self.name, self.last_error, exc_info=exc)
        self.up = False
        m = metrics.get()
        m.worker_thread_up.labels(self.name).set(0)
        m.worker_thread_errors.labels(self.name).inc()

    def recovered(self) -> None:
        if not self.up:
            log.warning("%s thread recovered after %d failure(s)", self.name, self.failures)
            self.up = True
            metrics.get().worker_thread_up.labels(self.name).set(1)


def supervise(
    name: str,
    step: Callable[[], None],
    stopping: threading.Event,
    *,
    backoff: Backoff | None = None,
) -> ThreadState:
    """Start a daemon thread that calls ``step()`` until ``stopping`` is set.

    ``step`` does one round of work and returns; an exception is recorded and the
    round is tried again after the backoff. The returned state is for health checks.
    """
    state = ThreadState(name)
    wait = backoff or Backoff()

    def run() -> None:
        while not stopping.is_set():
            try:
                step()
            except Exception as exc:
                state.failed(exc)
                stopping.wait(wait.failed())
            else:
                wait.reset()
                state.recovered()

    state.thread = threading.Thread(target=run, name=name, daemon=True)
    state.thread.start()
    return state
