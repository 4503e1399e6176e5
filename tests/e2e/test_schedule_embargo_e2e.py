"""End to end with real Celery workers and beats, Redis, PostgreSQL and loopback
receivers: scheduled publishes fire once (two beats racing, one restarted at the
time), late after downtime, cancelled, skipped; embargoes hold or send per
subscription, lift on time with no editor, lift early, and a kill under embargo
reaches exactly those who had the story. Signatures are checked with standardwebhooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from tests.helpers import eventually
from tests.receivers import Receiver


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _schedule(stack, article_id, editor=None, **body):
    headers = editor or {}
    return stack.api("POST", f"/articles/{article_id}/schedule", 200, json=body, headers=headers).get_json()


def _editor(stack):
    """An editor's key: unlike an admin, an editor may not republish a killed article."""
    key = stack.api("POST", "/api-keys", 201, json={"name": "desk editor", "role": "editor"}).get_json()[
        "key"
    ]
    return {"Authorization": f"Bearer {key}"}


def _history(stack, article_id):
    return stack.api("GET", f"/articles/{article_id}/schedule", 200).get_json()["history"]


def _events(stack, article_id):
    items = stack.api("GET", f"/events?article_id={article_id}", 200).get_json()["items"]
    return sorted(items, key=lambda e: e["sequence"])


def _verified(received, secret):
    return [Webhook(secret).verify(r.body, r.headers) for r in received]


def test_scheduled_publishes_fire_once_late_cancelled_and_skipped(stack):
    receiver = Receiver()
    try:
        _scheduling(stack, receiver)
    finally:
        receiver.close()


def _scheduling(stack, receiver):
    secret = stack.subscribe(receiver.url())["secret"]
    # While nothing runs: one action comes due (it will be late), one is cancelled, and
    # one becomes illegal (its article is killed).
    late = stack.article(headline="Late")
    cancelled = stack.article(headline="Cancelled")
    killed = stack.article(headline="Killed")
    stack.publish(killed["id"])
    killed = stack.revise(killed, headline="Killed v2")
    editor = _editor(stack)
    for article in (late, cancelled, killed):
        _schedule(stack, article["id"], editor, publish_at=_in(1.5).isoformat())
    stack.api("DELETE", f"/articles/{cancelled['id']}/schedule", 204)
    stack.api("POST", f"/articles/{killed['id']}/kill", 200, json={"reason": "Legal"})
    eventually(lambda: _overdue(stack, late["id"], 2.5), 30, "downtime")

    # Two workers and two beats, racing; the later schedule is what happens "on time".
    stack.worker(CMS_SCHEDULE_GRACE_SECONDS="1")
    stack.worker(CMS_SCHEDULE_GRACE_SECONDS="1")
    first_beat = stack.beat()
    stack.beat()
    [late_run] = eventually(
        lambda: [h for h in _history(stack, late["id"]) if h["status"] == "done"], 30, "late"
    )
    assert late_run["late"] is True and late_run["lateness_seconds"] > 1
    [skip] = eventually(lambda: _history(stack, killed["id"]), 30, "the skipped action")
    assert skip["status"] == "skipped" and "killed" in skip["reason"]
    assert [h["status"] for h in _history(stack, cancelled["id"])] == ["cancelled"]

    scheduled = stack.article(headline="On time")
    manual = stack.article(headline="Manual")
    _schedule(stack, scheduled["id"], editor, publish_at=_in(2).isoformat())
    stack.publish(manual["id"])
    stack.kill(first_beat)  # beat restarted around the time: the database holds the schedule
    stack.beat()
    [on_time] = eventually(
        lambda: [h for h in _history(stack, scheduled["id"]) if h["status"] == "done"], 30, "the publish"
    )
    assert on_time["late"] is False

    # Five webhooks: the killed article's publication and kill, then the three publishes.
    got = receiver.wait_ok(5, timeout=60)
    payloads = [p for p in _verified(got, secret) if p["type"] == "article.published"]
    assert len(got) == 5 and len(payloads) == 4
    payloads = {p["data"]["article_id"]: p for p in payloads}
    assert set(payloads) == {killed["id"], late["id"], scheduled["id"], manual["id"]}
    # The same event as a manual publish: only the actor differs.
    assert payloads[scheduled["id"]]["type"] == payloads[manual["id"]]["type"] == "article.published"
    assert payloads[scheduled["id"]]["data"].keys() == payloads[manual["id"]]["data"].keys()
    [event] = _events(stack, scheduled["id"])
    assert event["actor"] == "scheduler for desk editor" and event["id"] == on_time["event_id"]
    assert [e["type"] for e in _events(stack, cancelled["id"])] == []
    assert [e["type"] for e in _events(stack, killed["id"])] == ["article.published", "article.killed"]


def _overdue(stack, article_id, seconds):
    [action] = stack.api("GET", f"/articles/{article_id}/schedule", 200).get_json()["actions"]
    return datetime.fromisoformat(action["run_at"]) < _in(-seconds)


