"""Creating, reading, revising and listing articles over the HTTP API."""

from __future__ import annotations

import pytest

from cms.platform.actors import Role
from tests.helpers import create, patch, post, seed_fields


def test_seed_story_round_trips_field_for_field(client, keys):
    fields = seed_fields()
    r = client.post(
        "/api/v1/articles",
        json={**fields, "message": "Imported from wire"},
        headers=keys.auth(Role.WRITER),
    )
    assert r.status_code == 201
    created = r.get_json()
    assert r.headers["ETag"].startswith('"v1.')
    assert r.headers["Location"] == f"/api/v1/articles/{created['id']}"

    fetched = client.get(f"/api/v1/articles/{created['id']}", headers=keys.auth(Role.READER))
    assert fetched.status_code == 200
    article = fetched.get_json()
    for name, value in fields.items():
        assert article[name] == value, name
    assert article["slug"] == (
        "putin-congratulated-trump-on-the-victory-russia-is-ready-to-resume-relations-with-the-us"
    )
    assert article["credits"] == ["BTA", "Reuters", "AFP"]
    assert article["section"] == "Last news" and article["byline"] == "Fakti"
    assert '"I would like to congratulate him on his election as president," Putin said' in article["body"]
    assert article["state"] == "draft" and article["version"] == 1
    assert article["published_version"] is None and article["first_published_at"] is None
    assert article["updated_by"] == "writer tester"


def test_bulgarian_headline_gets_transliterated_slug(client, keys):
    article = create(
        client, keys.auth(Role.WRITER), headline="Путин поздрави Тръмп за победата", language="bg"
    )
    assert article["slug"] == "putin-pozdravi-trmp-za-pobedata"
    assert article["language"] == "bg"


def test_slugs_are_unique_and_explicit_conflicts_are_409(client, keys):
    auth = keys.auth(Role.WRITER)
    first = create(client, auth, headline="Same headline")
    second = create(client, auth, headline="Same headline")
    third = create(client, auth, headline="Same headline")
    assert [first["slug"], second["slug"], third["slug"]] == [
        "same-headline",
        "same-headline-2",
        "same-headline-3",
    ]
    r = client.post("/api/v1/articles", json={"headline": "x", "slug": "same-headline"}, headers=auth)
    assert r.status_code == 409
    assert r.headers["Content-Type"] == "application/problem+json"
    r = client.patch(
        f"/api/v1/articles/{third['id']}",
        json={"slug": "same-headline"},
        headers={**auth, "If-Match": '"v1"'},
    )
    assert r.status_code == 409


def test_headline_without_letters_still_gets_a_slug(client, keys):
    assert create(client, keys.auth(), headline="!!!")["slug"] == "article"


def test_body_is_sanitised(client, keys):
    dirty = (
        '<p onclick="steal()">Hello <script>alert(1)</script><b>world</b></p>'
        '<a href="javascript:alert(1)">x</a><img src="https://e.org/i.jpg" onerror="x()">'
        '<iframe src="https://evil.example"></iframe><style>p{}</style>'
        '<a href="https://e.org/">ok</a>'
    )
    body = create(client, keys.auth(), body=dirty)["body"]
    for bad in ("script", "onclick", "onerror", "javascript:", "iframe", "style", "alert"):
        assert bad not in body
    assert "<b>world</b>" in body
    assert '<a href="https://e.org/" rel="noopener noreferrer">ok</a>' in body
    assert '<img src="https://e.org/i.jpg">' in body


def test_revision_requires_if_match(client, keys):
    auth = keys.auth(Role.WRITER)
    article = create(client, auth)
    url = f"/api/v1/articles/{article['id']}"
    r = client.patch(url, json={"headline": "No precondition"}, headers=auth)
    assert r.status_code == 428
    assert r.get_json()["type"].endswith("precondition-required")
    r = client.patch(url, json={"headline": "Blind"}, headers={**auth, "If-Match": "*"})
    assert r.status_code == 428
    assert client.get(url, headers=auth).get_json()["version"] == 1


