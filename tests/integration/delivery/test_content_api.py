"""The published-content API over real HTTP, on SQLite and PostgreSQL: published versions
only, withdrawn articles, partner filters, formats, caching and search."""

from __future__ import annotations

import uuid

import jsonschema
import pytest

from tests.schemas import load_schema

DRAFT = "DRAFT HEADLINE NOT FOR PARTNERS"
FORMATS = {
    "json": {"format": "json"},
    "ninjs": {"format": "ninjs"},
    "ninjs3": {"format": "ninjs3"},
}
ACCEPT = {
    "json": "application/json",
    "ninjs": "application/ninjs+json; version=2.1",
    "ninjs3": "application/ninjs+json; version=3.1",
}


def test_a_partner_reads_the_published_version_never_a_later_draft(live):
    partner = live.partner()
    article = live.article(section=partner.section, internal_note="Lawyer says: hold the Valdai quote")
    live.save_draft(article["id"], headline=DRAFT, internal_note="still internal")

    by_id = partner.get(f"/content/v1/articles/{article['id']}")
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["headline"] == article["headline"] != DRAFT
    assert by_id.json()["version"] == 1 and by_id.json()["state"] == "published"
    by_slug = partner.get(f"/content/v1/articles/by-slug/{article['slug']}")
    assert by_slug.json()["headline"] == article["headline"]
    listed = partner.get("/content/v1/articles").json()["items"]
    assert [a["headline"] for a in listed] == [article["headline"]]
    feed = partner.get("/content/v1/changes").json()["changes"]
    assert [c["data"]["article"]["headline"] for c in feed] == [article["headline"]]
    for response in (by_id, by_slug):
        assert DRAFT not in response.text
        assert "internal_note" not in response.json() and "Lawyer" not in response.text
    for fmt in ("ninjs", "ninjs3"):
        item = partner.get(f"/content/v1/articles/{article['id']}", params={"format": fmt})
        assert DRAFT not in item.text and "Lawyer" not in item.text and "internal" not in item.text

    # Publishing the draft makes it what partners see.
    live.act(article["id"], "publish")
    assert partner.get(f"/content/v1/articles/{article['id']}").json()["headline"] == DRAFT


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_unpublished_is_404_and_killed_is_410_in_every_format(live, fmt):
    partner = live.partner()
    gone = live.article(section=partner.section)
    hidden = live.article(section=partner.section)
    never = live.article(section=partner.section, publish=False)
    live.act(hidden["id"], "unpublish")
    live.act(gone["id"], "kill", reason="Court order: the quote was fabricated")

    for how in (FORMATS[fmt], None):
        headers = {} if how else {"Accept": ACCEPT[fmt]}
        for article in (hidden, never):
            r = partner.get(f"/content/v1/articles/{article['id']}", params=how, headers=headers)
            assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
            assert (
                partner.get(f"/content/v1/articles/by-slug/{article['slug']}", params=how).status_code == 404
            )
        r = partner.get(f"/content/v1/articles/{gone['id']}", params=how, headers=headers)
        assert r.status_code == 410, r.text
        body = r.json()
        assert body["pubstatus"] == "canceled"
        assert body["reason"] == "Court order: the quote was fabricated"
        assert body["article_id"] == gone["id"] and body["slug"] == gone["slug"]
        assert partner.get(f"/content/v1/articles/by-slug/{gone['slug']}", params=how).status_code == 410
    assert partner.get("/content/v1/articles", params=FORMATS[fmt]).json()["items"] == []


def test_a_republication_moves_the_article_between_tags_and_search_terms(live):
    """What partners filter and search on follows the published version: a tag or a word
    the new version drops stops matching, a new one starts."""
    old, new, kept = (f"Tag-{uuid.uuid4().hex[:8]}" for _ in range(3))
    by_old, by_new, by_kept = (live.partner(tags=[t.lower()]) for t in (old, new, kept))
    article = live.article(tags=[old, kept], headline="Zanzibarian ferry delayed")

    def listed(partner, query=""):
        return [a["id"] for a in partner.get(f"/content/v1/articles{query}").json()["items"]]

    assert listed(by_old) == [article["id"]] and listed(by_new) == [] and listed(by_kept) == [article["id"]]
    assert listed(by_kept, "?q=zanzibarian") == [article["id"]]
    live.save_draft(article["id"], tags=[new, kept], headline="Quokkaland ferry delayed")
    live.act(article["id"], "publish")
    assert listed(by_old) == [] and listed(by_new) == [article["id"]] and listed(by_kept) == [article["id"]]
    assert listed(by_kept, "?q=zanzibarian") == [] and listed(by_kept, "?q=quokkaland") == [article["id"]]


