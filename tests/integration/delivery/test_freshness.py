"""The content cache serves nothing while its listener cannot hear commits."""

from __future__ import annotations

from cms.delivery.freshness import ProjectionCache
from tests.helpers import eventually


def test_without_its_listener_the_cache_keeps_and_serves_nothing():
    cache = ProjectionCache("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", 10)  # nothing listens
    try:
        row, token = cache.get(("id", 1))
        assert row is None and token is None
        cache.put(("id", 1), "a row", token)
        eventually(lambda: cache.state is not None and not cache.state.up, what="the listener to report down")
        assert cache.get(("id", 1)) == (None, None)
    finally:
        cache.stop()


def test_sqlite_has_no_cache():
    cache = ProjectionCache("sqlite:///var/x.sqlite3", 10)
    assert not cache.enabled and cache.get(("id", 1)) == (None, None) and cache.state is None