def test_two_editors_cannot_overwrite_each_other(client, keys):
    auth = keys.auth(Role.EDITOR)
    article = create(client, auth, headline="Original")
    url = f"/api/v1/articles/{article['id']}"
    etag = client.get(url, headers=auth).headers["ETag"]
    # Editor A saves first.
    r = client.patch(url, json={"headline": "A's headline"}, headers={**auth, "If-Match": etag})
    assert r.status_code == 200 and r.headers["ETag"].startswith('"v2.')
    # Editor B still holds v1: refused, told the current version, nothing written.
    r = client.patch(url, json={"headline": "B's headline"}, headers={**auth, "If-Match": etag})
    assert r.status_code == 412
    problem = r.get_json()
    assert (
        problem["current_version"] == 2
        and problem["current_etag"] == client.get(url, headers=auth).headers["ETag"]
    )
    current = client.get(url, headers=auth).get_json()
    assert current["headline"] == "A's headline" and current["version"] == 2
    # Weak or foreign ETags never match; a header that holds no entity tag at all is malformed.
    for tag in ('W/"v2"', '"2"', '"v1", W/"v2"'):
        assert client.patch(url, json={"headline": "x"}, headers={**auth, "If-Match": tag}).status_code == 412
    for tag in ("v2", '"v2', 'v2"', '"v2" junk', '"v2" "v3"'):
        r = client.patch(url, json={"headline": "x"}, headers={**auth, "If-Match": tag})
        assert r.status_code == 400 and r.get_json()["type"].endswith("/bad-if-match"), tag
    # The version part is what If-Match compares: "v2" from an older client still works.
    r = client.patch(url, json={"headline": "C"}, headers={**auth, "If-Match": '"v2"'})
    assert r.status_code == 200 and r.get_json()["version"] == 3


def test_conditional_get_answers_304_until_the_article_changes(client, keys):
    auth = keys.auth(Role.EDITOR)
    article = create(client, auth, headline="Cached")
    url = f"/api/v1/articles/{article['id']}"
    first = client.get(url, headers=auth)
    etag = first.headers["ETag"]
    again = client.get(url, headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(url, headers={**auth, "If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(url, headers={**auth, "If-None-Match": "*"}).status_code == 304
    # Publishing changes the representation (state) without a new version: a new ETag.
    assert post(client, auth, article["id"], "publish").status_code == 200
    changed = client.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["state"] == "published"
    assert changed.headers["ETag"] != etag and changed.headers["ETag"].startswith('"v1.')
    # The new ETag still works for If-Match; the old one too (same version).
    r = client.patch(url, json={"headline": "Edited"}, headers={**auth, "If-Match": etag})
    assert r.status_code == 200
    # Without credentials a conditional request is still 401, never a 304.
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 401


def test_patch_changes_only_given_fields_and_records_message(client, keys):
    auth = keys.auth(Role.WRITER)
    article = create(client, auth, headline="H", standfirst="S", tags=["a"], credits=["BTA"])
    updated = patch(client, auth, article, standfirst=None, tags=["a", "b"], message="Add tag")
    assert updated["headline"] == "H" and updated["standfirst"] is None
    assert updated["tags"] == ["a", "b"] and updated["credits"] == ["BTA"]
    assert updated["version"] == 2
    v2 = client.get(f"/api/v1/articles/{article['id']}/versions/2", headers=auth).get_json()
    assert v2["message"] == "Add tag" and v2["created_by"] == "writer tester"


def test_patch_that_changes_nothing_writes_no_version(client, keys):
    auth = keys.auth(Role.EDITOR)
    article = create(client, auth, headline="Same", tags=["Russia"], credits=["BTA"])
    assert post(client, auth, article["id"], "publish").status_code == 200
    article = client.get(f"/api/v1/articles/{article['id']}", headers=auth).get_json()
    events = client.get(
        "/api/v1/events", query_string={"article_id": article["id"]}, headers=keys.auth(Role.ADMIN)
    )
    unchanged = patch(client, auth, article, headline="Same", tags=["Russia", " Russia"], message="no-op")
    assert unchanged["version"] == 1 and unchanged["updated_at"] == article["updated_at"]
    versions = client.get(f"/api/v1/articles/{article['id']}/versions", headers=auth).get_json()["items"]
    assert [v["number"] for v in versions] == [1]
    after = client.get(
        "/api/v1/events", query_string={"article_id": article["id"]}, headers=keys.auth(Role.ADMIN)
    )
    assert after.get_json()["items"] == events.get_json()["items"]
    # A real change still makes version 2.
    assert patch(client, auth, article, headline="Changed")["version"] == 2


def test_idempotent_create_returns_same_article(client, keys):
    auth = {**keys.auth(Role.WRITER), "Idempotency-Key": "req-7f1c"}
    body = {"headline": "Once only", "body": "<p>x</p>"}
    first = client.post("/api/v1/articles", json=body, headers=auth)
    again = client.post("/api/v1/articles", json=dict(reversed(body.items())), headers=auth)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["id"] == again.get_json()["id"]
    listing = client.get("/api/v1/articles", headers=auth).get_json()["items"]
    assert [a["headline"] for a in listing].count("Once only") == 1
    # Same key, different body: refused, nothing created.
    r = client.post("/api/v1/articles", json={"headline": "Different"}, headers=auth)
    assert r.status_code == 422
    assert r.get_json()["type"].endswith("idempotency-key-reused")
    listing = client.get("/api/v1/articles", headers=auth).get_json()["items"]
    assert "Different" not in [a["headline"] for a in listing]
    # Keys are per API key: another caller's same key is independent.
    other = client.post(
        "/api/v1/articles",
        json=body,
        headers={**keys.auth(Role.EDITOR), "Idempotency-Key": "req-7f1c"},
    )
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]


def test_invalid_idempotency_key_is_400(client, keys):
    r = client.post(
        "/api/v1/articles",
        json={"headline": "x"},
        headers={**keys.auth(), "Idempotency-Key": "x" * 256},
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "headline"),
        ({"headline": ""}, "headline"),
        ({"headline": "   "}, "headline"),
        ({"headline": "x" * 301}, "headline"),
        ({"headline": "ok", "unknown": 1}, "unknown"),
        ({"headline": "ok", "body": "x" * (2 * 1024 * 1024 + 1)}, "body"),
        ({"headline": "ok", "tags": "not-a-list"}, "tags"),
        ({"headline": "ok", "tags": [""]}, "tags.0"),
        ({"headline": "ok", "language": "english language"}, "language"),
        ({"headline": "ok", "slug": "Not A Slug"}, "slug"),
        ({"headline": "ok", "lead_image": {"caption": "no url"}}, "lead_image.url"),
        ({"headline": "ok", "lead_image": {"url": "javascript:alert(1)"}}, "lead_image.url"),
        ({"headline": "ok\x00"}, "headline"),
        ({"headline": "ok", "credits": ["x"] * 21}, "credits"),
    ],
)
def test_bad_input_is_422_listing_the_field_and_changes_nothing(client, keys, body, field):
    auth = keys.auth()
    r = client.post("/api/v1/articles", json=body, headers=auth)
    assert r.status_code == 422, r.get_json()
    problem = r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 422 and problem["title"]
    assert field in [e["field"] for e in problem["errors"]]
    assert client.get("/api/v1/articles", headers=auth).get_json()["items"] == []


