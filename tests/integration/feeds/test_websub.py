"""WebSub on both databases: the hub's endpoint checks requests at the door; Flask-WebSub
verifies intent and delivers (its Celery tasks run eagerly here; end to end with real
workers in tests/e2e/test_websub_e2e.py); subscribers are told only when their feed
changes; with an external hub, the public feeds a change touches are pinged."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from flask_websub.hub import Hub

from cms.feeds import websub
from cms.webhooks.subscriptions import url_policy
from tests.helpers import eventually
from tests.receivers import Receiver, Subscriber


@pytest.fixture
def public(live):
    """Public feeds on, and subscribers on loopback allowed (as webhooks in these tests)."""
    allowed = live.app.config["CMS_WEBHOOK_ALLOWED_NETWORKS"]
    live.app.config.update(CMS_PUBLIC_FEEDS=True, CMS_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
    yield live
    live.app.config.update(CMS_PUBLIC_FEEDS=False, CMS_WEBHOOK_ALLOWED_NETWORKS=allowed)
    live.app.config["CMS_WEBSUB_HUB"] = ""
    live.app.config["CMS_PUBLIC_URL"] = ""


def _scope(app):
    return websub.app_scope(lambda: app)


def _hub(app):
    celery = Celery(set_as_current=False)
    celery.conf.task_always_eager = True
    storage = websub.Storage(_scope(app), lambda: url_policy(app.config))
    return Hub(storage, celery=celery, **websub.HUB_SETTINGS)


def test_subscribers_are_verified_and_told_only_of_their_feeds_changes(public):
    live, subscriber = public, Subscriber()
    try:
        section = f"desk-{uuid.uuid4().hex[:8]}"
        topic = f"{live.url}/feeds/v1/json?section={section}"
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscriber.url,
            "hub.secret": "x",
        }
        assert live.http.post(f"{live.url}/websub/hub", data=form, timeout=30).status_code == 202
        hub, scope = _hub(live.app), _scope(live.app)
        assert websub.verify_pending(scope, hub) == 1
        assert [c["hub.topic"] for c in subscriber.challenges] == [topic]
        assert websub.verify_pending(scope, hub) == 0  # verified once

        live.article(section=section, headline="Watched")
        live.article(section=f"other-{uuid.uuid4().hex[:6]}", headline="Elsewhere")
        assert websub.notify(scope, live.app.config, hub) == 1
        [(headers, body)] = subscriber.notifications
        assert b'"title":"Watched"' in body and headers["content-type"] == "application/feed+json"
        assert headers["x-hub-signature"].startswith("sha256=")
        assert websub.notify(scope, live.app.config, hub) == 0  # nothing moved

        live.article(section=f"other-{uuid.uuid4().hex[:6]}", headline="Still elsewhere")
        assert websub.notify(scope, live.app.config, hub) == 0  # the feed moved, this one did not
        assert len(subscriber.notifications) == 1

        form["hub.mode"] = "unsubscribe"
        assert live.http.post(f"{live.url}/websub/hub", data=form, timeout=30).status_code == 202
        websub.verify_pending(scope, hub)
        live.article(section=section, headline="After leaving")
        assert websub.notify(scope, live.app.config, hub) == 0
    finally:
        subscriber.close()


def test_an_unverified_subscription_is_dropped(public):
    live = public
    refusing = Receiver()  # answers 200 without echoing the challenge
    try:
        topic = f"{live.url}/feeds/v1/rss"
        form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": refusing.url()}
        assert live.http.post(f"{live.url}/websub/hub", data=form, timeout=30).status_code == 202
        scope = _scope(live.app)
        assert websub.verify_pending(scope, _hub(live.app)) == 1
        with scope() as session:
            assert session.get(websub.WebSubSubscription, (topic, refusing.url())) is None
    finally:
        refusing.close()


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"hub.mode": "publish"}, 400),
        ({"hub.mode": "subscribe", "hub.callback": "http://127.0.0.1:9/cb"}, 400),
        ({"hub.mode": "subscribe", "hub.topic": "{feed}", "hub.callback": "http://169.254.169.254/"}, 422),
        ({"hub.mode": "subscribe", "hub.topic": "https://x.ex/f", "hub.callback": "http://127.0.0.1/"}, 422),
        ({"hub.mode": "subscribe", "hub.topic": "{private}", "hub.callback": "http://127.0.0.1/"}, 422),
        ({"hub.mode": "subscribe", "hub.topic": "{feed}", "hub.callback": "http://127.0.0.1:9/",
          "hub.lease_seconds": "x"}, 400),
    ],
    ids=["mode", "no-topic", "metadata-address", "not-ours", "bad-token", "lease"],
)  # fmt: skip
def test_bad_requests_are_refused_at_the_door(public, form, status):
    live = public
    feed, private = f"{live.url}/feeds/v1/atom", f"{live.url}/feeds/v1/p/cmsf_unknown/atom"
    data = {k: v.format(feed=feed, private=private) for k, v in form.items()}
    r = live.http.post(f"{live.url}/websub/hub", data=data, timeout=30)
    assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json"


def test_an_external_hub_is_pinged_with_the_public_feeds_a_change_touches(public):
    live, hub = public, Receiver()
    try:
        live.app.config.update(CMS_WEBSUB_HUB=hub.url("/hub"), CMS_PUBLIC_URL="https://cms.example.org")
        scope = _scope(live.app)
        websub.ping_external(scope, live.app.config, _post)  # what earlier tests published
        section = f"desk-{uuid.uuid4().hex[:8]}"
        live.article(section=section, tags=["Valdai"], headline="Pinged")
        assert websub.ping_external(scope, live.app.config, _post) == 12  # all, section, tag, language x 3
        pinged = {r.body.decode() for r in eventually(lambda: hub.ok(), 10, "pings")}
        assert (
            f"hub.mode=publish&hub.url=https%3A%2F%2Fcms.example.org%2Ffeeds%2Fv1%2Frss%3Fsection%3D{section}"
            in pinged
        )
        assert websub.ping_external(scope, live.app.config, _post) == 0
        r = live.http.post(f"{live.url}/websub/hub", data={"hub.mode": "subscribe"}, timeout=30)
        assert r.status_code == 404  # the hub is elsewhere
    finally:
        hub.close()


def _post(url, form):
    import requests

    requests.post(url, data=form, timeout=5).raise_for_status()
