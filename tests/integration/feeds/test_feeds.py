"""Feeds over real HTTP on both databases: RSS 2.0 and Atom parsed back by feedparser,
JSON Feed 1.1 checked for its required fields; published versions only, newest first;
any combination of section, tag and language; public or private (feed tokens, the
partner's filters and the embargo gate); conditional requests; bad input."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from sqlalchemy import event

from cms.platform.extensions import db

URN = "urn:newsroom-cms:article:"


@contextlib.contextmanager
def public_feeds(live):
    live.app.config["CMS_PUBLIC_FEEDS"] = True
    try:
        yield
    finally:
        live.app.config["CMS_PUBLIC_FEEDS"] = False


def _get(live, path, **kwargs):
    return live.http.get(live.url + path, timeout=30, **kwargs)


def _desk(live, count=3):
    """A fresh section with ``count`` published stories (oldest first) and a draft."""
    section = f"desk-{uuid.uuid4().hex[:8]}"
    stories = [live.article(section=section, headline=f"Story {n} {section}") for n in range(count)]
    live.article(section=section, headline="A draft", publish=False)
    return section, stories


def test_rss_and_atom_parse_back_with_every_field(live):
    section, stories = _desk(live)
    with public_feeds(live):
        for fmt, version in (("rss", "rss20"), ("atom", "atom10")):
            r = _get(live, f"/feeds/v1/{fmt}", params={"section": section})
            assert r.status_code == 200 and r.headers["Content-Type"].startswith(f"application/{fmt}+xml")
            parsed = feedparser.parse(r.content)
            assert not parsed.bozo and parsed.version == version
            links = {link["rel"]: link["href"] for link in parsed.feed.links}
            assert links["self"] == f"{live.url}/feeds/v1/{fmt}?section={section}"
            assert links["hub"] == f"{live.url}/websub/hub"
            assert [e.id for e in parsed.entries] == [
                URN + s["id"] for s in reversed(stories)
            ]  # newest first
            first, story = parsed.entries[0], stories[-1]
            assert first.title == story["headline"] and first.summary == story["standfirst"]
            assert first.content[0].value == story["body"] and first.content[0].type == "text/html"
            assert first.author == story["byline"]
            assert {t.term for t in first.tags} == {section, *story["tags"]}
            [enclosure] = [link for link in first.links if link["rel"] == "enclosure"]
            assert enclosure["href"] == story["lead_image"]["url"] and enclosure["type"] == "image/jpeg"
            assert first.get("dc_language", first.get("language")) == "en"
            assert first.published_parsed
            if fmt == "atom":
                assert first.updated_parsed


def test_json_feed_has_the_required_fields_of_version_1_1(live):
    section, stories = _desk(live, count=2)
    with public_feeds(live):
        r = _get(live, "/feeds/v1/json", params={"section": section})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/feed+json"
    feed = r.json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str) and isinstance(feed["items"], list)
    assert feed["feed_url"] == f"{live.url}/feeds/v1/json?section={section}"
    assert feed["hubs"] == [{"type": "WebSub", "url": f"{live.url}/websub/hub"}]
    for item in feed["items"]:
        assert isinstance(item["id"], str) and ("content_html" in item or "content_text" in item)
        datetime.fromisoformat(item["date_published"])
    item, story = feed["items"][0], stories[-1]
    assert item["id"] == URN + story["id"] and item["title"] == story["headline"]
    assert item["summary"] == story["standfirst"] and item["content_html"] == story["body"]
    assert item["authors"] == [{"name": story["byline"]}] and item["language"] == "en"
    assert item["image"] == story["lead_image"]["url"] and set(story["tags"]) <= set(item["tags"])


def test_filters_combine_and_unknown_ones_give_an_empty_feed(live):
    section = f"desk-{uuid.uuid4().hex[:8]}"
    tagged = live.article(section=section, tags=["Valdai"], headline="Tagged")
    other = live.article(section=section, tags=["Sochi"], headline="Other", language="bg")
    with public_feeds(live):

        def ids(**params):
            r = _get(live, "/feeds/v1/json", params=params)
            assert r.status_code == 200, r.text
            return [i["id"].removeprefix(URN) for i in r.json()["items"]]

        assert ids(section=section) == [other["id"], tagged["id"]]
        assert ids(section=section, tag="valdai") == [tagged["id"]]
        assert ids(section=section, language="bg") == [other["id"]]
        assert ids(section=section, tag="Valdai", language="bg") == []
        assert ids(section="no such section") == [] and ids(tag="no-such-tag", language="xx") == []


def test_withdrawn_stories_drop_out_and_revalidation_answers_304(live):
    section, stories = _desk(live, count=2)
    path = "/feeds/v1/atom"
    with public_feeds(live):
        first = _get(live, path, params={"section": section})
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert first.headers["Cache-Control"] == "max-age=60"
        again = _get(live, path, params={"section": section}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
        since = _get(live, path, params={"section": section}, headers={"If-Modified-Since": modified})
        assert since.status_code == 304
        other_format = _get(
            live, "/feeds/v1/rss", params={"section": section}, headers={"If-None-Match": etag}
        )
        assert other_format.status_code == 200

        live.act(stories[0]["id"], "unpublish", reason="Duplicate")
        live.act(stories[1]["id"], "kill", reason="Legal")
        gone = _get(live, path, params={"section": section}, headers={"If-None-Match": etag})
        assert gone.status_code == 200 and gone.headers["ETag"] != etag
        assert feedparser.parse(gone.content).entries == []
        assert _get(
            live, path, params={"section": section}, headers={"If-Modified-Since": modified}
        ).status_code in (
            200,
            304,
        )  # within the same second a date cannot tell; the ETag does


def test_public_feeds_are_off_by_default_and_bad_input_is_a_clear_problem(live):
    assert _get(live, "/feeds/v1/rss").status_code == 404
    with public_feeds(live):
        bad = _get(live, "/feeds/v1/csv")
        assert bad.status_code == 406 and bad.headers["Content-Type"] == "application/problem+json"
        assert _get(live, "/feeds/v1/rss", params={"section": "x" * 101}).status_code == 400
        assert _get(live, "/feeds/v1/rss", params={"colour": "red"}).status_code == 400
    assert _get(live, "/feeds/v1/p/cmsf_nope/rss").status_code == 404
    assert _get(live, "/feeds/v1/p/nope/csv").status_code == 406


def test_a_private_feed_follows_its_partner_and_its_token(live):
    partner = live.partner()
    mine = live.article(section=partner.section, headline="For the partner")
    live.article(headline="Outside its filter", section=f"other-{uuid.uuid4().hex[:6]}")
    created = live.api("POST", f"/partners/{partner.id}/feed-tokens", 201, json={"name": "reader"}).json()
    assert created["token"].startswith("cmsf_") and created["prefix"] == created["token"][:13]
    url = created["feeds"]["json"]
    assert url == f"{live.url}/feeds/v1/p/{created['token']}/json"
    items = live.http.get(url, timeout=30).json()["items"]
    assert [i["id"] for i in items] == [URN + mine["id"]]
    listed = live.api("GET", f"/partners/{partner.id}/feed-tokens", 200).json()["items"]
    assert [t["prefix"] for t in listed] == [created["prefix"]] and "token" not in listed[0]
    # A feed token opens feeds only: it is no key for the APIs.
    api = live.http.get(
        f"{live.url}/content/v1/articles", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert api.status_code == 401

    own = partner.call("POST", "/partner/v1/feed-tokens", json={"name": "my reader"}).json()
    assert partner.get("/partner/v1/feed-tokens").json()["items"][-1]["id"] == own["id"]
    assert live.http.get(own["feeds"]["rss"], timeout=30).status_code == 200
    assert partner.call("DELETE", f"/partner/v1/feed-tokens/{created['id']}").status_code == 204
    assert live.http.get(url, timeout=30).status_code == 404
    other = live.partner()
    assert other.call("DELETE", f"/partner/v1/feed-tokens/{own['id']}").status_code == 404
    live.api("PATCH", f"/partners/{partner.id}", 200, json={"enabled": False})
    live.app.extensions["cms_feed_tokens"].clear()
    assert live.http.get(own["feeds"]["rss"], timeout=30).status_code == 404


def test_an_embargoed_story_appears_only_after_the_lift(live):
    trusted = live.partner(receives_embargoed=True)
    kept_out = live.partner(sections=[trusted.section])
    story = live.article(section=trusted.section, publish=False)
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    live.act(story["id"], "publish", embargo_until=until)

    def ids(partner):
        token = live.api("POST", f"/partners/{partner.id}/feed-tokens", 201, json={"name": "t"}).json()
        return [i["id"] for i in live.http.get(token["feeds"]["json"], timeout=30).json()["items"]]

    assert ids(kept_out) == [] and ids(trusted) == [URN + story["id"]]
    with public_feeds(live):
        assert _get(live, "/feeds/v1/json", params={"section": trusted.section}).json()["items"] == []
        live.api("DELETE", f"/articles/{story['id']}/embargo", 200)
        public = _get(live, "/feeds/v1/json", params={"section": trusted.section}).json()["items"]
    assert [i["id"] for i in public] == [URN + story["id"]] and ids(kept_out) == [URN + story["id"]]


@pytest.mark.parametrize("count", [1, 12])
def test_rendering_runs_the_same_queries_whatever_the_length(live, count):
    section, _ = _desk(live, count=count)
    statements = []

    def seen(*_args):
        statements.append(1)

    with live.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with public_feeds(live):
            assert _get(live, "/feeds/v1/rss", params={"section": section}).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # The entries, when the selection last changed, the snapshots (a pre-ping or a
    # transaction's statements aside): never one per entry.
    assert len(statements) <= 5
