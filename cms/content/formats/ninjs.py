"""``ninjs``: an IPTC ninjs 2.1 news item.

ninjs has no place for delivery metadata, so the event id and sequence travel
as ``altids`` (roles ``event-id`` and ``event-sequence``) beside the article id
(role ``cms-id``); the ``webhook-id`` header carries the event id too.
"""

from __future__ import annotations

import re
from typing import Any

from cms.content.formats.facts import ARTICLE_URN, EventFacts, iso

WITHDRAWAL_STATUS = {"article.unpublished": "withheld", "article.killed": "canceled"}
# Where each partner field of the article representation goes in ninjs 2.1; a test
# checks this covers cms.content.representation.PARTNER_CONTENT exactly.
FIELD_MAP = {
    "headline": "headlines",
    "standfirst": "descriptions",
    "body": "bodies",
    "byline": "by",
    "dateline": "located",
    "section": "subjects",
    "tags": "subjects",
    "language": "language",
    "slug": "slugline",
    "lead_image": "associations",
    "credits": "infosources",
    "editor_note": "ednote",
}
_TAGS = re.compile(r"<[^>]+>")


def data(facts: EventFacts) -> dict[str, Any]:
    """The news item for an article event."""
    item = _identity(facts)
    if facts.type in WITHDRAWAL_STATUS or facts.article is None:
        return _withdrawn(item, facts)
    a = facts.article
    item.update(
        pubstatus="usable",
        representationtype="full",
        firstcreated=iso(a.get("created_at")),
        language=a.get("language") or "en",
        slugline=a.get("slug"),
        headlines=[{"role": "main", "value": a["headline"]}],
    )
    descriptions = _descriptions(a, facts)
    if descriptions:
        item["descriptions"] = descriptions
    item["bodies"] = [_body(a.get("body") or "")]
    optional = {
        "by": a.get("byline"),
        "located": a.get("dateline"),
        "subjects": _subjects(a),
        "infosources": [{"name": credit, "role": "source"} for credit in a.get("credits") or []],
        "ednote": a.get("editor_note"),
        "associations": _associations(a.get("lead_image")),
    }
    item.update({key: value for key, value in optional.items() if value})
    return item


def _identity(facts: EventFacts) -> dict[str, Any]:
    """What every item carries: which article, version and event; the embargo if any."""
    item: dict[str, Any] = {
        "uri": f"{ARTICLE_URN}{facts.article_id}",
        "type": "text",
        "version": str(facts.version),
        "versioncreated": iso(facts.occurred_at),
        "altids": _altids(facts),
    }
    if facts.embargo_until is not None:
        item["embargoed"] = iso(facts.embargo_until)
    return item


def _altids(facts: EventFacts) -> list[dict[str, str]]:
    ids = [{"role": "cms-id", "value": str(facts.article_id)}, {"role": "event-id", "value": str(facts.id)}]
    if facts.sequence is not None:
        ids.append({"role": "event-sequence", "value": str(facts.sequence)})
    return ids


def _withdrawn(item: dict[str, Any], facts: EventFacts) -> dict[str, Any]:
    item["pubstatus"] = WITHDRAWAL_STATUS.get(facts.type, "withheld")
    item["representationtype"] = "partial"
    if facts.data.get("slug"):
        item["slugline"] = facts.data["slug"]
    if facts.data.get("reason"):
        item["ednote"] = facts.data["reason"]
    return item


def _descriptions(a: dict[str, Any], facts: EventFacts) -> list[dict[str, str]]:
    out = [{"role": "summary", "value": a["standfirst"]}] if a.get("standfirst") else []
    if "correction_note" in facts.data:
        out.append({"role": "correction", "value": facts.data["correction_note"]})
    return out


def _body(html: str) -> dict[str, Any]:
    text = _TAGS.sub(" ", html)
    chars, words = len(text.replace(" ", "").replace("\n", "")), len(text.split())
    return {"role": "main", "contenttype": "text/html", "value": html, "charcount": chars, "wordcount": words}


def _subjects(a: dict[str, Any]) -> list[dict[str, str]]:
    subjects = [{"name": tag, "rel": "tag"} for tag in a.get("tags") or []]
    if a.get("section"):
        subjects.insert(0, {"name": a["section"], "rel": "section"})
    return subjects


def _associations(image: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not image or not image.get("url"):
        return []
    picture: dict[str, Any] = {
        "name": "featureimage",
        "uri": image["url"],
        "type": "picture",
        "renditions": [{"name": "original", "href": image["url"]}],
    }
    descriptions = [
        {"role": role, "value": image[key]}
        for key, role in (("caption", "caption"), ("alt_text", "alt"))
        if image.get(key)
    ]
    if descriptions:
        picture["descriptions"] = descriptions
    if image.get("credit"):
        picture["by"] = image["credit"]
        picture["copyrightholder"] = image["credit"]
    return [picture]
