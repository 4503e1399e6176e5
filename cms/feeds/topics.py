"""A feed as an address (its WebSub topic) and as bytes, with or without a request.

The route serves the feed the request names; the WebSub notifier rebuilds the feeds
subscribers watch, from their topic URLs alone. Both go through ``resolve`` (who may
read it) and ``build`` (its validators and bytes), so a subscriber is told exactly what
a reader of the same URL gets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy.orm import Session

from cms.accounts.keys import ActorCache
from cms.content.visibility import ContentFilter
from cms.feeds import render, service, tokens
from cms.platform.actors import PartnerPrincipal

PREFIX = "/feeds/v1"
FORMATS = tuple(render.MEDIA_TYPES)
_PATH = re.compile(rf"^{PREFIX}/(?:p/(?P<token>[A-Za-z0-9_-]{{1,200}})/)?(?P<fmt>[a-z]+)$")
_LIMITS = {"section": 100, "tag": 100, "language": 35}
PUBLIC = ContentFilter()


@dataclass(frozen=True)
class Topic:
    fmt: str
    selection: service.Selection = field(default_factory=service.Selection)
    token: str | None = None

    def url(self, base: str) -> str:
        """The canonical address: the selection's parameters always in one order."""
        path = f"{PREFIX}/p/{self.token}/{self.fmt}" if self.token else f"{PREFIX}/{self.fmt}"
        params = [(name, value) for name, value in vars(self.selection).items() if value]
        return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")


def parse(url: str) -> Topic | None:
    """The feed an address names (another host is fine: what matters is the path), or None."""
    parts = urlsplit(url)
    match = _PATH.match(parts.path)
    if match is None or match["fmt"] not in FORMATS:
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - _LIMITS.keys() or any(
        len(v) != 1 or not 0 < len(v[0]) <= _LIMITS[k] for k, v in query.items()
    ):
        return None
    chosen = {name: values[0] for name, values in query.items()}
    return Topic(match["fmt"], service.Selection(**chosen), match["token"])


def resolve(
    session: Session, topic: Topic, config: Mapping[str, Any], cache: ActorCache | None = None
) -> tuple[ContentFilter, PartnerPrincipal | None] | None:
    """Who reads this feed: the public, or the partner its token belongs to; None when
    it does not exist (public feeds off, a token unknown, revoked or disabled)."""
    if topic.token is None:
        return (PUBLIC, None) if config["CMS_PUBLIC_FEEDS"] else None
    reader = tokens.reader(session, topic.token, cache)
    if reader is None:
        return None
    return ContentFilter.of(
        reader.sections, reader.tags, reader.languages, embargoed=reader.receives_embargoed
    ), reader


def hub_url(config: Mapping[str, Any], base: str) -> str:
    return config["CMS_WEBSUB_HUB"] or f"{base}/websub/hub"


def build(
    session: Session,
    config: Mapping[str, Any],
    topic: Topic,
    seen: ContentFilter,
    reader: PartnerPrincipal | None,
    base: str,
    head: service.Head | None = None,
) -> tuple[service.Head, bytes]:
    """The feed's validators and bytes (``head`` when the caller read it already)."""
    if head is None:
        head = service.head(session, seen, topic.selection, topic.fmt, config["CMS_FEED_LENGTH"])
    describe = topic.selection.describe()
    whose = f" for {reader.name}" if reader else ""
    channel = render.Channel(
        title=f"{config['CMS_FEED_TITLE']}: {describe}",
        description=f"Published stories{whose}: {describe}, newest first.",
        self_url=topic.url(base),
        site_url=base + "/",
        hub_url=hub_url(config, base),
        updated=head.last_modified,
        language=topic.selection.language,
    )
    template = config["CMS_ARTICLE_URL"]

    def link(article: dict[str, Any]) -> str | None:
        return template.format(slug=article.get("slug"), id=article["id"]) if template else None

    return head, service.body(session, topic.fmt, head.rows, channel, link)
