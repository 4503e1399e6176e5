"""Partners over real HTTP, on SQLite and PostgreSQL: accounts and keys (admin), keys
kept apart from authoring keys, self-service within the partner's own things, limits."""

from __future__ import annotations

import re
import uuid

import pytest

PARAM = re.compile(r"\{(\w+)\}")


def test_admins_manage_partners_and_their_keys(live):
    created = live.api(
        "POST",
        "/partners",
        201,
        json={
            "name": "Dnevnik",
            "email": "tech@dnevnik.example",
            "sections": ["World", " World "],
            "languages": ["bg"],
        },
    ).json()
    assert created["sections"] == ["World"] and created["enabled"] is True
    assert created["max_subscriptions"] == 10 and created["rate_limit_per_minute"] == 600
    assert "cursor_secret" not in created
    pid = created["id"]
    assert live.api("GET", f"/partners/{pid}", 200).json()["name"] == "Dnevnik"
    assert pid in [p["id"] for p in live.api("GET", "/partners?limit=100", 200).json()["items"]]
    changed = live.api(
        "PATCH", f"/partners/{pid}", 200, json={"tags": ["Bulgaria"], "max_subscriptions": 2}
    ).json()
    assert (
        changed["tags"] == ["Bulgaria"]
        and changed["max_subscriptions"] == 2
        and changed["sections"] == ["World"]
    )

    key = live.api("POST", f"/partners/{pid}/keys", 201, json={"name": "production"}).json()
    assert key["key"].startswith("cmsp_") and key["key"].startswith(key["prefix"]) and len(key["prefix"]) < 16
    listed = live.api("GET", f"/partners/{pid}/keys", 200).json()["items"]
    assert [k["prefix"] for k in listed] == [key["prefix"]] and "key" not in listed[0]
    auth = {"Authorization": f"Bearer {key['key']}"}
    assert live.http.get(f"{live.url}/partner/v1/me", headers=auth).json()["id"] == pid

    live.api("DELETE", f"/partners/{pid}/keys/{key['id']}", 204)
    refused = live.http.get(f"{live.url}/partner/v1/me", headers=auth)
    assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
    assert live.api("GET", f"/partners/{pid}/keys", 200).json()["items"] == []
    key2 = live.api("POST", f"/partners/{pid}/keys", 201, json={"name": "second"}).json()["key"]
    sub = live.http.post(
        f"{live.url}/partner/v1/subscriptions",
        json={"url": "https://93.184.215.14/dnevnik"},
        headers={"Authorization": f"Bearer {key2}"},
    ).json()
    live.api("DELETE", f"/partners/{pid}", 204)
    live.api("GET", f"/partners/{pid}", 404)
    live.api("GET", f"/subscriptions/{sub['id']}", 404)  # its subscriptions go with it
    gone = live.http.get(f"{live.url}/partner/v1/me", headers={"Authorization": f"Bearer {key2}"})
    assert gone.status_code == 401  # and its keys
    bad = live.api("POST", "/partners", 422, json={"name": "x", "email": "not an email"}).json()
    assert bad["errors"][0]["field"] == "email"


def test_a_disabled_partner_is_refused_until_enabled_again(live):
    partner = live.partner()
    live.api("PATCH", f"/partners/{partner.id}", 200, json={"enabled": False})
    r = partner.get("/content/v1/articles")
    assert r.status_code == 403 and r.json()["type"].endswith("/partner-disabled")
    live.api("PATCH", f"/partners/{partner.id}", 200, json={"enabled": True})
    assert partner.get("/content/v1/articles").status_code == 200


