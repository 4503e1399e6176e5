"""The console over HTTP on both databases: sign-in exchanges a key for a session cookie
(HttpOnly, SameSite=Strict, /console only), every form needs its CSRF token, roles are
checked on every route, idle and revoked sessions end, and the API stays cookie-free."""

from __future__ import annotations

import re
import time

import pytest

from cms.platform.actors import Role
from tests.helpers import create, patch, seed_fields
from tests.integration.console.conftest import _sign_in, _token

ROUTES = ["/console/", "/console/articles", "/console/articles/00000000-0000-0000-0000-000000000001"]


@pytest.mark.parametrize("path", ROUTES)
def test_every_page_asks_for_a_sign_in(client, path):
    r = client.get(path)
    assert r.status_code == 302 and r.headers["Location"].startswith("/console/login?next=")


def test_sign_in_sets_a_strict_cookie_and_the_api_stays_stateless(client, keys):
    login = client.get("/console/login")
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    csp = login.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "frame-ancestors 'none'" in csp
    r = _sign_in(client, keys.raw[Role.EDITOR])
    assert r.status_code == 302 and r.headers["Location"] == "/console/"
    assert keys.raw[Role.EDITOR] not in r.headers["Set-Cookie"]  # the cookie names the key, never holds it
    api = client.get("/api/v1/articles", headers=keys.auth(Role.EDITOR))
    assert api.status_code == 200 and "Set-Cookie" not in api.headers


def test_a_form_without_its_csrf_token_is_refused(client, keys):
    assert client.post("/console/login", data={"key": keys.raw[Role.EDITOR]}).status_code == 400
    assert _sign_in(client, keys.raw[Role.EDITOR]).status_code == 302
    assert client.post("/console/logout").status_code == 400  # signed in, still no token: refused
    assert client.get("/console/articles").status_code == 200


def test_bad_keys_are_refused(client, keys):
    r = _sign_in(client, "cms_not-a-key")
    assert r.status_code == 401 and "unknown" in r.get_data(as_text=True)
    assert client.get("/console/articles").status_code == 302


def test_roles_are_checked_on_every_route(client, keys):
    article = create(client, keys.auth(Role.WRITER), headline="Role check")
    paths = ["/console/articles", f"/console/articles/{article['id']}"]
    for role, status in ((Role.READER, 403), (Role.WRITER, 200), (Role.EDITOR, 200), (Role.ADMIN, 200)):
        _sign_in(client, keys.raw[role])
        assert [client.get(p).status_code for p in paths] == [status, status], role
    partner = client.post(
        "/api/v1/partners", json={"name": "P", "email": "p@x.example"}, headers=keys.auth(Role.ADMIN)
    )
    key = client.post(
        f"/api/v1/partners/{partner.get_json()['id']}/keys", json={"name": "k"}, headers=keys.auth(Role.ADMIN)
    ).get_json()["key"]
    assert _sign_in(client, key).status_code == 302
    assert client.get("/console/").headers["Location"] == "/console/partner/subscriptions"
    assert [client.get(p).status_code for p in paths] == [403, 403]


def test_sessions_end_when_idle_or_when_the_key_is_revoked(client, keys):
    assert _sign_in(client, keys.raw[Role.EDITOR]).status_code == 302
    with client.session_transaction(path="/console/") as session:
        session["seen"] = time.time() - 31 * 60
    assert client.get("/console/articles").status_code == 302  # idle past CMS_CONSOLE_IDLE_MINUTES

    raw = client.post(
        "/api/v1/api-keys", json={"name": "temp", "role": "editor"}, headers=keys.auth(Role.ADMIN)
    )
    temp = raw.get_json()
    assert _sign_in(client, temp["key"]).status_code == 302
    assert client.get("/console/articles").status_code == 200
    assert client.delete(f"/api/v1/api-keys/{temp['id']}", headers=keys.auth(Role.ADMIN)).status_code == 204
    assert client.get("/console/articles").status_code == 302


