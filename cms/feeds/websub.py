"""WebSub (W3C): the built-in hub's subscribers and telling them of changes, or
pinging an external hub (``CMS_WEBSUB_HUB``).

Flask-WebSub does the protocol: verifying a subscriber's intent (its challenge),
signing (``X-Hub-Signature``) and delivering content with retries (its Celery task).
What is ours: the subscribers' table (``Storage``, Flask-WebSub's storage interface),
the requests waiting for verification, and deciding *when* to notify: each run of
``notify`` (beat, every ``CMS_WEBSUB_INTERVAL``) looks only if the change feed moved,
rebuilds each watched feed and tells its subscribers when its ETag changed, that is
when a story entered or left it. The notification carries the whole feed, exactly
what a reader of the topic URL gets. Callbacks pass the webhooks' SSRF policy when
subscribed, when verified and again before every notification.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask_websub.hub import tasks as hub_tasks
from flask_websub.hub.storage import AbstractHubStorage
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cms.events import feed, outbox
from cms.events.models import OutboxEvent
from cms.feeds import render, service, topics
from cms.feeds.models import WebSubClock, WebSubSubscription, WebSubTopic
from cms.platform import uow
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks.subscriptions import UrlPolicy, check_url_allowed

log = logging.getLogger("cms.feeds.websub")
S = WebSubSubscription
# Flask-WebSub's settings: sha256 signatures, 5 s requests, 8 attempts over about half an hour.
HUB_SETTINGS = {"SIGNATURE_ALGORITHM": "sha256", "REQUEST_TIMEOUT": 5, "MAX_ATTEMPTS": 8, "BACKOFF_BASE": 4.0}
SessionScope = Callable[[], Any]  # a context manager giving a Session that commits on success


def app_scope(get_app: Callable[[], Any]) -> SessionScope:
    """Units of work on an app's session, for code outside a request (workers, Flask-WebSub's tasks)."""

    @contextlib.contextmanager
    def scope() -> Iterator[Session]:
        with get_app().app_context(), uow.transaction(db.session):
            yield db.session

    return scope


def callback_refused(callback_url: str, policy: UrlPolicy) -> str | None:
    """Why a callback may not be called (the webhooks' SSRF policy), or None."""
    try:
        check_url_allowed(callback_url, policy)
    except Exception as exc:  # Unprocessable with the reason
        return str(getattr(exc, "detail", exc))
    return None


class Storage(AbstractHubStorage):  # type: ignore[misc]
    """Flask-WebSub's storage interface over ``websub_subscriptions``. Each call runs in
    a session of its own (Flask-WebSub calls it from its tasks, outside ours)."""

    def __init__(self, scope: SessionScope, policy: Callable[[], UrlPolicy]) -> None:
        self.scope = scope
        self.policy = policy

    def __setitem__(self, key: tuple[str, str], value: dict[str, Any]) -> None:
        topic_url, callback_url = key
        with self.scope() as session:
            row = session.get(S, (topic_url, callback_url))
            if row is None:
                row = S(topic_url=topic_url, callback_url=callback_url, requested_at=utcnow())
                session.add(row)
            row.lease_seconds = value["lease_seconds"]
            row.secret = value.get("secret")
            row.expires_at = utcnow() + timedelta(seconds=value["lease_seconds"])
            row.pending = None

    def __delitem__(self, key: tuple[str, str]) -> None:
        with self.scope() as session:
            session.execute(delete(S).where(S.topic_url == key[0], S.callback_url == key[1]))

    def get_callbacks(self, topic_url: str) -> Iterator[tuple[str, str | None]]:
        with self.scope() as session:
            rows = session.execute(
                select(S.callback_url, S.secret).where(S.topic_url == topic_url, S.expires_at > utcnow())
            ).all()
        policy = self.policy()
        for callback_url, secret in rows:
            if (why := callback_refused(callback_url, policy)) is None:
                yield callback_url, secret
            else:
                log.warning("websub callback skipped: %s", why)

    def cleanup_expired_subscriptions(self) -> None:
        with self.scope() as session:
            session.execute(delete(S).where(S.expires_at <= utcnow(), S.pending.is_(None)))


def request(
    session: Session, mode: str, topic_url: str, callback_url: str, lease: int, secret: str | None
) -> None:
    """Record a (un)subscription request; the verification runs in a worker."""
    row = session.get(S, (topic_url, callback_url))
    if row is None:
        if mode == "unsubscribe":
            return  # nothing to end
        row = S(topic_url=topic_url, callback_url=callback_url, lease_seconds=lease)
        session.add(row)
    row.pending = mode
    row.requested_at = utcnow()
    if mode == "subscribe":
        row.lease_seconds, row.secret = lease, secret


def verify_pending(scope: SessionScope, hub: Any, limit: int = 50) -> int:
    """Verify the intent of each pending request (Flask-WebSub: a GET with a challenge to
    the callback); a subscription that is not verified is dropped, a renewal keeps its lease."""
    with scope() as session:
        rows = session.execute(
            select(S.topic_url, S.callback_url, S.pending, S.lease_seconds, S.secret, S.requested_at)
            .where(S.pending.is_not(None))
            .order_by(S.requested_at)
            .limit(limit)
        ).all()
    for r in rows:
        if r.pending == "subscribe":
            hub_tasks.subscribe(hub, r.callback_url, r.topic_url, r.lease_seconds, r.secret, None)
        else:
            hub_tasks.unsubscribe(hub, r.callback_url, r.topic_url, r.lease_seconds)
        _settle(scope, r)
    return len(rows)


def _settle(scope: SessionScope, r: Any) -> None:
    """After a verification: a request still pending was not verified."""
    key = (S.topic_url == r.topic_url, S.callback_url == r.callback_url, S.requested_at == r.requested_at)
    with scope() as session:
        session.execute(delete(S).where(*key, S.pending == "subscribe", S.expires_at.is_(None)))
        session.execute(update(S).where(*key, S.pending.is_not(None)).values(pending=None))


def notify(scope: SessionScope, config: Any, hub: Any) -> int:
    """Tell the subscribers of every watched feed that changed; how many feeds. What was
    told is recorded only once it was handed on, so a failure means telling again."""
    with scope() as session:
        head = feed.head(session)
        clock = session.get(WebSubClock, 1)
        if clock is None or clock.position >= head:
            return 0
        watched = session.scalars(select(S.topic_url).where(S.expires_at > utcnow()).distinct()).all()
        changed = [c for c in (_changed(session, config, url) for url in watched) if c is not None]
    for url, media_type, body, _etag in changed:
        content = {
            "headers": {
                "Link": f'<{_hub(config, url)}>; rel="hub", <{url}>; rel="self"',
                "Content-Type": media_type,
            },
            "content": base64.b64encode(body).decode("ascii"),
        }
        hub_tasks.send_change_notification(hub, url, content)
    with scope() as session:
        for url, _media_type, _body, etag in changed:
            told = session.get(WebSubTopic, url) or WebSubTopic(topic_url=url)
            told.etag, told.notified_at = etag, utcnow()
            session.add(told)
        session.execute(update(WebSubClock).where(WebSubClock.id == 1).values(position=head))
    return len(changed)


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _hub(config: Any, url: str) -> str:
    return topics.hub_url(config, _base(url))


def _changed(session: Session, config: Any, url: str) -> tuple[str, str, bytes, str] | None:
    """(topic, media type, the feed, its ETag) if it changed since its subscribers were told."""
    topic = topics.parse(url)
    found = topics.resolve(session, topic, config) if topic is not None else None
    if topic is None or found is None:
        return None  # no longer a feed (token revoked, public feeds off): nothing to tell
    head = service.head(session, found[0], topic.selection, topic.fmt, config["CMS_FEED_LENGTH"])
    told = session.get(WebSubTopic, url)
    if told is not None and told.etag == head.etag:
        return None
    _, body = topics.build(session, config, topic, *found, _base(url), head)
    return url, render.MEDIA_TYPES[topic.fmt], body, head.etag


# ---------------------------------------------------------------- an external hub


def ping_external(scope: SessionScope, config: Any, post: Callable[[str, dict[str, str]], None]) -> int:
    """With ``CMS_WEBSUB_HUB``: tell the hub (``hub.mode=publish``) which public feeds changed
    since the last run: everything, the story's section, each tag and its language, in every
    format. Private feeds are never named to an outside hub. A failed ping is tried again."""
    base = (config["CMS_PUBLIC_URL"] or "").rstrip("/")
    if not config["CMS_PUBLIC_FEEDS"] or not base:
        return 0
    with scope() as session:
        head = feed.head(session)
        clock = session.get(WebSubClock, 1)
        if clock is None or clock.position >= head:
            return 0
        rows = session.execute(
            outbox.with_content().where(
                OutboxEvent.feed_position > clock.position, OutboxEvent.feed_position <= head
            )
        ).all()
    urls = sorted({t.url(base) for row in rows if row.embargo_until is None for t in _public_topics(row)})
    for url in urls:
        post(config["CMS_WEBSUB_HUB"], {"hub.mode": "publish", "hub.url": url})
    with scope() as session:
        session.execute(update(WebSubClock).where(WebSubClock.id == 1).values(position=head))
    return len(urls)


def _public_topics(row: Any) -> Iterator[topics.Topic]:
    content = row.content or {}
    selections = [service.Selection()]
    if content.get("section"):
        selections.append(service.Selection(section=content["section"]))
    selections += [service.Selection(tag=tag) for tag in content.get("tags") or []]
    if content.get("language"):
        selections.append(service.Selection(language=content["language"]))
    for selection in selections:
        for fmt in topics.FORMATS:
            yield topics.Topic(fmt, selection)
