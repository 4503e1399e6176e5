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
_SECTION_IN_OUTLET = re.compile(r"^(?P<section>.+?)\s+in\s+(?P<outlet>\S.*)$")


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
    blocks = _blocks(text)
    section_line = blocks.pop(0) if len(blocks) > 5 else None
    headline = blocks.pop(0)
    standfirst = blocks.pop(0)
    published_at = _take_dateline(blocks, timezone)
    lead_image = _take_lead_image(blocks, image_url)
    section, outlet = _section_and_outlet(section_line)
    fields: dict[str, Any] = {
        "headline": headline,
        "standfirst": standfirst,
        "body": "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in blocks),
        "section": section,
        "byline": outlet,
        "language": "en",
        "credits": _credits("\n".join(blocks)),
        "lead_image": lead_image,
        "tags": [],
    }
    return WireStory(fields=fields, published_at=published_at)


def _blocks(text: str) -> list[str]:
    """The non-empty blocks between blank lines; a story has at least three."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    if len(blocks) < 3:
        raise ValueError("a story needs at least a headline, a standfirst and a body")
    return blocks


def _take_dateline(blocks: list[str], timezone: str) -> datetime | None:
    """Remove and read the "Mon D, YYYY HH:MM <views>" line, if the next block is one."""
    if not blocks or not (m := _DATE.match(blocks[0])):
        return None
    blocks.pop(0)
    local = datetime.strptime(m.group("date"), "%b %d, %Y %H:%M")
    return local.replace(tzinfo=ZoneInfo(timezone))


def _take_lead_image(blocks: list[str], image_url: str) -> dict[str, Any] | None:
    """Remove and read the lead image caption ("... - <n>"), if the next block is one."""
    if not blocks or not _CAPTION_INDEX.search(blocks[0]):
        return None
    caption = _CAPTION_INDEX.sub("", blocks.pop(0)).strip()
    return {"url": image_url, "caption": caption, "credit": None, "alt_text": caption}


def _credits(body_text: str) -> list[str]:
    """The known agencies the body cites, as whole words."""
    return [a for a in KNOWN_AGENCIES if re.search(rf"\b{re.escape(a)}\b", body_text)]


def _section_and_outlet(section_line: str | None) -> tuple[str | None, str | None]:
    """A line like "Last news in Fakti": the section, then the outlet that ran the story."""
    if section_line and (m := _SECTION_IN_OUTLET.match(section_line)):
        return m.group("section"), m.group("outlet")
    return section_line, None