def _authoring_operations(live):
    spec = live.http.get(f"{live.url}/api/v1/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if op.get("security") == [{"bearer": []}]:
                concrete = PARAM.sub(lambda m: "1" if m.group(1) == "number" else str(uuid.uuid4()), path)
                yield method.upper(), concrete


def test_a_partner_key_is_refused_on_every_authoring_route(live):
    partner = live.partner()
    operations = list(_authoring_operations(live))
    assert len(operations) > 30  # the whole authoring and admin API
    for method, path in operations:
        r = partner.call(method, path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert "partner key" in r.json()["detail"]
    # ... and an authoring key on every partner route.
    spec = live.http.get(f"{live.url}/api/v1/openapi.json").json()
    partner_paths = [
        (m, p)
        for p, ops in spec["paths"].items()
        for m, op in ops.items()
        if op.get("security") == [{"partnerKey": []}]
    ]
    assert len(partner_paths) >= 15
    for method, path in partner_paths:
        concrete = PARAM.sub(lambda m: str(uuid.uuid4()) if m.group(1) != "slug" else "a-slug", path)
        r = live.http.request(method.upper(), live.url + concrete, headers=live.admin, json={})
        assert r.status_code == 401, (method, path, r.status_code)


def test_a_partner_manages_only_its_own_subscriptions_and_deliveries(live):
    alice, bob = live.partner(), live.partner()
    sub = alice.call("POST", "/partner/v1/subscriptions", json={"url": "https://93.184.215.14/alice"})
    assert sub.status_code == 201, sub.text
    sub = sub.json()
    assert sub["partner_id"] == alice.id and sub["secret"].startswith("whsec_")
    sid = sub["id"]
    live.article(section=alice.section)
    assert live.relay() >= 1  # a delivery for alice's subscription

    mine = alice.get("/partner/v1/subscriptions").json()["items"]
    assert [s["id"] for s in mine] == [sid]
    assert bob.get("/partner/v1/subscriptions").json()["items"] == []
    changed = alice.call(
        "PATCH", f"/partner/v1/subscriptions/{sid}", json={"format": "ninjs3", "tags": ["Russia"]}
    )
    assert changed.status_code == 200 and changed.json()["format"] == "ninjs3"
    assert (
        alice.call("POST", f"/partner/v1/subscriptions/{sid}/rotate-secret").json()["secret"] != sub["secret"]
    )
    assert alice.call("POST", f"/partner/v1/subscriptions/{sid}/ping").status_code == 202
    replayed = alice.call(
        "POST", f"/partner/v1/subscriptions/{sid}/replay", json={"since": "2020-01-01T00:00:00Z"}
    )
    assert replayed.status_code == 202

    # The admin sees it, as the partner's.
    assert live.api("GET", f"/subscriptions/{sid}", 200).json()["partner_id"] == alice.id

    # Bob meets 404s, exactly as for ids that do not exist.
    for method, path, body in [
        ("GET", f"/partner/v1/subscriptions/{sid}", None),
        ("PATCH", f"/partner/v1/subscriptions/{sid}", {"url": "https://93.184.215.14/bob"}),
        ("POST", f"/partner/v1/subscriptions/{sid}/rotate-secret", None),
        ("POST", f"/partner/v1/subscriptions/{sid}/ping", None),
        ("POST", f"/partner/v1/subscriptions/{sid}/replay", {"since": "2020-01-01T00:00:00Z"}),
        ("DELETE", f"/partner/v1/subscriptions/{sid}", None),
    ]:
        theirs = bob.call(method, path, json=body)
        nobody = bob.call(method, path.replace(sid, str(uuid.uuid4())), json=body)
        assert theirs.status_code == nobody.status_code == 404, (method, path)
        assert theirs.json()["title"] == nobody.json()["title"]

    deliveries = alice.get("/partner/v1/deliveries").json()["items"]
    assert deliveries and {d["subscription_id"] for d in deliveries} == {sid}
    assert bob.get("/partner/v1/deliveries").json()["items"] == []
    assert bob.get("/partner/v1/deliveries", params={"subscription_id": sid}).json()["items"] == []
    did = deliveries[0]["id"]
    assert alice.get(f"/partner/v1/deliveries/{did}").json()["attempt_log"] == []
    assert bob.get(f"/partner/v1/deliveries/{did}").status_code == 404
    assert bob.call("POST", f"/partner/v1/deliveries/{did}/redeliver").status_code == 404
    assert alice.call("POST", f"/partner/v1/deliveries/{did}/redeliver").status_code in (202, 409)

    assert alice.call("DELETE", f"/partner/v1/subscriptions/{sid}").status_code == 204
    assert alice.get("/partner/v1/subscriptions").json()["items"] == []


def test_a_partners_subscriptions_are_bounded_by_its_limit(live):
    partner = live.partner(max_subscriptions=2)
    for i in range(2):
        assert partner.call(
            "POST", "/partner/v1/subscriptions", json={"url": f"https://93.184.215.14/{i}"}
        ).ok
    refused = partner.call("POST", "/partner/v1/subscriptions", json={"url": "https://93.184.215.14/3"})
    assert refused.status_code == 409 and refused.json()["max_subscriptions"] == 2
    assert len(partner.get("/partner/v1/subscriptions").json()["items"]) == 2


def test_a_partner_over_its_rate_gets_429_with_retry_after(live):
    partner = live.partner(rate_limit_per_minute=5)
    statuses = [partner.get("/content/v1/articles").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    refused = partner.get("/content/v1/articles")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Content-Type"] == "application/problem+json"
    # Another partner is not slowed down by it.
    assert live.partner().get("/content/v1/articles").status_code == 200


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer cms_notapartnerkey", "Basic abc", "Bearer cmsp_unknown"]
)
def test_content_routes_need_a_partner_key(live, header):
    r = live.http.get(f"{live.url}/content/v1/articles", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_disabled_partners_webhooks_wait_and_go_when_it_is_enabled_again(live):
    partner = live.partner()
    sub = partner.call("POST", "/partner/v1/subscriptions", json={"url": "https://93.184.215.14/p"}).json()
    live.claim()  # (nothing of anyone else's left to claim)
    live.api("PATCH", f"/partners/{partner.id}", 200, json={"enabled": False})
    live.article(section=partner.section)
    assert live.relay() == 1
    [waiting] = live.api("GET", f"/deliveries?subscription_id={sub['id']}", 200).json()["items"]
    assert waiting["status"] == "pending" and live.claim() == []
    live.api("PATCH", f"/partners/{partner.id}", 200, json={"enabled": True})
    assert [job.subscription_id for job in live.claim()] == [uuid.UUID(sub["id"])]
    # Outside the partner's filter, its subscription gets nothing, whatever its own filter.
    live.article(section="elsewhere")
    assert live.relay() == 0
