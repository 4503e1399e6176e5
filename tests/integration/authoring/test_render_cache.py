"""The serialised-body cache: bounded by bytes, never stale."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from cms.authoring.render_cache import RenderCache
from cms.content.reads import ArticleView


def _view(**changes) -> ArticleView:
    now = datetime(2024, 11, 7, 20, 50, tzinfo=UTC)
    base = ArticleView(
        uuid.UUID(int=1), "draft", 1, None, None, now, now, None, None, None, "desk", {"headline": "x"}
    )
    return replace(base, **changes)


def test_a_changed_representation_is_never_served_from_cache():
    cache = RenderCache(max_bytes=10_000)
    renders: list[ArticleView] = []

    def render(item: ArticleView) -> bytes:
        renders.append(item)
        return f"{item.state}/{item.version}/{item.kill_reason}".encode()

    first = _view()
    assert cache.body(first, render) == b"draft/1/None"
    assert cache.body(first, render) == b"draft/1/None" and len(renders) == 1
    later = first.updated_at + timedelta(seconds=1)
    # Same instant (a frozen clock), different state or reason: still a different key.
    assert cache.body(replace(first, state="published"), render) == b"published/1/None"
    assert cache.body(replace(first, state="killed", kill_reason="a"), render) == b"killed/1/a"
    assert cache.body(replace(first, state="killed", kill_reason="b"), render) == b"killed/1/b"
    assert cache.body(replace(first, version=2, updated_at=later), render) == b"draft/2/None"
    assert len(renders) == 5


def test_bounded_by_bytes_least_recently_used_first():
    cache = RenderCache(max_bytes=8_000)
    views = [_view(id=uuid.UUID(int=n)) for n in range(10)]
    for v in views:
        cache.body(v, lambda item: b"x" * 1_000)
    assert cache.size <= 8_000
    huge = _view(id=uuid.UUID(int=99))
    assert cache.body(huge, lambda item: b"y" * 5_000) == b"y" * 5_000  # too big to keep
    assert cache.size <= 8_000
    assert all(len(body) == 1_000 for body in cache._bodies._cache.values())
    # The oldest went first; the most recent stayed; and the metrics say how much is held.
    renders: list[int] = []
    cache.body(views[-1], lambda item: renders.append(1) or b"z")
    cache.body(views[0], lambda item: renders.append(0) or b"x" * 1_000)
    assert renders == [0]
    assert REGISTRY.get_sample_value("cms_cache_bytes", {"cache": "article-bodies"}) == cache.size


def test_caches_are_safe_to_share_between_threads():
    """gthread workers share one cache: many threads reading and evicting at once."""
    cache = RenderCache(max_bytes=20_000)
    views = [_view(id=uuid.UUID(int=n)) for n in range(200)]
    errors: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for i in range(2_000):
                v = views[(i * 7 + offset) % len(views)]
                assert cache.body(v, lambda item: str(item.id).encode() * 20) == str(v.id).encode() * 20
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.size <= 20_000


def test_the_fast_renderer_equals_the_article_schema():
    """GET /articles/{id} renders without marshmallow; it must say exactly what the schema says."""
    import json

    from cms.authoring.api import present, render
    from tests.helpers import seed_fields

    seed = {**seed_fields(), "slug": "putin-congratulated-trump"}
    minimal = {
        "headline": "x",
        "standfirst": None,
        "body": "",
        "byline": None,
        "dateline": None,
        "section": None,
        "tags": [],
        "language": "bg",
        "slug": "x",
        "lead_image": None,
        "credits": [],
        "editor_note": None,
    }
    later = datetime(2024, 11, 8, 9, 30, 15, 123456, tzinfo=UTC)
    for content in (seed, minimal):
        for view in (
            _view(content=content),
            _view(
                content=json.dumps(content),
                state="killed",
                kill_reason="Legal",
                version=7,
                published_version=5,
                first_published_at=later,
                published_at=later,
                updated_at=later,
            ),
        ):
            assert json.loads(render(view)) == present(view)
