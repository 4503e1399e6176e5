"""Editors in the console over HTTP on both databases: the article list's search and
filters, and the actions on an article's page (publish, under embargo, unpublish,
schedule, cancel, lift an embargo) through the same commands as the API, for the
roles the API allows them; what is coming next."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cms.platform.actors import Role
from tests.helpers import create
from tests.integration.console.conftest import _sign_in, _token


def _article(client, keys, **fields):
    return create(client, keys.auth(Role.WRITER), **fields)


def _state(client, keys, article):
    return client.get(f"/api/v1/articles/{article['id']}", headers=keys.auth(Role.EDITOR)).get_json()


def _post(client, path, **form):
    page = f"/console/articles/{path.split('/')[3]}"
    return client.post(path, data={"csrf_token": _token(client, page), **form}, follow_redirects=True)


def _local(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def test_search_and_filters(client, keys):
    _article(client, keys, headline="Parliament adopts the budget", section="Politics", tags=["budget"])
    _article(client, keys, headline="Budget talks stall", section="Economy")
    _article(client, keys, headline="Storm closes the ports", section="Weather")
    _sign_in(client, keys.raw[Role.WRITER])

    def headlines(query: str) -> list[str]:
        page = client.get(f"/console/articles?{query}").get_data(as_text=True)
        table = re.search(r'<table id="articles">(.*?)</table>', page, re.S).group(1)
        return sorted(re.findall(r'<a href="/console/articles/[^"]+">([^<]+)</a>', table))

    assert headlines("q=BUDGET") == ["Budget talks stall", "Parliament adopts the budget"]
    assert headlines("q=budget+parliament") == ["Parliament adopts the budget"]
    assert headlines("q=budget&section=economy") == ["Budget talks stall"]
    assert headlines("tag=budget") == ["Parliament adopts the budget"]
    assert headlines("q=%25") == [] and headlines("q=_") == []  # LIKE wildcards are plain characters
    assert headlines("state=published") == []
    assert len(headlines("")) == 3


def test_writers_see_no_actions_and_cannot_post_them(client, keys):
    article = _article(client, keys, headline="Writer's draft")
    _sign_in(client, keys.raw[Role.WRITER])
    page = client.get(f"/console/articles/{article['id']}").get_data(as_text=True)
    assert 'id="publish-form"' not in page and 'id="schedule-form"' not in page
    token = _token(client, f"/console/articles/{article['id']}")
    for action in ("publish", "unpublish", "schedule", "schedule/cancel", "embargo/lift"):
        r = client.post(f"/console/articles/{article['id']}/{action}", data={"csrf_token": token})
        assert r.status_code == 403, action
    assert _state(client, keys, article)["state"] == "draft"


def test_an_editor_publishes_unpublishes_and_schedules(client, keys):
    article = _article(client, keys, headline="Editor's story")
    base = f"/console/articles/{article['id']}"
    _sign_in(client, keys.raw[Role.EDITOR])
    assert 'id="publish-form"' in client.get(base).get_data(as_text=True)
    done = _post(client, f"{base}/publish").get_data(as_text=True)
    assert "Published version 1 (article.published)." in done
    assert _state(client, keys, article)["state"] == "published"
    assert "Unpublished." in _post(client, f"{base}/unpublish", reason="Legal").get_data(as_text=True)
    assert _state(client, keys, article)["state"] == "unpublished"

    soon = datetime.now(UTC) + timedelta(hours=2)
    later = soon + timedelta(hours=3)
    page = _post(client, f"{base}/schedule", publish_at=_local(soon), unpublish_at=_local(later))
    text = page.get_data(as_text=True)
    assert f"publish at {soon:%Y-%m-%d %H:%M} UTC" in text and f"unpublish at {later:%Y-%m-%d %H:%M}" in text
    upcoming = client.get("/console/schedule").get_data(as_text=True)
    assert "Editor&#39;s story" in upcoming and upcoming.count("<td>pending</td>") == 2
    assert "2 scheduled action(s) cancelled." in _post(client, f"{base}/schedule/cancel").get_data(
        as_text=True
    )
    assert "Nothing scheduled." in client.get("/console/schedule").get_data(as_text=True)


def test_bad_times_are_refused_and_change_nothing(client, keys):
    article = _article(client, keys, headline="Timing")
    base = f"/console/articles/{article['id']}"
    _sign_in(client, keys.raw[Role.EDITOR])
    page = _post(client, f"{base}/schedule", publish_at="tomorrow-ish").get_data(as_text=True)
    assert 'class="notice refused"' in page and "give a date and time" in page
    past = _post(client, f"{base}/schedule", publish_at=_local(datetime.now(UTC) - timedelta(hours=1)))
    assert 'class="notice refused"' in past.get_data(as_text=True)
    assert "Give a time to publish or to unpublish." in _post(client, f"{base}/schedule").get_data(
        as_text=True
    )
    r = client.get(f"/api/v1/articles/{article['id']}/schedule", headers=keys.auth(Role.EDITOR))
    assert r.get_json()["actions"] == []
    assert _state(client, keys, article)["state"] == "draft"
    missing = "/console/articles/00000000-0000-0000-0000-00000000000a/publish"
    assert client.post(missing, data={"csrf_token": _token(client, base)}).status_code == 404


def test_an_embargo_from_the_page_and_its_early_lift(client, keys):
    article = _article(client, keys, headline="Embargoed results")
    base = f"/console/articles/{article['id']}"
    _sign_in(client, keys.raw[Role.EDITOR])
    until = datetime.now(UTC) + timedelta(days=1)
    done = _post(client, f"{base}/publish", embargo_until=_local(until)).get_data(as_text=True)
    assert f"under embargo until {until:%Y-%m-%d %H:%M} UTC." in done
    upcoming = client.get("/console/schedule").get_data(as_text=True)
    embargoes = re.search(r'<table id="embargoes">(.*?)</table>', upcoming, re.S).group(1)
    assert "Embargoed results" in embargoes and f"{until:%Y-%m-%d %H:%M}" in embargoes
    assert "lift embargo" in upcoming  # the lift is a scheduled action too
    page = client.get(base).get_data(as_text=True)
    assert 'id="lift-form"' in page and "in force" in page
    assert "Embargo lifted" in _post(client, f"{base}/embargo/lift").get_data(as_text=True)
    assert _state(client, keys, article)["embargo_until"] is None
    assert "No embargo in force." in client.get("/console/schedule").get_data(as_text=True)
    assert "lifted early" in client.get(base).get_data(as_text=True)


def test_the_article_list_pages_on_with_its_filters(client, keys):
    for i in range(53):
        _article(client, keys, headline=f"Paged story {i}")
    _article(client, keys, headline="Something else")
    _sign_in(client, keys.raw[Role.WRITER])

    def page(url: str) -> tuple[list[str], str | None]:
        html = client.get(url).get_data(as_text=True)
        table = re.search(r'<table id="articles">(.*?)</table>', html, re.S).group(1)
        older = re.search(r'<a href="([^"]+)" rel="next" id="older">', html)
        return re.findall(r'">(Paged story \d+|Something else)</a>', table), older and older.group(1)

    first, older = page("/console/articles?q=paged")
    assert len(first) == 50 and older and "q=paged" in older
    rest, last = page(older.replace("&amp;", "&"))
    assert len(rest) == 3 and last is None and not set(first) & set(rest)
    assert sorted(first + rest, key=lambda h: int(h.split()[-1])) == [f"Paged story {i}" for i in range(53)]
    odd = client.get("/console/articles?q=paged&endpoint=x&_external=1&_anchor=y&after=")
    assert odd.status_code == 200
    assert 'href="/console/articles?q=paged&amp;after=' in odd.get_data(as_text=True)
    bad = client.get("/console/articles?after=not-a-cursor")
    assert bad.status_code == 400 and "<h1>Bad request</h1>" in bad.get_data(as_text=True)
