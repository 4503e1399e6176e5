"""Supervised worker threads: any error is survived, with backoff, and shows in metrics."""

from __future__ import annotations

import itertools
import threading
import time

from prometheus_client import REGISTRY

from cms.platform.supervision import Backoff, supervise


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("cms_worker_thread_up", {"thread": name})


def eventually(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_a_failing_step_is_retried_with_backoff_and_reported_down_until_it_works():
    stop = threading.Event()
    calls: list[float] = []
    may_succeed = threading.Event()

    def step() -> None:
        calls.append(time.monotonic())
        if not may_succeed.is_set():
            raise ConnectionError("database gone")
        stop.wait(0.01)

    state = supervise("test-thread", step, stop, backoff=Backoff(first=0.05, most=0.2))
    try:
        eventually(lambda: len(calls) >= 4)
        assert not state.up and state.failures >= 4 and "database gone" in state.last_error
        assert gauge("test-thread") == 0
        waits = [b - a for a, b in itertools.pairwise(calls)]
        assert waits[0] >= 0.045 and waits[1] >= 0.095  # 0.05, then doubled (the cap: below)
        may_succeed.set()
        eventually(lambda: state.up)
        assert gauge("test-thread") == 1 and state.thread.is_alive()
    finally:
        stop.set()
        state.thread.join(timeout=5)
    assert not state.thread.is_alive()


def test_backoff_doubles_up_to_its_cap_and_resets():
    b = Backoff(first=0.1, most=0.5)
    assert [b.failed() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.failed() == 0.1
