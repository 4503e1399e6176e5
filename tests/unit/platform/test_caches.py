"""The per-process caches (cms.platform.caches, cachetools behind a lock) under
threads: the worker's body cache and the API-key memo stay consistent, in their
contents, their byte and entry counts and the gauges that report them."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from cms.platform.caches import ByteLRU, ExpiringMemo
from cms.webhooks.dispatch import BodyCache
from cms.webhooks.endpoints import EndpointCache

THREADS = 8
ROUNDS = 3_000


def hammer(work: Callable[[int, int], None]) -> None:
    """``work(thread, i)`` from several threads at once, all started together, switching
    threads as often as the interpreter can (races show within a few rounds); re-raises."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def run(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(ROUNDS):
                work(n, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(switch)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert errors == [], errors[:3]


def gauge(metric: str, name: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"cache": name})


def body_for(key: tuple[int, str]) -> bytes:
    """Each key's value, of its own length (1-400 bytes), so a mixed-up entry shows."""
    n, fmt = key
    return f"{n}:{fmt};".encode() * (1 + n % 37)


def test_the_worker_body_cache_stays_consistent_under_threads():
    name = f"test-bodies-{uuid.uuid4().hex[:6]}"
    cache = BodyCache(max_bytes=20_000, name=name)
    keys = [(n, fmt) for n in range(300) for fmt in ("json", "ninjs")]

    def work(thread: int, i: int) -> None:
        key = keys[(i * 31 + thread * 97) % len(keys)]
        got = cache.get(key)
        if got is None:
            cache.put(key, body_for(key))
        else:
            assert got == body_for(key), key
        if i % 50 == 0:  # readers of the size while others write
            assert 0 <= cache.size <= 20_000

    hammer(work)
    held = dict(cache._cache.items())
    assert held and all(value == body_for(key) for key, value in held.items())
    # The byte accounting matches what is held, within the bound; the gauges say the same.
    assert cache.size == sum(len(v) for v in held.values()) <= 20_000
    assert len(cache) == len(held)
    assert gauge("cms_cache_bytes", name) == cache.size
    assert gauge("cms_cache_entries", name) == len(cache)


def test_a_value_over_an_eighth_of_the_cache_is_not_kept():
    cache = ByteLRU(None, 8_000)
    cache.put("small", b"x" * 1_000)
    cache.put("big", b"y" * 1_001)
    assert cache.get("small") == b"x" * 1_000 and cache.get("big") is None and cache.size == 1_000


def test_the_api_key_memo_stays_consistent_under_threads():
    name = f"test-memo-{uuid.uuid4().hex[:6]}"
    memo = ExpiringMemo(name, ttl=60, max_entries=100)

    def work(thread: int, i: int) -> None:
        key = (i * 7 + thread) % 250
        if i % 11 == 0:
            memo.forget(key)
        elif (value := memo.get(key)) is None:
            memo.put(key, ("actor", key))
        else:
            assert value == ("actor", key)

    hammer(work)
    held = dict(memo._cache.items())  # type: ignore[union-attr]
    assert 0 < len(held) <= 100 and all(value == ("actor", key) for key, value in held.items())
    assert len(memo) == len(held) and gauge("cms_cache_entries", name) == len(held)


def test_threads_never_get_endpoints_of_another_stamp():
    """A thread that read an older stamp and loaded late cannot pass its endpoints off
    as those of the newer stamp."""
    cache = EndpointCache()
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def subscription(version: int) -> Any:
        return SimpleNamespace(
            id=uuid.UUID(int=version),
            url=f"https://example.com/v{version}",
            format="json",
            enabled=True,
            max_in_flight=4,
            headers={},
            event_types=["*"],
            sections=[],
            tags=[],
            languages=[],
            embargo="hold",
            secret="whsec_" + "A" * 32,
            previous_secret=None,
            previous_secret_expires_at=None,
            partner_id=None,
        )

    class Session:
        """Answers the subscriptions of whatever version the caller's stamp names."""

        def __init__(self) -> None:
            self.version = 0

        def execute(self, _statement: Any) -> Any:
            return SimpleNamespace(all=lambda: [(subscription(self.version), None)])

    sessions = [Session() for _ in range(THREADS)]

    def work(thread: int, i: int) -> None:
        version = (i + thread) % 5
        session = sessions[thread]
        session.version = version
        endpoints = cache.get(session, (version,))  # type: ignore[arg-type]
        assert [e.url for e in endpoints.values()] == [f"https://example.com/v{version}"]
        assert all(e.keys_at(now) for e in endpoints.values())

    hammer(work)
