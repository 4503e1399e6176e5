"""``ninjs3``: an IPTC ninjs 3.1 news item.

ninjs 3 kept 2.1's structure and renamed its properties to camelCase
(``versioncreated`` -> ``versionCreated``, ``altids`` -> ``altIds``, ``ednote``
-> ``edNote``, a body's ``contenttype`` -> ``contentType`` ...). The item is the
2.1 one (``cms.content.formats.ninjs``: one mapping of the article, one place
to add a field) with its keys renamed, at every depth (associations are news
objects too).
"""

from __future__ import annotations

from typing import Any

from cms.content.formats import ninjs
from cms.content.formats.facts import EventFacts

RENAMED = {
    "versioncreated": "versionCreated",
    "firstcreated": "firstCreated",
    "pubstatus": "pubStatus",
    "representationtype": "representationType",
    "altids": "altIds",
    "infosources": "infoSources",
    "ednote": "edNote",
    "contenttype": "contentType",
    "charcount": "charCount",
    "wordcount": "wordCount",
    "copyrightholder": "copyrightHolder",
    "copyrightnotice": "copyrightNotice",
    "usageterms": "usageTerms",
    "embargoed": "embargoedUntil",
}
# Where each partner field of the article representation goes in ninjs 3.1 (a test
# checks it against cms.content.representation.PARTNER_CONTENT, as for 2.1).
FIELD_MAP = {field: RENAMED.get(key, key) for field, key in ninjs.FIELD_MAP.items()}


def data(facts: EventFacts) -> dict[str, Any]:
    """The news item for an article event."""
    return _renamed(ninjs.data(facts))


def _renamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {RENAMED.get(key, key): _renamed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    return value
