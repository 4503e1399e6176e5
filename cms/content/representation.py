"""THE article representation: its fields, their order, and what partners see.

Everything that shows an article is derived from this module or checked
against it by a test: the API's output schemas (``cms.content.schemas``), the
authoring API's fast renderer, the webhook JSON payload and the ninjs
renderer (which maps each partner field, see ``cms.content.formats.ninjs``).
Adding a field means adding it here (plus its migration, if it is stored
outside the version snapshot, and its input validation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Kind = Literal["text", "html", "tags", "language", "slug", "image", "id", "state", "int", "datetime"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    nullable: bool = True
    partners: bool = True  # False: newsroom only, never sent or served to partners
    description: str = ""
    is_summary: bool = False  # shown in article lists
    default: Any = None  # what a new article gets when the field is omitted ("tags": [])


# The version snapshot: what editors write, in the order every representation uses.
CONTENT: tuple[Field, ...] = (
    Field("headline", "text", nullable=False, is_summary=True),
    Field("standfirst", "text", description="Summary under the headline."),
    Field(
        "body",
        "html",
        nullable=False,
        default="",
        description="HTML, sanitised against an allow-list on save.",
    ),
    Field("byline", "text"),
    Field("dateline", "text"),
    Field("section", "text", is_summary=True),
    Field("tags", "tags", nullable=False, is_summary=True),
    Field(
        "language",
        "language",
        nullable=False,
        is_summary=True,
        default="en",
        description="BCP 47 tag; default `en`.",
    ),
    Field("slug", "slug", nullable=False, is_summary=True),
    Field("lead_image", "image"),
    Field("credits", "tags", nullable=False, description="Agencies or sources, e.g. BTA, Reuters, AFP."),
    Field("editor_note", "text", description="For the receiving editor (ninjs `ednote`)."),
    Field(
        "internal_note",
        "text",
        partners=False,
        description="For the newsroom only: never sent or served to partners.",
    ),
)

# The article's head: its identity and life cycle, around the snapshot.
HEAD: tuple[Field, ...] = (
    Field("id", "id", nullable=False),
    Field("state", "state", nullable=False),
    Field("version", "int", nullable=False, description="Latest version number."),
    Field(
        "published_version",
        "int",
        description="Version partners have (or last had); null if never published.",
    ),
    Field("kill_reason", "text"),
    Field("created_at", "datetime", nullable=False),
    Field("updated_at", "datetime", nullable=False),
    Field("first_published_at", "datetime"),
    Field("published_at", "datetime"),
    Field(
        "embargo_until",
        "datetime",
        description="Published under embargo until then: only trusted partners have it. Null: no embargo.",
    ),
)
TRAILER: tuple[Field, ...] = (
    Field("updated_by", "text", nullable=False, description="Who saved the latest version."),
)
LEAD_IMAGE: tuple[str, ...] = ("url", "caption", "credit", "alt_text")
STATES = ("draft", "published", "unpublished", "killed")

FIELDS: tuple[Field, ...] = HEAD + CONTENT + TRAILER
SUMMARY: tuple[Field, ...] = HEAD + tuple(f for f in CONTENT if f.is_summary)
CONTENT_NAMES: tuple[str, ...] = tuple(f.name for f in CONTENT)
PARTNER_CONTENT: tuple[str, ...] = tuple(f.name for f in CONTENT if f.partners)


def content_defaults() -> dict[str, Any]:
    """Every editable field with the value a new article gets when it is omitted
    (fresh lists each call)."""
    return {f.name: [] if f.kind == "tags" else f.default for f in CONTENT}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _value(f: Field, raw: Any) -> Any:
    if raw is None:
        return None
    if f.kind == "datetime":
        return _iso(raw)
    if f.kind == "id":
        return str(raw)
    if f.kind == "image":
        return {k: raw.get(k) for k in LEAD_IMAGE}
    return raw


def document(
    head: Mapping[str, Any], content: Mapping[str, Any], *, for_partners: bool = False
) -> dict[str, Any]:
    """The article as JSON values, every field in the one order.

    ``head`` holds the head and trailer fields, ``content`` the version
    snapshot. ``for_partners`` leaves out newsroom-only content fields."""
    out: dict[str, Any] = {f.name: _value(f, head.get(f.name)) for f in HEAD}
    for f in CONTENT:
        if f.partners or not for_partners:
            out[f.name] = _value(f, content.get(f.name))
    for f in TRAILER:
        out[f.name] = _value(f, head.get(f.name))
    return out


def dumps(head: Mapping[str, Any], content: Mapping[str, Any]) -> bytes:
    """``document`` as compact JSON bytes (the authoring API's read hot path)."""
    return json.dumps(document(head, content)).encode()