def test_embargoes_hold_send_lift_and_kill(stack):
    receiver = Receiver()
    try:
        _embargo(stack, receiver)
    finally:
        receiver.close()


def _partner(stack, section, trusted):
    body = {"name": f"P {uuid.uuid4().hex[:4]}", "email": "p@x.example", "sections": [section]}
    partner = stack.api("POST", "/partners", 201, json={**body, "receives_embargoed": trusted}).get_json()
    key = stack.api("POST", f"/partners/{partner['id']}/keys", 201, json={"name": "k"}).get_json()["key"]
    return {"Authorization": f"Bearer {key}"}


def _subscribe(stack, auth, url, **fields):
    r = stack.client.post("/partner/v1/subscriptions", json={"url": url, **fields}, headers=auth)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["secret"]


def _embargo(stack, receiver):
    stack.worker()
    stack.beat()
    trusted = _partner(stack, "Business", True)
    public = _partner(stack, "Business", False)
    secrets = {
        "/send": _subscribe(stack, trusted, receiver.url("/send"), embargo="send"),
        "/hold": _subscribe(stack, trusted, receiver.url("/hold"), format="ninjs"),
        "/public": _subscribe(stack, public, receiver.url("/public"), format="ninjs3"),
    }

    def got(path, article_id=None):
        out = []
        for r in receiver.ok():
            if r.path == path:
                payload = Webhook(secrets[path]).verify(r.body, r.headers)
                if article_id is None or article_id in r.body.decode():
                    out.append((payload["type"], payload["data"], r.at))
        return out

    # On time, with no editor: the trusted "send" subscription has it at once, marked.
    on_time = stack.article(section="Business", headline="Results at noon")
    until = _in(4)
    stack.publish(on_time["id"], embargo_until=until.isoformat())
    [(kind, data, _)] = eventually(lambda: got("/send", on_time["id"]), 30, "the early webhook")
    assert kind == "article.published" and data["article"]["embargo_until"] == until.isoformat()
    path = f"/content/v1/articles/{on_time['id']}"
    assert stack.client.get(path, headers=public).status_code == 404
    assert stack.client.get(path, headers=trusted).status_code == 200
    feed = stack.client.get("/content/v1/changes", headers=public).get_json()
    assert on_time["id"] not in {c["article_id"] for c in feed["changes"]}
    assert got("/hold") == [] and got("/public") == []

    held = eventually(
        lambda: len(got("/public", on_time["id"])) == 2 and got("/public", on_time["id"]), 40, "lift"
    )
    assert [kind for kind, _, _ in held] == ["article.published", "article.embargo_lifted"]
    assert all(at >= until.timestamp() for _, _, at in held)  # never early
    assert eventually(lambda: len(got("/hold", on_time["id"])) == 2, 30, "held ninjs")
    assert stack.client.get(path, headers=public).status_code == 200
    after = stack.client.get("/content/v1/changes", query_string={"after": feed["next"]}, headers=public)
    assert [c["type"] for c in after.get_json()["changes"]] == ["article.embargo_lifted"]
    audit = stack.api("GET", f"/articles/{on_time['id']}/embargo", 200).get_json()
    assert audit["embargoes"][0]["outcome"] == "lifted" and audit["embargoes"][0]["ended_by"].startswith(
        "scheduler"
    )
    [early] = [r for r in audit["received_early"] if r["status"] == "succeeded"]
    assert early["event_type"] == "article.published" and early["delivered_at"]

    # Lifted early by an editor.
    early_lift = stack.article(section="Business", headline="Lifted early")
    stack.publish(early_lift["id"], embargo_until=_in(3600).isoformat())
    eventually(lambda: got("/send", early_lift["id"]), 30, "the early webhook")
    stack.api("DELETE", f"/articles/{early_lift['id']}/embargo", 200)
    eventually(lambda: len(got("/public", early_lift["id"])) == 2, 30, "the early lift")

    # Killed under embargo: the kill reaches the trusted "send" subscription, nothing else ever.
    doomed = stack.article(section="Business", headline="Never public")
    stack.publish(doomed["id"], embargo_until=_in(3600).isoformat())
    eventually(lambda: got("/send", doomed["id"]), 30, "the early webhook")
    stack.api("POST", f"/articles/{doomed['id']}/kill", 200, json={"reason": "Legal"})
    eventually(lambda: len(got("/send", doomed["id"])) == 2, 30, "the kill")
    assert [kind for kind, _, _ in got("/send", doomed["id"])] == ["article.published", "article.killed"]
    sentinel = stack.article(section="Business", headline="After the kill")
    stack.publish(sentinel["id"])
    eventually(lambda: got("/public", sentinel["id"]) and got("/hold", sentinel["id"]), 30, "a later story")
    assert got("/public", doomed["id"]) == [] and got("/hold", doomed["id"]) == []
    assert stack.client.get(f"/content/v1/articles/{doomed['id']}", headers=public).status_code == 404