def test_malformed_requests_get_clear_4xx(client, keys):
    auth = keys.auth()
    for raw in (
        '{"\\ud800": 1}',
        '{"headline": "x", "lead_image": {"\\udfff": 2}}',
        '{"headline": "\\ud800"}',
        '{"headline": "x", "tags": ["\\udc00"]}',
    ):
        r = client.post("/api/v1/articles", data=raw, content_type="application/json", headers=auth)
        assert r.status_code == 422, raw
    r = client.post("/api/v1/articles", data="{not json", content_type="application/json", headers=auth)
    assert r.status_code == 400
    r = client.post("/api/v1/articles", data="headline=x", content_type="text/plain", headers=auth)
    assert r.status_code == 415
    r = client.post("/api/v1/articles", json=["a list"], headers=auth)
    assert r.status_code == 422
    r = client.get("/api/v1/articles/not-a-uuid", headers=auth)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    r = client.get("/api/v1/articles/00000000-0000-0000-0000-000000000000", headers=auth)
    assert r.status_code == 404
    r = client.delete("/api/v1/articles", headers=auth)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = client.post(
        "/api/v1/articles",
        data=b"x" * (5 * 1024 * 1024),
        content_type="application/json",
        headers=auth,
    )
    assert r.status_code == 413


def test_section_and_tag_filters_ignore_case(client, keys):
    auth = keys.auth(Role.EDITOR)

    def headlines(query: str) -> list[str]:
        r = client.get(f"/api/v1/articles?{query}", headers=auth)
        assert r.status_code == 200, r.get_json()
        return [a["headline"] for a in r.get_json()["items"]]

    tagged = create(client, auth, headline="Bulgarian", section="Политика", tags=["Russia", "Русия"])
    create(client, auth, headline="Other", section="Sport", tags=["Football"])
    assert headlines("tag=russia") == headlines("tag=РУСИЯ") == headlines("section=ПОЛИТИКА") == ["Bulgarian"]
    assert headlines("section=sport") == headlines("tag=FOOTBALL") == ["Other"]
    # After a save that changes them, the new section and tags are found, the old ones not.
    patch(client, auth, tagged, section="Sport", tags=["USA"])
    assert headlines("section=SPORT") == ["Bulgarian", "Other"] and headlines("tag=usa") == ["Bulgarian"]
    assert headlines("tag=russia") == [] and headlines("section=политика") == []


