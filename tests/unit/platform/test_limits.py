"""Partner request rates (the limits library): counted per key, and a failing storage
lets requests through (counted) rather than taking the content API down."""

from __future__ import annotations

from prometheus_client import REGISTRY

from cms.platform.http.limits import RateLimiter


def test_requests_over_the_rate_wait_and_keys_are_counted_apart():
    limiter = RateLimiter("memory://")
    assert [limiter.refused("a", 3) for _ in range(3)] == [None, None, None]
    wait = limiter.refused("a", 3)
    assert wait is not None and 1 <= wait <= 60
    assert limiter.refused("b", 3) is None


def test_a_storage_that_fails_lets_requests_through_and_says_so():
    before = REGISTRY.get_sample_value("cms_rate_limit_errors_total") or 0
    limiter = RateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert [limiter.refused("a", 1) for _ in range(3)] == [None, None, None]
    assert REGISTRY.get_sample_value("cms_rate_limit_errors_total") == before + 3