def test_a_partner_sees_only_what_its_filters_allow(live):
    world = live.partner()
    sport = live.partner()
    english_only = live.partner(sections=[world.section], languages=["en"])
    tag = f"Tag-{uuid.uuid4().hex[:8]}"
    tagged = live.partner(tags=[tag.lower()])  # tags match case-insensitively, one is enough
    in_world = live.article(section=world.section.upper())  # sections too
    in_world_bg = live.article(section=world.section, language="bg", headline="Путин поздрави Тръмп")
    in_sport = live.article(section=sport.section)
    with_tag = live.article(section=sport.section, tags=["Russia", tag])

    def visible(partner):
        return {a["id"] for a in partner.get("/content/v1/articles").json()["items"]}

    assert visible(world) == {in_world["id"], in_world_bg["id"]}
    assert visible(sport) == {in_sport["id"], with_tag["id"]}
    assert visible(english_only) == {in_world["id"]}
    assert visible(tagged) == {with_tag["id"]}
    assert partner_status(world, in_sport) == 404
    assert partner_status(sport, in_world) == 404
    assert partner_status(english_only, in_world_bg) == 404
    assert partner_status(tagged, in_sport) == 404
    assert partner_status(world, in_world_bg) == 200
    assert partner_status(tagged, with_tag) == 200
    assert sport.get(f"/content/v1/articles/by-slug/{in_world['slug']}").status_code == 404
    feed_ids = {c["article_id"] for c in sport.get("/content/v1/changes").json()["changes"]}
    assert feed_ids == {in_sport["id"], with_tag["id"]}
    # A kill outside the filter is not even a 410 for it: the article does not exist there.
    live.act(in_world["id"], "kill", reason="Legal")
    assert partner_status(sport, in_world) == 404 and partner_status(world, in_world) == 410


def partner_status(partner, article) -> int:
    return partner.get(f"/content/v1/articles/{article['id']}").status_code


