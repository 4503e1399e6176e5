"""Webhook bodies: the Standard Webhooks envelope around one of the formats.

Every body is ``{"type", "timestamp", "data"}``. Bodies are rendered once per
(event, format) and stored, so every subscriber and every retry gets the same
bytes; only the signature is computed per send. A format is a module with a
``data(facts)`` function, registered in ``FORMATS`` (which is also the list a
subscription chooses from).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cms.content.formats import json_format, ninjs, ninjs3
from cms.content.formats.facts import EventFacts, timestamp

FORMATS: dict[str, Callable[[EventFacts], dict[str, Any]]] = {
    "json": json_format.data,
    "ninjs": ninjs.data,
    "ninjs3": ninjs3.data,
}

__all__ = ["FORMATS", "MEDIA_TYPES", "EventFacts", "item", "render"]

# What the content API answers each format with.
MEDIA_TYPES = {
    "json": "application/json",
    "ninjs": "application/ninjs+json; version=2.1",
    "ninjs3": "application/ninjs+json; version=3.1",
}


def item(facts: EventFacts, fmt: str) -> dict[str, Any]:
    """The article alone in format ``fmt``, as the content API serves it: for ``json``
    the article (what a webhook's ``data.article`` holds), else the news item."""
    if fmt == "json":
        assert facts.article is not None
        return json_format.article_json(facts.article, facts.version, facts.embargo_until)
    return FORMATS[fmt](facts)


def render(facts: EventFacts, fmt: str) -> bytes:
    """The webhook body for ``facts`` in format ``fmt``."""
    # System events have no news item; they use our JSON in every format.
    data = FORMATS[fmt](facts) if facts.article_id is not None else json_format.data(facts)
    envelope = {"type": facts.type, "timestamp": timestamp(facts.occurred_at), "data": data}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
