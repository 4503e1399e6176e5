"""Scheduled publish and unpublish on both databases, with a controllable clock: the
API, firing exactly once through the same command and event as a manual change,
replacing and cancelling, late and skipped actions, and racing schedulers."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from cms.events.models import OutboxEvent
from cms.platform.actors import Role
from cms.platform.extensions import db
from cms.publishing import scheduler
from tests.factories import Keys
from tests.helpers import at_once, cli, create, post


@pytest.fixture
def editor(keys):
    return keys.auth(Role.EDITOR)


def _schedule(client, auth, article_id, **body):
    return client.post(f"/api/v1/articles/{article_id}/schedule", json=body, headers=auth)


def _at(clock, **delta):
    return (clock() + timedelta(**delta)).isoformat()


def _fire(app, grace=60.0):
    with app.app_context():
        return scheduler.run_due(db.session, grace_seconds=grace)


def _events(app, article_id):
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.article_id == uuid.UUID(article_id))
            .order_by(OutboxEvent.sequence)
        ).all()
        return [(e.type, e.version, e.actor, dict(e.data)) for e in rows]


def _counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_scheduled_publish_fires_once_with_the_manual_event(app, client, editor, clock):
    scheduled = create(client, editor, headline="Scheduled")
    manual = create(client, editor, headline="Manual")
    r = _schedule(client, editor, scheduled["id"], publish_at=_at(clock, minutes=30))
    assert r.status_code == 200, r.get_json()
    [action] = r.get_json()["actions"]
    assert (action["action"], action["status"], action["scheduled_by"]) == (
        "publish",
        "pending",
        "editor tester",
    )
    assert client.get(f"/api/v1/articles/{scheduled['id']}/schedule", headers=editor).get_json()[
        "actions"
    ] == [action]
    listed = client.get("/api/v1/scheduled", headers=editor).get_json()["items"]
    assert [(i["article_id"], i["headline"], i["action"]) for i in listed] == [
        (scheduled["id"], "Scheduled", "publish")
    ]

    assert _fire(app) == []  # not yet
    clock.advance(minutes=30)
    [fired] = _fire(app)
    assert (fired.action, fired.status, fired.late, fired.lateness) == ("publish", "done", False, 0.0)
    assert _fire(app) == []  # once

    assert post(client, editor, manual["id"], "publish").status_code == 200
    [(kind, version, actor, data)] = _events(app, scheduled["id"])
    [(manual_kind, manual_version, _, manual_data)] = _events(app, manual["id"])
    assert (kind, version, data) == (manual_kind, manual_version, manual_data) == ("article.published", 1, {})
    assert actor == "scheduler for editor tester"
    article = client.get(f"/api/v1/articles/{scheduled['id']}", headers=editor).get_json()
    assert article["state"] == "published" and article["published_at"] == clock().isoformat()
    schedule = client.get(f"/api/v1/articles/{scheduled['id']}/schedule", headers=editor).get_json()
    assert schedule["actions"] == []
    [done] = schedule["history"]
    assert done["status"] == "done" and done["fired_at"] == clock().isoformat() and done["event_id"]
    assert client.get("/api/v1/scheduled", headers=editor).get_json()["items"] == []


def test_a_scheduled_unpublish_and_an_update_with_a_correction(app, client, editor, clock):
    article = create(client, editor)
    assert post(client, editor, article["id"], "publish").status_code == 200
    client.patch(
        f"/api/v1/articles/{article['id']}",
        json={"standfirst": "Fixed"},
        headers={**editor, "If-Match": '"v1"'},
    )
    r = _schedule(
        client,
        editor,
        article["id"],
        publish_at=_at(clock, hours=1),
        version=2,
        correction_note="Fixed the standfirst.",
        unpublish_at=_at(clock, hours=5),
    )
    assert [a["action"] for a in r.get_json()["actions"]] == ["publish", "unpublish"]
    clock.advance(hours=1)
    _fire(app)
    clock.advance(hours=4)
    _fire(app)
    assert [(t, v) for t, v, _, _ in _events(app, article["id"])] == [
        ("article.published", 1),
        ("article.corrected", 2),
        ("article.unpublished", 2),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "publish_at"),
        ({"publish_at": "2024-11-07T20:00:00+00:00"}, "publish_at"),  # before the clock's now
        ({"publish_at": "2024-11-08T10:00:00"}, "publish_at"),  # no timezone
        ({"publish_at": "next tuesday"}, "publish_at"),
        ({"publish_at": "2024-11-08T10:00:00Z", "unpublish_at": "2024-11-08T09:00:00Z"}, "unpublish_at"),
        ({"unpublish_at": "2024-11-08T10:00:00Z", "version": 1}, "version"),
        ({"publish_at": "2024-11-08T10:00:00Z", "embargo_until": "2024-11-08T09:00:00Z"}, "embargo_until"),
    ],
    ids=["nothing", "past", "naive", "malformed", "unpublish-first", "version-alone", "embargo-first"],
)
def test_bad_schedules_are_422_and_change_nothing(client, editor, clock, body, field):
    article = create(client, editor)
    _schedule(client, editor, article["id"], publish_at=_at(clock, days=2))
    r = _schedule(client, editor, article["id"], **body)
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
    problem = r.get_json()
    assert field in {problem.get("field"), *(e["field"] for e in problem.get("errors", []))}
    [kept] = client.get(f"/api/v1/articles/{article['id']}/schedule", headers=editor).get_json()["actions"]
    assert kept["run_at"] == _at(clock, days=2)


def test_scheduling_again_replaces_and_delete_cancels(app, client, editor, keys, clock):
    article = create(client, editor)
    first = _schedule(client, editor, article["id"], publish_at=_at(clock, hours=1)).get_json()["actions"]
    second = _schedule(client, editor, article["id"], publish_at=_at(clock, hours=2)).get_json()
    assert [a["run_at"] for a in second["actions"]] == [_at(clock, hours=2)]
    assert [(h["id"], h["status"], h["reason"]) for h in second["history"]] == [
        (first[0]["id"], "cancelled", "Replaced by a new schedule.")
    ]
    writer = keys.auth(Role.WRITER)
    assert _schedule(client, writer, article["id"], publish_at=_at(clock, hours=3)).status_code == 403
    assert client.delete(f"/api/v1/articles/{article['id']}/schedule", headers=writer).status_code == 403
    assert client.delete(f"/api/v1/articles/{article['id']}/schedule", headers=editor).status_code == 204
    clock.advance(hours=3)
    assert _fire(app) == []
    assert _events(app, article["id"]) == []
    missing = f"/api/v1/articles/{uuid.uuid4()}/schedule"
    assert client.post(missing, json={"publish_at": _at(clock, hours=1)}, headers=editor).status_code == 404


def test_a_late_action_still_runs_and_says_how_late(app, client, editor, clock):
    article = create(client, editor)
    _schedule(client, editor, article["id"], publish_at=_at(clock, minutes=10))
    before = _counter("cms_scheduled_actions_late_total", action="publish")
    clock.advance(minutes=10, hours=2)  # the system was down
    [fired] = _fire(app, grace=60)
    assert fired.status == "done" and fired.late and fired.lateness == 7200.0
    [done] = client.get(f"/api/v1/articles/{article['id']}/schedule", headers=editor).get_json()["history"]
    assert done["late"] is True and done["lateness_seconds"] == 7200.0
    assert _counter("cms_scheduled_actions_late_total", action="publish") == before + 1


def test_an_action_no_longer_legal_is_skipped_with_the_reason(app, client, editor, clock):
    article = create(client, editor)
    assert post(client, editor, article["id"], "publish").status_code == 200
    client.patch(
        f"/api/v1/articles/{article['id']}", json={"headline": "v2"}, headers={**editor, "If-Match": '"v1"'}
    )
    _schedule(client, editor, article["id"], publish_at=_at(clock, hours=1))
    assert post(client, editor, article["id"], "kill", reason="Legal").status_code == 200
    skipped_before = _counter("cms_scheduled_actions_total", action="publish", outcome="skipped")
    clock.advance(hours=1)
    [fired] = _fire(app)
    assert fired.status == "skipped"
    assert _counter("cms_scheduled_actions_total", action="publish", outcome="skipped") == skipped_before + 1
    [item] = client.get("/api/v1/scheduled", headers=editor).get_json()["items"]
    assert item["status"] == "skipped" and "killed" in item["reason"] and item["event_id"] is None
    assert client.get("/api/v1/scheduled?status=pending", headers=editor).get_json()["items"] == []
    assert [t for t, *_ in _events(app, article["id"])] == ["article.published", "article.killed"]


def test_racing_schedulers_fire_each_action_once(committed_app, clock):
    """Four schedulers, each in its own thread and session, run the same due actions."""
    client = committed_app.test_client()
    editor = Keys(committed_app).auth(Role.EDITOR)
    articles = [create(client, editor, headline=f"Race {n}") for n in range(12)]
    for article in articles:
        r = _schedule(client, editor, article["id"], publish_at=_at(clock, minutes=1))
        assert r.status_code == 200, r.get_json()
    clock.advance(minutes=1)
    fired: list[list] = [[] for _ in range(4)]

    def run(n):
        fired[n] = _fire(committed_app)

    at_once(4, run)
    assert sum(len(f) for f in fired) == len(articles)
    for article in articles:
        assert [t for t, *_ in _events(committed_app, article["id"])] == ["article.published"]


def test_the_cli_lists_and_runs_what_is_due(app, client, editor, clock):
    article = create(client, editor, headline="From the CLI")
    _schedule(client, editor, article["id"], publish_at=_at(clock, hours=1))
    listed = cli(app, "schedule", "list")
    assert article["id"] in listed and "publish" in listed and "From the CLI" in listed
    assert cli(app, "schedule", "run-due").strip().endswith("0 action(s) run")
    clock.advance(hours=1)
    ran = cli(app, "schedule", "run-due")
    assert "publish: done" in ran and "1 action(s) run" in ran
    assert (
        json.loads(cli(app, "schedule", "list", "--status", "done", "--json"))["article_id"] == article["id"]
    )
