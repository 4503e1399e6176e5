"""WebSub end to end: a subscriber on loopback subscribes to a feed at the built-in hub,
has its intent verified (Flask-WebSub, run by a real Celery worker), and receives the
new feed, signed, after a publish; bad subscription requests are refused at the door."""

from __future__ import annotations

import hashlib
import hmac

import feedparser

from tests.helpers import eventually
from tests.receivers import Subscriber


def _hub(stack, **form):
    return stack.client.post("/websub/hub", data=form)


def test_a_subscriber_is_verified_and_receives_the_new_feed(stack):
    subscriber = Subscriber()
    try:
        _run(stack, subscriber)
    finally:
        subscriber.close()


def _run(stack, subscriber):
    stack.app.config["CMS_PUBLIC_FEEDS"] = True
    stack.worker(CMS_PUBLIC_FEEDS="true", CMS_WEBSUB_INTERVAL="0.5")
    stack.beat(CMS_PUBLIC_FEEDS="true", CMS_WEBSUB_INTERVAL="0.5")
    feed = feedparser.parse(stack.client.get("/feeds/v1/atom?section=World").data)
    links = {link["rel"]: link["href"] for link in feed.feed.links}
    topic, hub = links["self"], links["hub"]
    assert hub.endswith("/websub/hub") and topic.endswith("/feeds/v1/atom?section=World")

    # Refused at the door, with a problem document: not our feed, a private address, a bad mode.
    wrong = _hub(stack, **{"hub.mode": "subscribe", "hub.topic": "https://elsewhere.example/feed",
                           "hub.callback": subscriber.url})  # fmt: skip
    assert wrong.status_code == 422 and wrong.content_type == "application/problem+json"
    private = _hub(
        stack, **{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": "http://10.1.2.3/cb"}
    )
    assert private.status_code == 422 and "cannot be called" in private.get_json()["detail"]
    assert _hub(stack, **{"hub.mode": "publish", "hub.topic": topic}).status_code == 400

    secret = "s3cret-of-the-subscriber"
    r = _hub(stack, **{"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": subscriber.url,
                       "hub.secret": secret, "hub.lease_seconds": "3600"})  # fmt: skip
    assert r.status_code == 202
    [challenge] = eventually(lambda: subscriber.challenges, 30, "the intent check")
    assert challenge["hub.mode"] == "subscribe" and challenge["hub.topic"] == topic
    assert challenge["hub.lease_seconds"] == "3600"

    story = stack.article(section="World", headline="Putin congratulates Trump (WebSub)")
    stack.publish(story["id"])
    stack.article(section="Sport", headline="Not in the watched feed")

    def notified():
        return [(h, b) for h, b in subscriber.notifications if story["headline"].encode() in b]

    [(headers, body)] = eventually(notified, 40, "the notification")
    algorithm, _, signature = headers["x-hub-signature"].partition("=")
    assert algorithm == "sha256"
    assert hmac.compare_digest(signature, hmac.new(secret.encode(), body, hashlib.sha256).hexdigest())
    assert headers["content-type"].startswith("application/atom+xml")
    assert f'<{topic}>; rel="self"' in headers["link"] and 'rel="hub"' in headers["link"]
    entries = feedparser.parse(body).entries
    assert [e.title for e in entries] == [story["headline"]]
    # The story in another section changed nothing this subscriber watches.
    assert all(b"Not in the watched feed" not in b for _h, b in subscriber.notifications)