def test_conditional_requests_round_trip(live):
    partner = live.partner()
    article = live.article(section=partner.section)
    path = f"/content/v1/articles/{article['id']}"
    first = partner.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Vary"] == "Accept, Authorization"
    assert first.headers["Cache-Control"] == "max-age=30, stale-while-revalidate=60"
    assert first.headers["Last-Modified"]

    again = partner.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert partner.get(path, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert partner.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    # Another format is another representation.
    ninjs = partner.get(path, params={"format": "ninjs"}, headers={"If-None-Match": etag})
    assert ninjs.status_code == 200 and ninjs.headers["ETag"] != etag
    # A draft changes nothing partners see; a new published version does.
    live.save_draft(article["id"], headline=DRAFT)
    assert partner.get(path, headers={"If-None-Match": etag}).status_code == 304
    live.act(article["id"], "publish")
    changed = partner.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["headline"] == DRAFT


def test_items_validate_against_the_iptc_ninjs_schemas(live):
    schemas = {"ninjs": load_schema("ninjs-schema_2.1.json"), "ninjs3": load_schema("ninjs-schema_3.1.json")}
    partner = live.partner()
    article = live.article(section=partner.section)
    for fmt, schema in schemas.items():
        for how in ({"params": {"format": fmt}}, {"headers": {"Accept": ACCEPT[fmt]}}):
            r = partner.get(f"/content/v1/articles/{article['id']}", **how)
            assert r.status_code == 200 and r.headers["Content-Type"] == ACCEPT[fmt]
            jsonschema.validate(r.json(), schema)
        listed = partner.get("/content/v1/articles", params={"format": fmt}).json()["items"]
        assert len(listed) == 1
        jsonschema.validate(listed[0], schema)
        for change in partner.get("/content/v1/changes", params={"format": fmt}).json()["changes"]:
            jsonschema.validate(change["data"], schema)
    item = partner.get(f"/content/v1/articles/{article['id']}", params={"format": "ninjs3"}).json()
    assert item["headlines"][0]["value"] == article["headline"]
    assert item["edNote"] == article["editor_note"]  # meant for the receiving editor
    # Accept without a version takes the newest ninjs; json when nothing is asked for.
    assert (
        partner.get(
            f"/content/v1/articles/{article['id']}", headers={"Accept": "application/ninjs+json"}
        ).headers["Content-Type"]
        == ACCEPT["ninjs3"]
    )
    assert (
        partner.get(f"/content/v1/articles/{article['id']}", headers={"Accept": "*/*"}).headers[
            "Content-Type"
        ]
        == "application/json"
    )


def test_search_finds_english_by_stem_and_bulgarian_by_word(live):
    partner = live.partner()
    seed = live.article(section=partner.section)
    bulgarian = live.article(
        section=partner.section,
        language="bg",
        headline="Путин поздрави Тръмп за победата",
        standfirst="Руският президент изрази готовност за диалог.",
        body="<p>Москва е готова да възстанови отношенията със САЩ, заяви Путин в Сочи.</p>",  # noqa: RUF001
        slug=f"putin-bg-{uuid.uuid4().hex[:6]}",
    )

    def found(q, **params):
        r = partner.get("/content/v1/articles", params={"q": q, **params})
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    assert found("assassination") == [seed["id"]]  # a word of the body
    assert found("congratulating Putin") == [seed["id"]]  # English stems: congratulated
    assert found("отношенията") == [bulgarian["id"]]
    assert found("Москва", language="bg") == [bulgarian["id"]]
    assert found("Putin") and set(found("Putin")) <= {seed["id"], bulgarian["id"]}
    assert found("zanzibar") == []


def test_lists_filter_and_page_with_a_cursor(live):
    partner = live.partner()
    ids = [live.article(section=partner.section, tags=["Russia", f"n{i}"])["id"] for i in range(5)]
    newest_first = list(reversed(ids))
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = partner.get("/content/v1/articles", params=params).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    assert [a["id"] for a in partner.get("/content/v1/articles", params={"tag": "N3"}).json()["items"]] == [
        ids[3]
    ]
    assert (
        len(partner.get("/content/v1/articles", params={"section": partner.section.upper()}).json()["items"])
        == 5
    )
    assert partner.get("/content/v1/articles", params={"section": "elsewhere"}).json()["items"] == []
    assert partner.get("/content/v1/articles", params={"language": "bg"}).json()["items"] == []
    assert len(partner.get("/content/v1/articles", params={"language": "EN"}).json()["items"]) == 5
    assert partner.get("/content/v1/articles", params={"since": "2999-01-01T00:00:00Z"}).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "params", "headers", "status"),
    [
        ("/content/v1/articles", {"cursor": "nope"}, {}, 400),
        ("/content/v1/articles", {"limit": 0}, {}, 400),
        ("/content/v1/articles", {"limit": 101}, {}, 400),
        ("/content/v1/articles", {"limit": "many"}, {}, 400),
        ("/content/v1/articles", {"q": "x" * 201}, {}, 400),
        ("/content/v1/articles", {"since": "yesterday"}, {}, 400),
        ("/content/v1/articles", {"unknown": "1"}, {}, 400),
        ("/content/v1/articles", {"format": "rss"}, {}, 406),
        ("/content/v1/articles", {}, {"Accept": "text/html"}, 406),
        ("/content/v1/articles", {}, {"Accept": "application/ninjs+json; version=1.0"}, 406),
        ("/content/v1/changes", {"after": "garbage"}, {}, 400),
        ("/content/v1/changes", {"limit": 1001}, {}, 400),
        ("/content/v1/changes", {"format": "xml"}, {}, 406),
    ],
)
def test_bad_input_gets_a_clear_problem(live, path, params, headers, status):
    partner = live.partner()
    r = partner.get(path, params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == status and r.json()["detail"]


@pytest.mark.parametrize("q", ["the and of", "!!! ???", "A", "¡"])
def test_a_search_with_nothing_to_look_for_gets_an_empty_page(live, q):
    partner = live.partner()
    live.article(section=partner.section)
    r = partner.get("/content/v1/articles", params={"q": q})
    assert r.status_code == 200 and r.json() == {"items": [], "format": "json", "next_cursor": None}


def test_a_change_committed_by_another_process_reaches_the_cache_at_once(live):
    """The API keeps rows between commits; a commit anywhere (NOTIFY) drops them."""
    from cms.platform.extensions import db
    from cms.publishing import commands as publishing
    from tests.factories import EDITOR, make_app
    from tests.helpers import eventually

    partner = live.partner()
    article = live.article(section=partner.section)
    path = f"/content/v1/articles/{article['id']}"
    cache = live.app.extensions["cms_projection_cache"]
    assert partner.get(path).status_code == 200
    if cache.enabled:  # PostgreSQL: the listener is up, and the row is kept
        eventually(lambda: cache.get(("id", uuid.UUID(article["id"])))[1] is not None, what="the listener")
        assert partner.get(path).status_code == 200
        assert cache.get(("id", uuid.UUID(article["id"])))[0] is not None
    other = make_app(live.app.config["SQLALCHEMY_DATABASE_URI"])  # another API process, as it were
    with other.app_context():
        publishing.kill(db.session, EDITOR, uuid.UUID(article["id"]), reason="Legal")
        db.engine.dispose()
    eventually(lambda: partner.get(path).status_code == 410, timeout=10, what="the kill to be served")
