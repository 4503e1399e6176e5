"""A feed in RSS 2.0 or Atom 1.0 (feedgen) or JSON Feed 1.1 (its specification).

Every format carries the same entries: the article's published version, newest first,
identified by the article (not the version), with the headline, the standfirst as
the summary, the full body (sanitised HTML, as stored), the byline, language, tags
as categories and the lead image; and the links a WebSub subscriber needs (``self``
and ``hub``).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from feedgen.feed import FeedGenerator

from cms.content.formats.facts import ARTICLE_URN
from cms.feeds.feedgen_links import LinksEntryExtension, LinksExtension

MEDIA_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json",
}
JSON_FEED = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class Channel:
    """What the feed says about itself."""

    title: str
    description: str
    self_url: str
    site_url: str
    hub_url: str
    updated: datetime
    language: str | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    summary: str | None
    body: str
    byline: str | None
    language: str
    categories: tuple[str, ...]
    image: str | None
    published: datetime
    updated: datetime
    url: str | None


def entry(article: dict[str, Any], url: str | None) -> Entry:
    """An article (as the formats see it: content plus head) as a feed entry."""
    image = (article.get("lead_image") or {}).get("url")
    section = article.get("section")
    return Entry(
        id=f"{ARTICLE_URN}{article['id']}",
        title=article["headline"],
        summary=article.get("standfirst"),
        body=article.get("body") or "",
        byline=article.get("byline"),
        language=article.get("language") or "en",
        categories=tuple(dict.fromkeys([*([section] if section else []), *(article.get("tags") or [])])),
        image=image,
        published=article["first_published_at"],
        updated=article["published_at"],
        url=url,
    )


def _image_type(url: str) -> str:
    return mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"


def render(fmt: str, channel: Channel, entries: Sequence[Entry]) -> bytes:
    if fmt == "json":
        return _json_feed(channel, entries)
    rss = fmt == "rss"
    fg = _generator(channel, entries, rss=rss)
    return fg.rss_str(pretty=False) if rss else fg.atom_str(pretty=False)


def _generator(channel: Channel, entries: Sequence[Entry], *, rss: bool) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.register_extension("links", LinksExtension, LinksEntryExtension)
    fg.id(channel.self_url)
    fg.title(channel.title)
    fg.description(channel.description)  # RSS <description>, Atom <subtitle>
    fg.link(href=channel.self_url, rel="self")
    fg.link(href=channel.hub_url, rel="hub")
    fg.links.hub(channel.hub_url)
    fg.link(href=channel.site_url, rel="alternate")  # last: RSS's <link> is the last one
    if channel.language:
        fg.language(channel.language)
    fg.updated(channel.updated)
    fg.lastBuildDate(channel.updated)
    for e in entries:
        _add(fg, e, rss=rss)
    return fg


def _add(fg: FeedGenerator, e: Entry, *, rss: bool) -> None:
    fe = fg.add_entry(order="append")
    fe.id(e.id)
    fe.guid(e.id, permalink=False)
    fe.title(e.title)
    if e.summary:
        fe.summary(e.summary)  # RSS <description>, Atom <summary>
    # RSS <content:encoded> (CDATA), Atom <content type="html">
    fe.content(e.body, type="CDATA" if rss else "html")
    if e.url:
        fe.link(href=e.url)  # Atom: a link without rel is the alternate
    if e.byline:
        fe.author(name=e.byline)  # Atom; RSS readers take dc:creator
        fe.dc.dc_creator(e.byline)
    fe.dc.dc_language(e.language)
    for term in e.categories:
        fe.category(term=term)
    if e.image and rss:
        fe.enclosure(e.image, "0", _image_type(e.image))  # length unknown: 0, as RSS allows
    elif e.image:
        fe.links.enclosure(e.image, _image_type(e.image))
    fe.published(e.published)
    fe.updated(e.updated)


def _json_feed(channel: Channel, entries: Sequence[Entry]) -> bytes:
    feed: dict[str, Any] = {
        "version": JSON_FEED,
        "title": channel.title,
        "home_page_url": channel.site_url,
        "feed_url": channel.self_url,
        "description": channel.description,
        "hubs": [{"type": "WebSub", "url": channel.hub_url}],
    }
    if channel.language:
        feed["language"] = channel.language
    feed["items"] = [_json_item(e) for e in entries]
    return orjson.dumps(feed)


def _json_item(e: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {"id": e.id}
    if e.url:
        item["url"] = e.url
    item["title"] = e.title
    item["content_html"] = e.body
    if e.summary:
        item["summary"] = e.summary
    if e.image:
        item["image"] = e.image
        item["attachments"] = [{"url": e.image, "mime_type": _image_type(e.image)}]
    item["date_published"] = e.published.isoformat()
    item["date_modified"] = e.updated.isoformat()
    if e.byline:
        item["authors"] = [{"name": e.byline}]
    if e.categories:
        item["tags"] = list(e.categories)
    item["language"] = e.language
    return item
