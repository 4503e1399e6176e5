"""The admin API for subscriptions, deliveries and events: secrets, validation, SSRF, roles."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

import pytest

from cms.platform import uow
from cms.platform.actors import Role
from cms.platform.errors import Unprocessable
from cms.webhooks import subscriptions
from cms.webhooks.subscriptions import UrlPolicy
from tests.helpers import create, post

PUBLIC_URL = "https://93.184.215.14/hook"


def test_create_shows_the_secret_once(client, admin):
    r = client.post(
        "/api/v1/subscriptions",
        json={
            "url": PUBLIC_URL,
            "description": "Partner A",
            "format": "ninjs",
            "headers": {"X-Partner": "a", "Authorization": "Bearer partner-token-123"},
        },
        headers=admin,
    )
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    assert created["secret_prefix"] == secret[:10] + "…"
    assert created["event_types"] == ["*"] and created["max_in_flight"] == 4 and created["enabled"]
    assert r.headers["Location"] == f"/api/v1/subscriptions/{created['id']}"

    listed = client.get("/api/v1/subscriptions", headers=admin).get_json()
    got = client.get(f"/api/v1/subscriptions/{created['id']}", headers=admin)
    for body in (created, listed["items"][0], got.get_json()):
        assert secret not in str({k: v for k, v in body.items() if k != "secret"})
        assert body["secret_prefix"] == created["secret_prefix"]
        # Static header values may be credentials: shown masked.
        assert body["headers"] == {"X-Partner": "…", "Authorization": "Bear…"}
        assert "partner-token-123" not in str(body)
    assert "secret" not in listed["items"][0] and "secret" not in got.get_json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://localhost:9000/hook",
        "http://0.0.0.0/hook",
        "http://192.168.1.10/hook",
        "http://[fe80::1]/hook",
        "ftp://93.184.215.14/hook",
        "https://user:pass@93.184.215.14/hook",
        "not a url",
        "https://no-such-host.invalid/hook",
    ],
)
def test_urls_that_could_reach_internal_services_are_refused(client, admin, url):
    r = client.post("/api/v1/subscriptions", json={"url": url}, headers=admin)
    assert r.status_code == 422, (url, r.get_json())
    body = r.get_json()
    # Not a URL at all: a field validation error; a URL that must not be reached: unprocessable.
    fields = [body.get("field")] + [e["field"] for e in body.get("errors", [])]
    assert "url" in fields, body
    assert client.get("/api/v1/subscriptions", headers=admin).get_json()["items"] == []


def test_changing_the_url_is_checked_too(client, admin):
    sub = client.post("/api/v1/subscriptions", json={"url": PUBLIC_URL}, headers=admin).get_json()
    r = client.patch(f"/api/v1/subscriptions/{sub['id']}", json={"url": "http://10.1.2.3/x"}, headers=admin)
    assert r.status_code == 422
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=admin).get_json()["url"] == PUBLIC_URL


@pytest.mark.parametrize(
    "body",
    [
        {"url": PUBLIC_URL, "format": "xml"},
        {"url": PUBLIC_URL, "event_types": ["article.deleted"]},
        {"url": PUBLIC_URL, "event_types": []},
        {"url": PUBLIC_URL, "headers": {"webhook-signature": "forged"}},
        {"url": PUBLIC_URL, "headers": {"Content-Type": "text/plain"}},
        {"url": PUBLIC_URL, "headers": {"Proxy-Authorization": "Basic eDp5"}},
        {"url": PUBLIC_URL, "headers": {"X-Ok": "a\r\nInjected: yes"}},
        {"url": PUBLIC_URL, "headers": {"Bad Name": "x"}},
        {"url": PUBLIC_URL, "max_in_flight": 0},
        {"url": PUBLIC_URL, "max_in_flight": "4"},
        {"url": PUBLIC_URL, "secret": "whsec_mine"},
        {"url": PUBLIC_URL, "tags": [""]},
        {},
    ],
)
def test_invalid_subscriptions_are_422_and_change_nothing(client, admin, body):
    r = client.post("/api/v1/subscriptions", json=body, headers=admin)
    assert r.status_code == 422, r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert client.get("/api/v1/subscriptions", headers=admin).get_json()["items"] == []


def test_https_only_mode(app, client, admin):
    app.config["CMS_WEBHOOK_HTTPS_ONLY"] = True
    try:
        r = client.post("/api/v1/subscriptions", json={"url": "http://93.184.215.14/hook"}, headers=admin)
        assert r.status_code == 422 and "https" in r.get_json()["detail"]
        assert (
            client.post("/api/v1/subscriptions", json={"url": PUBLIC_URL}, headers=admin).status_code == 201
        )
    finally:
        app.config["CMS_WEBHOOK_HTTPS_ONLY"] = False


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/subscriptions"),
        ("POST", "/subscriptions"),
        ("GET", "/subscriptions/{id}"),
        ("PATCH", "/subscriptions/{id}"),
        ("DELETE", "/subscriptions/{id}"),
        ("POST", "/subscriptions/{id}/rotate-secret"),
        ("POST", "/subscriptions/{id}/ping"),
        ("POST", "/subscriptions/{id}/recover"),
        ("GET", "/deliveries"),
        ("GET", "/events"),
    ],
)
def test_only_admins_manage_webhooks(client, keys, method, path):
    sub = client.post(
        "/api/v1/subscriptions", json={"url": PUBLIC_URL}, headers=keys.auth(Role.ADMIN)
    ).get_json()
    url = "/api/v1" + path.format(id=sub["id"])
    for role in (Role.EDITOR, Role.WRITER, Role.READER):
        r = client.open(url, method=method, json={}, headers=keys.auth(role))
        assert r.status_code == 403, (role, r.get_json())
    assert client.open(url, method=method, json={}).status_code == 401


def test_rotate_ping_disable_enable_recover(client, admin, clock):
    sub = client.post("/api/v1/subscriptions", json={"url": PUBLIC_URL}, headers=admin).get_json()
    sid = sub["id"]
    rotated = client.post(f"/api/v1/subscriptions/{sid}/rotate-secret", headers=admin).get_json()
    assert rotated["secret"] != sub["secret"]
    assert datetime.fromisoformat(rotated["previous_secret_expires_at"]) == datetime.fromisoformat(
        "2024-11-08T20:50:00+00:00"
    )

    ping = client.post(f"/api/v1/subscriptions/{sid}/ping", headers=admin)
    assert ping.status_code == 202
    events = client.get(f"/api/v1/events?subscription_id={sid}", headers=admin).get_json()["items"]
    assert [(e["id"], e["type"]) for e in events] == [(ping.get_json()["event_id"], "webhook.ping")]
    assert events[0]["deliveries"] == {"total": 0}  # not relayed yet

    off = client.patch(f"/api/v1/subscriptions/{sid}", json={"enabled": False}, headers=admin).get_json()
    assert off["enabled"] is False and off["disabled_reason"] == "Disabled by an administrator."
    r = client.post(f"/api/v1/subscriptions/{sid}/ping", headers=admin)
    assert r.status_code == 409
    on = client.patch(f"/api/v1/subscriptions/{sid}", json={"enabled": True}, headers=admin).get_json()
    assert on["enabled"] is True and on["disabled_reason"] is None and on["disabled_at"] is None

    r = client.post(
        f"/api/v1/subscriptions/{sid}/recover", json={"since": "2024-11-01T00:00:00Z"}, headers=admin
    )
    assert r.status_code == 202 and r.get_json() == {"requeued": 0}
    r = client.post(f"/api/v1/subscriptions/{sid}/recover", json={"since": "yesterday"}, headers=admin)
    assert r.status_code == 422


def test_unknown_ids_are_404(client, admin):
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/subscriptions/{missing}"),
        ("POST", f"/subscriptions/{missing}/ping"),
        ("GET", f"/deliveries/{missing}"),
        ("POST", f"/deliveries/{missing}/redeliver"),
    ]:
        assert client.open("/api/v1" + path, method=method, headers=admin).status_code == 404


def test_events_list_shows_article_events_with_counts(client, keys):
    editor, admin = keys.auth(Role.EDITOR), keys.auth(Role.ADMIN)
    article = create(client, editor)
    post(client, editor, article["id"], "publish")
    post(client, editor, article["id"], "unpublish")
    items = client.get(f"/api/v1/events?article_id={article['id']}", headers=admin).get_json()["items"]
    assert [(e["type"], e["sequence"]) for e in items] == [
        ("article.unpublished", 2),
        ("article.published", 1),
    ]
    page = client.get("/api/v1/events?limit=1&type=article.published", headers=admin).get_json()
    assert len(page["items"]) == 1 and page["next_cursor"] is None
    r = client.get("/api/v1/events?cursor=nonsense", headers=admin)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "cursor"


def test_update_checks_a_new_url_and_headers_cleans_lists_and_only_enabling_wakes_the_sweep(
    db_session, clock, monkeypatch
):
    nudges: list[str] = []
    monkeypatch.setattr(uow, "after_commit", lambda _session, name: nudges.append(name))
    http_url = "http://93.184.215.14/hook"
    sub, _secret = subscriptions.create(db_session, {"url": http_url}, UrlPolicy())
    https_only = UrlPolicy(https_only=True)

    same = subscriptions.update_subscription(db_session, sub.id, {"url": http_url}, https_only)
    assert same.url == http_url  # the same URL again is not checked anew
    with pytest.raises(Unprocessable, match="cannot receive webhooks"):
        subscriptions.update_subscription(db_session, sub.id, {"url": http_url + "/2"}, https_only)
    with pytest.raises(Unprocessable, match="'Host' header is set by the delivery engine"):
        subscriptions.update_subscription(db_session, sub.id, {"headers": {"Host": "x"}}, https_only)

    changes = {
        "headers": None,
        "sections": [" Politics ", "Politics", " ", "World"],
        "description": "Desk",
        "max_in_flight": 2,
    }
    sub = subscriptions.update_subscription(db_session, sub.id, changes, https_only)
    assert (sub.headers, sub.sections, sub.description, sub.max_in_flight) == (
        {},
        ["Politics", "World"],
        "Desk",
        2,
    )
    assert sub.event_types == ["*"]  # not named: unchanged

    off = subscriptions.update_subscription(db_session, sub.id, {"enabled": False}, https_only)
    assert (off.enabled, off.disabled_at, off.disabled_reason) == (
        False,
        clock(),
        "Disabled by an administrator.",
    )
    clock.advance(minutes=1)
    again = subscriptions.update_subscription(db_session, sub.id, {"enabled": False}, https_only)
    assert again.disabled_at == clock() - timedelta(minutes=1)  # no change, nothing recorded anew
    assert nudges == []
    sub.consecutive_failures = 3
    on = subscriptions.update_subscription(db_session, sub.id, {"enabled": True}, https_only)
    assert (on.enabled, on.disabled_at, on.disabled_reason, on.consecutive_failures) == (True, None, None, 0)
    assert nudges == ["sweep"]
