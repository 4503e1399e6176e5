"""``json``: our own format. ``data`` holds ``event_id``, ``article_id``, ``sequence``,
``version`` and the ``article`` as published, in its one representation (for a
withdrawal: its id, slug and state, plus the ``reason``). Under embargo the article
carries ``embargo_until``."""

from __future__ import annotations

from typing import Any

from cms.content import representation
from cms.content.formats.facts import CONTENT_EVENTS, WITHDRAWAL_EVENTS, EventFacts, iso


def article_json(article: dict[str, Any], version: int | None, embargo_until: Any = None) -> dict[str, Any]:
    """The article as the authoring API shows it (``GET /articles/{id}``), as published,
    without newsroom-only fields; ``embargo_until`` while it is under embargo."""
    head = {**article, "version": version, "published_version": version}
    out = representation.document(head, article, for_partners=True)
    if embargo_until is not None:
        out["embargo_until"] = iso(embargo_until)
    return out


def data(facts: EventFacts) -> dict[str, Any]:
    out: dict[str, Any] = {"event_id": str(facts.id)}
    if facts.article_id is not None:
        out["article_id"] = str(facts.article_id)
        out["sequence"] = facts.sequence
        out["version"] = facts.version
    if facts.type in CONTENT_EVENTS and facts.article is not None:
        out["article"] = article_json(facts.article, facts.version, facts.embargo_until)
        for extra in ("previous_version", "correction_note", "embargo", "previous_embargo_until"):
            if extra in facts.data:
                out[extra] = facts.data[extra]
    elif facts.type in WITHDRAWAL_EVENTS:
        state = "killed" if facts.type == "article.killed" else "unpublished"
        out["article"] = {"id": str(facts.article_id), "slug": facts.data.get("slug"), "state": state}
        if facts.embargo_until is not None:
            out["article"]["embargo_until"] = iso(facts.embargo_until)
        out["slug"] = facts.data.get("slug")
        out["reason"] = facts.data.get("reason")
    else:  # system events: ping, subscription.disabled
        if facts.subscription_id is not None:
            out["subscription_id"] = str(facts.subscription_id)
        out.update(facts.data)
    return out
