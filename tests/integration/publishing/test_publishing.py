"""Editorial states, transitions and the events they record in the outbox."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from cms.authoring import articles
from cms.events.models import OutboxEvent
from cms.platform import uow
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.publishing import commands as publishing
from tests.factories import Keys
from tests.helpers import at_once, create, patch, post, seed_fields


def _events(app, article_id):
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.article_id == uuid.UUID(article_id))
            .order_by(OutboxEvent.sequence)
        ).all()
        return [(e.type, e.version, e.sequence, dict(e.data)) for e in rows]


def test_full_editorial_lifecycle_records_one_event_per_change(app, client, keys, clock):
    editor = keys.auth(Role.EDITOR)
    article = create(client, editor, **seed_fields())
    aid = article["id"]

    r = post(client, editor, aid, "publish")
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    assert result["article"]["state"] == "published"
    assert result["article"]["published_version"] == 1
    assert result["article"]["published_at"] == "2024-11-07T20:50:00+00:00"
    assert result["article"]["first_published_at"] == "2024-11-07T20:50:00+00:00"
    event = result["event"]
    assert event["type"] == "article.published" and event["sequence"] == 1 and event["version"] == 1
    assert event["actor"] == "editor tester" and event["article_id"] == aid
    uuid.UUID(event["id"])

    clock.advance(hours=1)
    v2 = patch(client, editor, article, standfirst="Updated standfirst")
    assert v2["state"] == "published" and v2["published_version"] == 1  # saving is not publishing
    r = post(client, editor, aid, "publish")
    assert r.get_json()["event"]["type"] == "article.updated"
    assert r.get_json()["article"]["first_published_at"] == "2024-11-07T20:50:00+00:00"
    assert r.get_json()["article"]["published_at"] == "2024-11-07T21:50:00+00:00"

    v3 = patch(client, editor, v2, body="<p>Corrected quote.</p>")
    r = post(client, editor, aid, "publish", version=3, correction_note="Fixed a misattributed quote.")
    assert r.get_json()["event"]["type"] == "article.corrected"

    r = post(client, editor, aid, "unpublish", reason="Under review")
    assert r.status_code == 200 and r.get_json()["article"]["state"] == "unpublished"
    r = post(client, editor, aid, "publish")
    assert r.get_json()["event"]["type"] == "article.published"
    r = post(client, editor, aid, "kill", reason="Court order 12/2024")
    assert r.status_code == 200
    assert r.get_json()["article"]["state"] == "killed"
    assert r.get_json()["article"]["kill_reason"] == "Court order 12/2024"

    assert _events(app, aid) == [
        ("article.published", 1, 1, {}),
        ("article.updated", 2, 2, {"previous_version": 1}),
        (
            "article.corrected",
            3,
            3,
            {"previous_version": 2, "correction_note": "Fixed a misattributed quote."},
        ),
        ("article.unpublished", 3, 4, {"slug": v3["slug"], "reason": "Under review"}),
        ("article.published", 3, 5, {}),
        ("article.killed", 3, 6, {"slug": v3["slug"], "reason": "Court order 12/2024"}),
    ]


@pytest.mark.parametrize(
    ("setup", "action", "body"),
    [
        ([], "unpublish", {}),  # draft cannot be unpublished
        ([], "kill", {"reason": "x"}),  # never published: nothing to withdraw
        ([("publish", {})], "publish", {}),  # same version again
        ([("publish", {}), ("unpublish", {})], "unpublish", {}),
        ([("publish", {}), ("kill", {"reason": "legal"})], "kill", {"reason": "again"}),
        ([("publish", {}), ("kill", {"reason": "legal"})], "publish", {}),  # editors cannot revive
        ([("publish", {}), ("kill", {"reason": "legal"})], "unpublish", {}),
    ],
)
def test_illegal_transitions_are_409_and_record_nothing(app, client, keys, setup, action, body):
    editor = keys.auth(Role.EDITOR)
    aid = create(client, editor)["id"]
    for step, step_body in setup:
        assert post(client, editor, aid, step, **step_body).status_code == 200
    before = _events(app, aid)
    r = post(client, editor, aid, action, **body)
    assert r.status_code == 409, r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.get_json()["type"].endswith("invalid-transition")
    assert _events(app, aid) == before


def test_publishing_an_older_version_of_a_live_article_is_refused(client, keys):
    editor = keys.auth(Role.EDITOR)
    article = create(client, editor)
    patch(client, editor, article, headline="Two")
    assert post(client, editor, article["id"], "publish").status_code == 200  # publishes v2
    r = post(client, editor, article["id"], "publish", version=1)
    assert r.status_code == 409 and "restore" in r.get_json()["detail"]
    assert post(client, editor, article["id"], "publish", version=9).status_code == 404


def test_kill_requires_a_reason_and_a_correction_note_needs_a_prior_publication(client, keys):
    editor = keys.auth(Role.EDITOR)
    aid = create(client, editor)["id"]
    r = post(client, editor, aid, "publish", correction_note="nothing to correct yet")
    assert r.status_code == 409 and "published before" in r.get_json()["detail"]
    assert post(client, editor, aid, "publish").status_code == 200
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = post(client, editor, aid, "kill", **body)
        assert r.status_code == 422, body
        assert "reason" in [e["field"] for e in r.get_json()["errors"]]


def test_republishing_with_a_correction_note_records_it_on_the_published_event(app, client, keys):
    editor = keys.auth(Role.EDITOR)
    aid = create(client, editor)["id"]
    assert post(client, editor, aid, "publish").status_code == 200
    assert post(client, editor, aid, "unpublish").status_code == 200
    r = post(client, editor, aid, "publish", correction_note="Fixed while withdrawn.")
    assert r.status_code == 200, r.get_json()
    assert _events(app, aid)[-1] == ("article.published", 1, 3, {"correction_note": "Fixed while withdrawn."})


def test_killed_is_terminal_except_for_an_admin(app, client, keys):
    editor, admin = keys.auth(Role.EDITOR), keys.auth(Role.ADMIN)
    article = create(client, editor)
    aid = article["id"]
    post(client, editor, aid, "publish")
    post(client, editor, aid, "kill", reason="Defamation risk")
    r = client.patch(
        f"/api/v1/articles/{aid}", json={"headline": "Edit"}, headers={**editor, "If-Match": '"v1"'}
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/articles/{aid}/versions/1/restore", json={}, headers={**editor, "If-Match": '"v1"'}
    )
    assert r.status_code == 409
    # An admin may revise and republish after legal clearance.
    fixed = patch(client, admin, article, headline="Cleared by legal")
    assert fixed["state"] == "killed"
    r = post(client, admin, aid, "publish")
    assert r.status_code == 200 and r.get_json()["article"]["state"] == "published"
    assert r.get_json()["article"]["kill_reason"] is None
    assert [e[0] for e in _events(app, aid)] == ["article.published", "article.killed", "article.published"]


def test_outbox_event_exists_only_if_the_change_commits(committed_app):
    """Roll the transaction back and neither the change nor its event exists; commit and both do."""
    app = committed_app
    Keys(app)  # an actor key, committed
    actor = Actor(key_id=None, name="desk", role=Role.EDITOR)
    with app.app_context():
        item = articles.create(db.session, actor, {"headline": "Outbox"})  # a command: commits
        aid = item.id

    with app.app_context(), pytest.raises(RuntimeError), uow.transaction(db.session):
        publishing.publish(db.session, actor, aid)  # joins the enclosing unit of work
        raise RuntimeError("the unit of work fails after the publish")
    with app.app_context():  # a new session: what other connections see
        assert db.session.scalars(select(OutboxEvent).where(OutboxEvent.article_id == aid)).all() == []
        assert articles.get(db.session, aid).state == "draft"

    with app.app_context():
        event = publishing.publish(db.session, actor, aid).event
        event_id = event.id
    with app.app_context():
        stored = db.session.scalars(select(OutboxEvent).where(OutboxEvent.article_id == aid)).all()
        assert [(e.id, e.type, e.sequence, e.relayed_at) for e in stored] == [
            (event_id, "article.published", 1, None)
        ]
        assert articles.get(db.session, aid).state == "published"


def test_concurrent_publishes_get_gap_free_sequences(committed_app):
    """Many editors publishing, unpublishing and updating one article at once over HTTP."""
    app = committed_app
    keys = Keys(app)
    client = app.test_client()
    editor = keys.auth(Role.EDITOR)
    article = create(client, editor, headline="Contested")
    aid = article["id"]
    for i in range(10):
        article = patch(client, editor, article, headline=f"Rev {i}")  # versions 1..11

    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        c = app.test_client()
        for i in range(6):
            action, body = [("publish", {"version": 2 + (n + i) % 10}), ("unpublish", {}), ("publish", {})][
                (n + i) % 3
            ]
            r = post(c, editor, aid, action, **body)
            with lock:
                statuses.append(r.status_code)

    at_once(8, worker)

    assert set(statuses) <= {200, 409, 404}, statuses
    events = _events(app, aid)
    assert len(events) == statuses.count(200) > 1
    assert [seq for _type, _v, seq, _d in events] == list(range(1, len(events) + 1))
    with app.app_context():
        assert articles.get(db.session, uuid.UUID(aid)).event_sequence == len(events)


def test_concurrent_saves_from_the_same_version_let_exactly_one_win(committed_app):
    """Eight editors save on top of v1 at the same instant: one 200, seven 412, two versions."""
    app = committed_app
    keys = Keys(app)
    editor = keys.auth(Role.EDITOR)
    article = create(app.test_client(), editor, headline="Race")
    statuses: list[int] = []

    def save(n: int) -> None:
        c = app.test_client()
        r = c.patch(
            f"/api/v1/articles/{article['id']}",
            json={"headline": f"Editor {n}"},
            headers={**editor, "If-Match": '"v1"'},
        )
        statuses.append(r.status_code)

    at_once(8, save)
    assert sorted(statuses) == [200] + [412] * 7
    listing = app.test_client().get(f"/api/v1/articles/{article['id']}/versions", headers=editor).get_json()
    assert [v["number"] for v in listing["items"]] == [1, 2]


def test_concurrent_creates_with_one_headline_get_distinct_slugs(committed_app):
    """Slug races are settled by the unique index (INSERT … ON CONFLICT DO NOTHING), not by luck."""
    app = committed_app
    keys = Keys(app)
    writer = keys.auth(Role.WRITER)
    results: list[tuple[int, str | None]] = []

    def make(_n: int) -> None:
        c = app.test_client()
        r = c.post("/api/v1/articles", json={"headline": "Breaking: election results"}, headers=writer)
        results.append((r.status_code, (r.get_json() or {}).get("slug")))

    at_once(8, make)
    assert [status for status, _ in results] == [201] * 8
    slugs = sorted(slug for _, slug in results)
    assert slugs == sorted(
        ["breaking-election-results"] + [f"breaking-election-results-{n}" for n in range(2, 9)]
    )
