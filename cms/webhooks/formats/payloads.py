"""Webhook bodies: the Standard Webhooks envelope around our JSON or IPTC ninjs 2.1.

Every body is ``{"type", "timestamp", "data"}``. Bodies are rendered once per
(event, format) and stored, so every subscriber and every retry gets the same
bytes; only the signature is computed per send.

``json``: ``data`` holds ``event_id``, ``article_id``, ``sequence``, ``version``
and the ``article`` as published (for a withdrawal: its id, slug and state,
plus the ``reason``).

``ninjs``: ``data`` is an IPTC ninjs 2.1 news item. ninjs has no place for
delivery metadata, so the event id and sequence travel as ``altids`` (roles
``event-id`` and ``event-sequence``) beside the article id (role ``cms-id``);
the ``webhook-id`` header carries the event id too.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ARTICLE_URN = "urn:newsroom-cms:article:"
PUBLISHING_EVENTS = ("article.published", "article.updated", "article.corrected")
WITHDRAWAL_STATUS = {"article.unpublished": "withheld", "article.killed": "canceled"}
CONTENT_FIELDS = (
    "headline",
    "standfirst",
    "body",
    "byline",
    "dateline",
    "section",
    "tags",
    "language",
    "slug",
    "lead_image",
    "credits",
    "editor_note",
)
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class EventFacts:
    """Everything a payload is made of, captured when the event is relayed."""

    id: uuid.UUID
    type: str
    occurred_at: datetime
    sequence: int | None = None
    version: int | None = None
    article_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # The article as of ``version``: content fields plus id, state, created_at,
    # first_published_at, published_at, updated_by. None for system events.
    article: dict[str, Any] | None = None


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Standard Webhooks examples use."""
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def article_json(article: dict[str, Any], version: int | None) -> dict[str, Any]:
    """The article in the authoring API's shape (``GET /articles/{id}``), as published."""
    out: dict[str, Any] = {"id": str(article["id"]), "state": article["state"]}
    for name in CONTENT_FIELDS:
        out[name] = article.get(name)
    out["version"] = version
    out["published_version"] = version
    out["kill_reason"] = article.get("kill_reason")
    for name in ("created_at", "updated_at", "first_published_at", "published_at"):
        out[name] = _iso(article.get(name))
    out["updated_by"] = article.get("updated_by")
    return out


def _json_data(facts: EventFacts) -> dict[str, Any]:
    data: dict[str, Any] = {"event_id": str(facts.id)}
    if facts.article_id is not None:
        data["article_id"] = str(facts.article_id)
        data["sequence"] = facts.sequence
        data["version"] = facts.version
    if facts.type in PUBLISHING_EVENTS and facts.article is not None:
        data["article"] = article_json(facts.article, facts.version)
        for extra in ("previous_version", "correction_note"):
            if extra in facts.data:
                data[extra] = facts.data[extra]
    elif facts.type in WITHDRAWAL_STATUS:
        state = "killed" if facts.type == "article.killed" else "unpublished"
        data["article"] = {"id": str(facts.article_id), "slug": facts.data.get("slug"), "state": state}
        data["slug"] = facts.data.get("slug")
        data["reason"] = facts.data.get("reason")
    else:  # system events: ping, subscription.disabled
        if facts.subscription_id is not None:
            data["subscription_id"] = str(facts.subscription_id)
        data.update(facts.data)
    return data


def _words(html: str) -> tuple[int, int]:
    text = _TAGS.sub(" ", html)
    return len(text.replace(" ", "").replace("\n", "")), len(text.split())


def _altids(facts: EventFacts) -> list[dict[str, str]]:
    ids = [{"role": "cms-id", "value": str(facts.article_id)}, {"role": "event-id", "value": str(facts.id)}]
    if facts.sequence is not None:
        ids.append({"role": "event-sequence", "value": str(facts.sequence)})
    return ids


def ninjs_item(facts: EventFacts) -> dict[str, Any]:
    """An IPTC ninjs 2.1 news item for an article event."""
    item: dict[str, Any] = {
        "uri": f"{ARTICLE_URN}{facts.article_id}",
        "type": "text",
        "version": str(facts.version),
        "versioncreated": _iso(facts.occurred_at),
        "altids": _altids(facts),
    }
    if facts.type in WITHDRAWAL_STATUS or facts.article is None:
        item["pubstatus"] = WITHDRAWAL_STATUS.get(facts.type, "withheld")
        item["representationtype"] = "partial"
        if facts.data.get("slug"):
            item["slugline"] = facts.data["slug"]
        if facts.data.get("reason"):
            item["ednote"] = facts.data["reason"]
        return item

    a = facts.article
    item["pubstatus"] = "usable"
    item["representationtype"] = "full"
    item["firstcreated"] = _iso(a.get("created_at"))
    item["language"] = a.get("language") or "en"
    item["slugline"] = a.get("slug")
    item["headlines"] = [{"role": "main", "value": a["headline"]}]
    if a.get("standfirst"):
        item["descriptions"] = [{"role": "summary", "value": a["standfirst"]}]
    body = a.get("body") or ""
    chars, words = _words(body)
    item["bodies"] = [
        {"role": "main", "contenttype": "text/html", "value": body, "charcount": chars, "wordcount": words}
    ]
    if a.get("byline"):
        item["by"] = a["byline"]
    if a.get("dateline"):
        item["located"] = a["dateline"]
    subjects = [{"name": tag, "rel": "tag"} for tag in a.get("tags") or []]
    if a.get("section"):
        subjects.insert(0, {"name": a["section"], "rel": "section"})
    if subjects:
        item["subjects"] = subjects
    if a.get("credits"):
        item["infosources"] = [{"name": credit, "role": "source"} for credit in a["credits"]]
    if a.get("editor_note"):
        item["ednote"] = a["editor_note"]
    if "correction_note" in facts.data:
        item.setdefault("descriptions", []).append(
            {"role": "correction", "value": facts.data["correction_note"]}
        )
    image = a.get("lead_image")
    if image and image.get("url"):
        picture: dict[str, Any] = {
            "name": "featureimage",
            "uri": image["url"],
            "type": "picture",
            "renditions": [{"name": "original", "href": image["url"]}],
        }
        descriptions = []
        if image.get("caption"):
            descriptions.append({"role": "caption", "value": image["caption"]})
        if image.get("alt_text"):
            descriptions.append({"role": "alt", "value": image["alt_text"]})
        if descriptions:
            picture["descriptions"] = descriptions
        if image.get("credit"):
            picture["by"] = image["credit"]
            picture["copyrightholder"] = image["credit"]
        item["associations"] = [picture]
    return item


def render(facts: EventFacts, fmt: str) -> bytes:
    """The webhook body for ``facts`` in format ``fmt`` (``json`` or ``ninjs``)."""
    # System events have no news item; they use our JSON in every format.
    data = ninjs_item(facts) if fmt == "ninjs" and facts.article_id is not None else _json_data(facts)
    envelope = {"type": facts.type, "timestamp": timestamp(facts.occurred_at), "data": data}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
