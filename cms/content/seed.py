"""Parse a wire-style story file (like ``shared/fixtures/seed-article.txt``) into article fields.

The layout: a site/section line, the headline, a standfirst, a "Mon D, YYYY
HH:MM <views>" line, the lead image caption (ending " - <n>"), then the body
paragraphs. Agencies cited in the body (BTA, Reuters, AFP, ...) become credits.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

KNOWN_AGENCIES = ("BTA", "Reuters", "AFP", "AP", "dpa", "ANSA", "EFE", "TASS", "Bloomberg")
_DATE = re.compile(r"^(?P<date>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2})(?:\s+\d+)?$")
_CAPTION_INDEX = re.compile(r"\s+-\s+\d+$")


@dataclass(frozen=True)
class WireStory:
    fields: dict[str, Any]
    published_at: datetime | None


def parse_wire_story(
    text: str,
    *,
    image_url: str = "https://images.example.org/lead.jpg",
    timezone: str = "Europe/Sofia",
) -> WireStory:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    if len(blocks) < 3:
        raise ValueError("a story needs at least a headline, a standfirst and a body")
    section_line = blocks.pop(0) if len(blocks) > 5 else None
    headline = blocks.pop(0)
    standfirst = blocks.pop(0)
    published_at = None
    if blocks and (m := _DATE.match(blocks[0])):
        blocks.pop(0)
        local = datetime.strptime(m.group("date"), "%b %d, %Y %H:%M")
        published_at = local.replace(tzinfo=ZoneInfo(timezone))
    lead_image = None
    if blocks and _CAPTION_INDEX.search(blocks[0]):
        caption = _CAPTION_INDEX.sub("", blocks.pop(0)).strip()
        lead_image = {"url": image_url, "caption": caption, "credit": None, "alt_text": caption}
    body_text = "\n".join(blocks)
    credits = [a for a in KNOWN_AGENCIES if re.search(rf"\b{re.escape(a)}\b", body_text)]
    # "Last news in Fakti": the section, then the outlet that ran the story.
    section, outlet = section_line, None
    if section_line and (m := re.match(r"^(?P<section>.+?)\s+in\s+(?P<outlet>\S.*)$", section_line)):
        section, outlet = m.group("section"), m.group("outlet")
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in blocks)
    fields: dict[str, Any] = {
        "headline": headline,
        "standfirst": standfirst,
        "body": body,
        "section": section,
        "byline": outlet,
        "language": "en",
        "credits": credits,
        "lead_image": lead_image,
        "tags": [],
    }
    return WireStory(fields=fields, published_at=published_at)