def test_list_filters_and_cursor_pagination(client, keys, clock):
    auth = keys.auth(Role.EDITOR)
    made = []
    for i in range(5):
        clock.advance(minutes=1)
        made.append(
            create(
                client,
                auth,
                headline=f"Story {i}",
                section="world" if i % 2 else "sport",
                tags=["elections"] if i < 2 else ["economy"],
            )
        )
    since = clock.now
    clock.advance(minutes=1)
    client.post(f"/api/v1/articles/{made[0]['id']}/publish", json={}, headers=auth)

    def headlines(query: str) -> list[str]:
        r = client.get(f"/api/v1/articles?{query}", headers=auth)
        assert r.status_code == 200, r.get_json()
        return [a["headline"] for a in r.get_json()["items"]]

    assert headlines("") == ["Story 0", "Story 4", "Story 3", "Story 2", "Story 1"]
    assert headlines("state=published") == ["Story 0"]
    assert headlines("section=world") == ["Story 3", "Story 1"]
    assert headlines("tag=elections") == ["Story 0", "Story 1"]
    assert headlines(f"updated_since={since.isoformat().replace('+00:00', 'Z')}") == [
        "Story 0",
        "Story 4",
    ]

    seen, cursor = [], None
    while True:
        r = client.get("/api/v1/articles?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=auth)
        page = r.get_json()
        seen += [a["headline"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Story 0", "Story 4", "Story 3", "Story 2", "Story 1"]

    for bad in (
        "cursor=garbage",
        "limit=0",
        "limit=101",
        "state=bogus",
        "updated_since=yesterday",
        "updated_since=2024-11-07T10:00:00",
        "nonsense=1",
    ):
        r = client.get(f"/api/v1/articles?{bad}", headers=auth)
        assert r.status_code in (400, 422), bad
        assert r.headers["Content-Type"] == "application/problem+json"


def test_transitions_accept_an_empty_body_without_content_type(client, keys):
    article = create(client, keys.auth())
    r = client.post(f"/api/v1/articles/{article['id']}/publish", headers=keys.auth(Role.EDITOR))
    assert r.status_code == 200, r.get_json()
    r = client.post("/api/v1/articles", data="null", content_type="application/json", headers=keys.auth())
    assert r.status_code == 422
    r = client.post(
        "/api/v1/articles", data=b"\xff\xfe", content_type="application/json", headers=keys.auth()
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        '{"version": NaN}',
        '{"version": 1e400}',
        '{"version": 1e30}',
        '{"version": 100000000000000000000000000000}',
        '{"version": true}',
        '{"version": "2"}',
        '{"version": 1.5}',
    ],
)
def test_odd_numbers_are_rejected_not_crashing(client, keys, raw):
    article = create(client, keys.auth())
    r = client.post(
        f"/api/v1/articles/{article['id']}/publish",
        data=raw,
        content_type="application/json",
        headers=keys.auth(Role.EDITOR),
    )
    assert 400 <= r.status_code < 500, (raw, r.get_json())


def test_large_slug_families_keep_counting(client, keys):
    slugs = [create(client, keys.auth(), headline="Live updates")["slug"] for _ in range(23)]
    assert slugs[0] == "live-updates" and slugs[20] == "live-updates-21" and slugs[22] == "live-updates-23"
    assert len(set(slugs)) == 23


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_deeply_nested_json_is_a_400_and_changes_nothing(client, keys, depth):
    auth = keys.auth(Role.EDITOR)
    nested = "[" * depth + "]" * depth
    for raw in (
        nested,
        f'{{"headline": "x", "tags": {nested}}}',
        '{"lead_image": ' + '{"a":' * depth + "1" + "}" * depth + "}",
    ):
        r = client.post("/api/v1/articles", data=raw, content_type="application/json", headers=auth)
        assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json", raw[:40]
        assert "nested too deeply" in r.get_json()["title"]
    assert client.get("/api/v1/articles", headers=auth).get_json()["items"] == []
    # 32 levels is still only a validation matter (422), not a malformed body.
    ok_depth = "[" * 31 + "]" * 31
    r = client.post(
        "/api/v1/articles",
        data=f'{{"headline": "x", "tags": {ok_depth}}}',
        content_type="application/json",
        headers=auth,
    )
    assert r.status_code == 422
