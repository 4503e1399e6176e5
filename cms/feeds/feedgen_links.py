"""A feedgen extension for the links feedgen 1.0 leaves out: an RSS channel's
``<atom:link rel="hub">`` (it writes only ``rel="self"`` there) and an Atom entry's
``<link rel="enclosure">`` (it drops the ``rel`` of entry links). Registered through
feedgen's own extension point (``FeedGenerator.register_extension``)."""

from __future__ import annotations

from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"


class LinksExtension(BaseExtension):  # type: ignore[misc]
    def __init__(self) -> None:
        self._hub: str | None = None

    def hub(self, href: str) -> None:
        self._hub = href

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM}

    def extend_rss(self, feed: Any) -> Any:
        if self._hub:
            etree.SubElement(feed[0], f"{{{ATOM}}}link", href=self._hub, rel="hub")
        return feed


class LinksEntryExtension(BaseEntryExtension):  # type: ignore[misc]
    def __init__(self) -> None:
        self._enclosure: tuple[str, str] | None = None

    def enclosure(self, href: str, media_type: str) -> None:
        self._enclosure = (href, media_type)

    def extend_atom(self, entry: Any) -> Any:
        if self._enclosure:
            href, media_type = self._enclosure
            etree.SubElement(entry, "link", href=href, rel="enclosure", type=media_type, length="0")
        return entry
