"""Embargoes over real HTTP on both databases, with a controllable clock: nothing is
visible before the lift to partners not trusted with it (content API, change feed,
webhooks held), everything is after; trusted partners get it early, marked; early
lifts, extensions and a kill under embargo."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from cms.platform.clock import set_clock
from cms.platform.extensions import db
from cms.webhooks import overview
from tests.conftest import FakeClock
from tests.schemas import load_schema

HOOK = "https://93.184.215.14/hooks/{}"


@pytest.fixture
def clock():
    fake = FakeClock(datetime.now(UTC).replace(microsecond=0))
    set_clock(fake)
    yield fake
    set_clock(None)


def _subscribe(partner, name, **fields):
    r = partner.call("POST", "/partner/v1/subscriptions", json={"url": HOOK.format(name), **fields})
    assert r.status_code == 201, r.text
    return r.json()


def _desk(live):
    """A trusted partner and one that is not, both seeing the same fresh section."""
    trusted = live.partner(receives_embargoed=True)
    public = live.partner(section=trusted.section, sections=[trusted.section])
    return trusted, public


def _changes(partner, after=None):
    params = {"after": after} if after else {}
    body = partner.get("/content/v1/changes", params={**params, "limit": 100}).json()
    return body["changes"], body["next"]


def _bodies(jobs):
    return {(str(j.subscription_id), str(j.event_id)): json.loads(j.body) for j in jobs}


def test_nothing_is_visible_before_the_lift_and_everything_is_after(live, clock):
    trusted, public = _desk(live)
    send = _subscribe(trusted, "send", embargo="send")
    held_ninjs = _subscribe(trusted, "hold", format="ninjs")
    held_public = _subscribe(public, "public", format="ninjs3")
    _, public_cursor = _changes(public)
    _, trusted_cursor = _changes(trusted)

    article = live.article(section=trusted.section, publish=False)
    until = clock() + timedelta(hours=1)
    done = live.act(article["id"], "publish", embargo_until=until.isoformat())
    assert done["article"]["embargo_until"] == until.isoformat()
    publication = done["event"]["id"]

    # Webhooks: only the "send" subscription gets it now, marked.
    jobs = live.ready()
    assert {(str(j.subscription_id), str(j.event_id)) for j in jobs} == {(send["id"], publication)}
    assert _bodies(jobs)[(send["id"], publication)]["data"]["article"]["embargo_until"] == until.isoformat()
    live.succeed(jobs)

    # Pull: the trusted partner sees it (marked), the other one nothing at all.
    path = f"/content/v1/articles/{article['id']}"
    assert public.get(path).status_code == 404
    assert public.get(path, params={"format": "ninjs"}).status_code == 404
    assert trusted.get(path).json()["embargo_until"] == until.isoformat()
    assert trusted.get(path, params={"format": "ninjs"}).json()["embargoed"] == until.isoformat()
    assert trusted.get(path, params={"format": "ninjs3"}).json()["embargoedUntil"] == until.isoformat()
    listed = public.get("/content/v1/articles", params={"section": trusted.section}).json()["items"]
    assert listed == []
    assert public.get(f"/content/v1/articles/by-slug/{article['slug']}").status_code == 404
    assert _changes(public, public_cursor)[0] == []
    early = _changes(trusted, trusted_cursor)[0]
    assert [(c["type"], c["data"]["article"]["embargo_until"]) for c in early] == [
        ("article.published", until.isoformat())
    ]

    # Not yet: the scheduler leaves it alone.
    assert live.fire() == []
    clock.advance(hours=1, seconds=1)
    [fired] = live.fire()
    assert (fired.action, fired.status) == ("lift_embargo", "done")
    assert live.fire() == []  # exactly once

    # The held webhooks go, in order: the publication first (marked), then the lift.
    jobs = live.ready()
    firsts = _bodies(jobs)
    assert firsts[(held_ninjs["id"], publication)]["data"]["embargoed"] == until.isoformat()
    assert "embargoedUntil" in firsts[(held_public["id"], publication)]["data"]
    lifted = [j for j in jobs if str(j.subscription_id) == send["id"]]
    assert [json.loads(j.body)["type"] for j in lifted] == ["article.embargo_lifted"]
    live.succeed(jobs)
    after = _bodies(live.claim())
    assert {key[0] for key in after} == {held_ninjs["id"], held_public["id"]}
    assert {body["type"] for body in after.values()} == {"article.embargo_lifted"}

    # Pull: now everyone sees it, published as of the lift.
    shown = public.get(path).json()
    assert shown["embargo_until"] is None and shown["published_at"] == clock().isoformat()
    assert [
        a["id"]
        for a in public.get("/content/v1/articles", params={"section": trusted.section}).json()["items"]
    ] == [article["id"]]
    changes = _changes(public, public_cursor)[0]
    assert [c["type"] for c in changes] == ["article.embargo_lifted"]
    assert changes[0]["data"]["article"]["headline"] == article["headline"]

    audit = live.api("GET", f"/articles/{article['id']}/embargo", 200).json()
    assert audit["embargo_until"] is None
    assert [(e["outcome"], e["until"]) for e in audit["embargoes"]] == [("lifted", until.isoformat())]
    [received] = audit["received_early"]
    assert (received["partner_id"], received["subscription_id"]) == (trusted.id, send["id"])
    assert received["event_id"] == publication and received["status"] == "succeeded"
    assert received["delivered_at"] is not None


def test_only_trusted_partners_may_have_embargoed_stories_sent(live):
    trusted, public = _desk(live)
    r = public.call("POST", "/partner/v1/subscriptions", json={"url": HOOK.format("x"), "embargo": "send"})
    assert r.status_code == 409 and r.json()["field"] == "embargo"
    held = _subscribe(public, "y")
    assert held["embargo"] == "hold"
    r = public.call("PATCH", f"/partner/v1/subscriptions/{held['id']}", json={"embargo": "send"})
    assert r.status_code == 409
    # The newsroom's own subscriptions feed public sites: they hold too.
    r = live.api("POST", "/subscriptions", json={"url": HOOK.format("z"), "embargo": "send"})
    assert r.status_code == 409
    assert _subscribe(trusted, "w", embargo="send")["embargo"] == "send"


@pytest.mark.parametrize(
    "until",
    ["2030-01-01T10:00:00", "tomorrow", "2020-01-01T10:00:00Z", "", 7],
    ids=["no-timezone", "malformed", "past", "empty", "number"],
)
def test_a_bad_embargo_is_refused_and_changes_nothing(live, until):
    article = live.article(publish=False)
    r = live.api("POST", f"/articles/{article['id']}/publish", json={"embargo_until": until})
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
    assert live.api("GET", f"/articles/{article['id']}", 200).json()["state"] == "draft"
    assert live.api("GET", f"/events?article_id={article['id']}", 200).json()["items"] == []


def test_an_embargo_goes_with_a_publication_not_a_live_article(live):
    article = live.article()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    live.save_draft(article["id"], standfirst="Updated")
    r = live.api("POST", f"/articles/{article['id']}/publish", json={"embargo_until": later})
    assert r.status_code == 409
    assert (
        live.api("PUT", f"/articles/{article['id']}/embargo", json={"embargo_until": later}).status_code
        == 409
    )
    assert live.api("DELETE", f"/articles/{article['id']}/embargo").status_code == 409


def test_early_lift_and_extension_reach_partners_as_events(live, clock):
    trusted, public = _desk(live)
    send = _subscribe(trusted, "send", embargo="send")
    held = _subscribe(public, "held")
    article = live.article(section=trusted.section, publish=False)
    until = clock() + timedelta(hours=3)
    live.act(article["id"], "publish", embargo_until=until.isoformat())
    live.succeed(live.ready())

    # Extend: the trusted partner hears of it at once; nothing reaches the other one.
    later = until + timedelta(hours=2)
    r = live.api("PUT", f"/articles/{article['id']}/embargo", 200, json={"embargo_until": later.isoformat()})
    assert r.json()["event"]["type"] == "article.embargo_changed"
    assert r.json()["article"]["embargo_until"] == later.isoformat()
    jobs = live.ready()
    assert [(str(j.subscription_id), json.loads(j.body)["type"]) for j in jobs] == [
        (send["id"], "article.embargo_changed")
    ]
    body = json.loads(jobs[0].body)["data"]
    assert body["article"]["embargo_until"] == later.isoformat()
    assert body["previous_embargo_until"] == until.isoformat()
    live.succeed(jobs)
    bad = live.api("PUT", f"/articles/{article['id']}/embargo", json={"embargo_until": clock().isoformat()})
    assert bad.status_code == 422

    # The old time passes: still under embargo (it was extended).
    clock.advance(hours=3, seconds=1)
    assert live.fire() == []
    assert public.get(f"/content/v1/articles/{article['id']}").status_code == 404

    # Lifted early by an editor: public at once; the scheduled lift is cancelled.
    r = live.api("DELETE", f"/articles/{article['id']}/embargo", 200)
    assert r.json()["event"]["type"] == "article.embargo_lifted"
    assert r.json()["event"]["data"]["embargo"] == {"until": later.isoformat(), "early": True}
    assert public.get(f"/content/v1/articles/{article['id']}").status_code == 200
    clock.advance(hours=3)
    assert live.fire() == []
    jobs = live.ready()
    got = {(str(j.subscription_id), json.loads(j.body)["type"]) for j in jobs}
    assert got == {(send["id"], "article.embargo_lifted"), (held["id"], "article.published")}
    live.succeed(jobs)
    # News of the extension was held for it and is dropped: the lift says it all.
    rest = {(str(j.subscription_id), json.loads(j.body)["type"]) for j in live.claim()}
    assert rest == {(held["id"], "article.embargo_lifted")}
    audit = live.api("GET", f"/articles/{article['id']}/embargo", 200).json()
    assert audit["embargoes"][0]["outcome"] == "lifted_early"
    assert audit["embargoes"][0]["original_until"] == until.isoformat()


def test_a_kill_under_embargo_reaches_exactly_those_who_had_the_story(live, clock):
    trusted, public = _desk(live)
    send = _subscribe(trusted, "send", embargo="send")
    held_trusted = _subscribe(trusted, "hold")
    held_public = _subscribe(public, "public")
    article = live.article(section=trusted.section, publish=False)
    live.act(article["id"], "publish", embargo_until=(clock() + timedelta(hours=1)).isoformat())
    live.succeed(live.ready())

    killed = live.act(article["id"], "kill", reason="Legal: injunction")
    assert killed["article"]["embargo_until"] is None
    jobs = live.ready()
    assert [(str(j.subscription_id), json.loads(j.body)["type"]) for j in jobs] == [
        (send["id"], "article.killed")
    ]
    live.succeed(jobs)
    # The held publication was never sent, and never will be; the lift is cancelled.
    clock.advance(hours=2)
    assert live.fire() == []
    assert live.ready() == []
    deliveries = live.api("GET", f"/deliveries?subscription_id={held_public['id']}", 200).json()["items"]
    assert [(d["status"], d["embargo"]) for d in deliveries] == [("cancelled", "held")]
    assert (
        live.api("GET", f"/deliveries?subscription_id={held_trusted['id']}", 200).json()["items"][0]["status"]
        == "cancelled"
    )
    # Partners kept from it never learn it existed: 404, not 410.
    assert public.get(f"/content/v1/articles/{article['id']}").status_code == 404
    assert trusted.get(f"/content/v1/articles/{article['id']}").status_code == 410
    schedule = live.api("GET", f"/articles/{article['id']}/schedule", 200).json()
    assert [(a["action"], a["status"]) for a in schedule["history"]] == [("lift_embargo", "cancelled")]


def test_a_scheduled_publish_carries_its_embargo_and_items_stay_valid_ninjs(live, clock):
    trusted, public = _desk(live)
    article = live.article(section=trusted.section, publish=False)
    publish_at, until = clock() + timedelta(hours=1), clock() + timedelta(hours=2)
    body = {"publish_at": publish_at.isoformat(), "embargo_until": until.isoformat()}
    live.api("POST", f"/articles/{article['id']}/schedule", 200, json=body)
    clock.advance(hours=1)
    assert [(f.action, f.status) for f in live.fire()] == [("publish", "done")]
    path = f"/content/v1/articles/{article['id']}"
    assert public.get(path).status_code == 404
    schemas = {"ninjs": load_schema("ninjs-schema_2.1.json"), "ninjs3": load_schema("ninjs-schema_3.1.json")}
    for fmt, schema in schemas.items():
        item = trusted.get(path, params={"format": fmt}).json()
        jsonschema.validate(item, schema)
    scheduled = live.api("GET", "/scheduled?action=lift_embargo", 200).json()["items"]
    assert [i["run_at"] for i in scheduled if i["article_id"] == article["id"]] == [until.isoformat()]
    clock.advance(hours=1)
    assert [(f.action, f.status) for f in live.fire()] == [("lift_embargo", "done")]
    assert public.get(path).json()["embargo_until"] is None


def test_first_delivery_latency_of_a_held_story_runs_from_the_lift(live, clock):
    """The overview's publish -> first delivery clock starts at the embargo's end for a
    delivery held for it, not at the publication an hour before."""
    clock.advance(days=30)  # an hour of its own: the module's other tests share the database
    _, public = _desk(live)
    held = _subscribe(public, "held")

    def mine(jobs):
        return [j for j in jobs if str(j.subscription_id) == held["id"]]

    article = live.article(section=public.section, publish=False)
    live.act(article["id"], "publish", embargo_until=(clock() + timedelta(hours=1)).isoformat())
    assert mine(live.ready()) == []  # held
    clock.advance(hours=1, seconds=1)
    assert "lift_embargo" in [a.action for a in live.fire()]
    jobs = mine(live.ready())
    assert len(jobs) == 1
    clock.advance(seconds=2)
    live.succeed(jobs)
    with live.app.app_context():
        view = overview.overview(db.session, clock())
    assert view.first_deliveries == 1 and 2 / 1.25 <= view.hour_p50 <= 3 * 1.25, view.hour_p50
