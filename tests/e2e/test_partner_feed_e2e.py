"""End to end: a partner's webhooks (real Celery workers, Redis, PostgreSQL, a loopback
receiver) carry its change-feed cursor; after its receiver was down, the partner heals
the gap from the last webhook it processed."""

from __future__ import annotations

import json

from standardwebhooks import Webhook

from tests.receivers import Receiver


def test_a_partner_resumes_from_a_webhooks_cursor_after_its_receiver_was_down(stack):
    receiver = Receiver()
    try:
        _run(stack, receiver)
    finally:
        receiver.close()


def _run(stack, receiver):
    stack.worker()
    stack.beat()  # the sweep sends the retries
    partner = stack.api("POST", "/partners", 201, json={"name": "Partner", "email": "a@b.example"}).get_json()
    key = stack.api("POST", f"/partners/{partner['id']}/keys", 201, json={"name": "k"}).get_json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    created = stack.client.post("/partner/v1/subscriptions", json={"url": receiver.url()}, headers=auth)
    assert created.status_code == 201, created.get_json()
    secret = created.get_json()["secret"]

    first = stack.article(section="World")
    stack.publish(first["id"])
    [got] = receiver.wait_ok(1)
    payload = Webhook(secret).verify(got.body, got.headers)  # the cursor is inside the signed body
    cursor = payload["feed_cursor"]
    assert got.headers["webhook-feed-cursor"] == cursor
    assert payload["data"]["article"]["id"] == first["id"]

    # The receiver goes down; two more stories are published meanwhile.
    receiver.rule = lambda path, body: 503
    missed = [stack.article(section="World"), stack.article(section="World")]
    events = [stack.publish(a["id"])["event"]["id"] for a in missed]
    receiver.wait_for(lambda rs: sum(r.status == 503 for r in rs) >= 2, what="failed attempts")

    # The partner heals from the last webhook it processed: exactly what it missed, in order.
    page = stack.client.get("/content/v1/changes", query_string={"after": cursor}, headers=auth).get_json()
    assert [c["event_id"] for c in page["changes"]] == events
    assert [c["data"]["article"]["id"] for c in page["changes"]] == [a["id"] for a in missed]

    # Back up: the retried webhooks are the same events, carrying the same cursors.
    receiver.rule = None
    delivered = receiver.wait_ok(3, timeout=60)
    later = {r.webhook_id: json.loads(r.body)["feed_cursor"] for r in delivered[1:]}
    assert later == {c["event_id"]: c["cursor"] for c in page["changes"]}