def test_the_history_shows_a_word_level_diff(client, keys):
    editor = keys.auth(Role.EDITOR)
    fields = seed_fields()
    article = create(client, editor, **fields)
    body = fields["body"]
    word = re.search(r"\b(congratulated|said|stated)\b", body).group(1)
    patch(client, editor, article, body=body.replace(word, "REPLACED", 1))
    _sign_in(client, keys.raw[Role.EDITOR])
    page = client.get(f"/console/articles/{article['id']}").get_data(as_text=True)
    diff = re.search(r'<p class="diff" id="body-diff">(.*?)</p>', page, re.S).group(1)
    assert re.findall(r"<ins>(.*?)</ins>", diff) == ["REPLACED"]
    assert re.findall(r"<del>(.*?)</del>", diff) == [word]
    assert "No other field changed." in page


def _partner_key(client, keys, name):
    admin = keys.auth(Role.ADMIN)
    partner = client.post(
        "/api/v1/partners", json={"name": name, "email": "p@x.example"}, headers=admin
    ).get_json()
    return client.post(
        f"/api/v1/partners/{partner['id']}/keys", json={"name": "k"}, headers=admin
    ).get_json()["key"]


def _subscribe(client, key, url):
    r = client.post(
        "/partner/v1/subscriptions", json={"url": url}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_partner_serves_itself_and_sees_nothing_of_another(client, keys):
    alice, bob = _partner_key(client, keys, "Alice"), _partner_key(client, keys, "Bob")
    mine = _subscribe(client, alice, "https://93.184.215.14/hooks/alice")
    theirs = _subscribe(client, bob, "https://93.184.215.14/hooks/bob")
    assert _sign_in(client, alice).headers["Location"] == "/console/"
    assert client.get("/console/").headers["Location"] == "/console/partner/subscriptions"
    listing = client.get("/console/partner/subscriptions").get_data(as_text=True)
    assert mine["url"] in listing and theirs["url"] not in listing
    page_path = f"/console/partner/subscriptions/{mine['id']}"
    token = _token(client, page_path)
    rotated = client.post(f"{page_path}/rotate", data={"csrf_token": token}).get_data(as_text=True)
    secret = re.search(r'id="new-secret">.*?<code>(whsec_[^<]+)</code>', rotated, re.S).group(1)
    assert secret != mine["secret"] and secret not in client.get(page_path).get_data(as_text=True)
    pinged = client.post(f"{page_path}/ping", data={"csrf_token": token}, follow_redirects=True)
    assert "Test ping sent." in pinged.get_data(as_text=True)
    replayed = client.post(f"{page_path}/replay", data={"csrf_token": token, "since": "2020-01-01T00:00"},
                           follow_redirects=True)  # fmt: skip
    assert "deliveries queued again." in replayed.get_data(as_text=True)
    # Bob's subscription does not exist for Alice, read or write.
    other = f"/console/partner/subscriptions/{theirs['id']}"
    assert client.get(other).status_code == 404
    assert client.post(f"{other}/rotate", data={"csrf_token": token}).status_code == 404
    assert client.get("/console/articles").status_code == 403
    _sign_in(client, keys.raw[Role.ADMIN])
    assert client.get("/console/partner/subscriptions").status_code == 403  # the partner pages are partners'


def test_ops_pages_are_for_admins_and_pause_and_resume(client, keys):
    admin = keys.auth(Role.ADMIN)
    sub = client.post("/api/v1/subscriptions", json={"url": "https://93.184.215.14/hooks/ops"}, headers=admin)
    sub = sub.get_json()
    pages = ["/console/ops/subscriptions", f"/console/ops/subscriptions/{sub['id']}"]
    _sign_in(client, keys.raw[Role.EDITOR])
    assert [client.get(p).status_code for p in pages] == [403, 403]
    _sign_in(client, keys.raw[Role.ADMIN])
    assert [client.get(p).status_code for p in pages] == [200, 200]
    assert client.get("/console/ops/subscriptions/00000000-0000-0000-0000-000000000009").status_code == 404
    assert client.get("/console/ops/events/00000000-0000-0000-0000-000000000009").status_code == 404
    token = _token(client, pages[1])
    paused = client.post(f"{pages[1]}/pause", data={"csrf_token": token}, follow_redirects=True)
    assert "Paused." in paused.get_data(as_text=True)
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=admin).get_json()["enabled"] is False
    client.post(f"{pages[1]}/resume", data={"csrf_token": token})
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=admin).get_json()["enabled"] is True
    assert client.post(f"{pages[1]}/pause").status_code == 400  # no CSRF token
