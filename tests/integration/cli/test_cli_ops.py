"""The operations CLI: seed, subscriptions list, deliveries status and overview, redeliver,
outbox status."""

from __future__ import annotations

import json
import random
import uuid

from sqlalchemy import select

from cms.events.models import OutboxEvent
from cms.platform.actors import Role
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import fanout, outcomes
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.models import Delivery
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.schedule import RetryPolicy
from cms.webhooks.transport.sender import Result
from tests.factories import Keys
from tests.helpers import cli


def test_seed_loads_the_sample_story(committed_app):
    out = json.loads(cli(committed_app, "seed", "--publish", "--count", "2", "--json"))
    assert out["state"] == "published" and len(out["articles"]) == 2
    assert out["articles"][0]["slug"].startswith("putin-congratulated-trump")
    assert out["articles"][1]["slug"] != out["articles"][0]["slug"]
    with committed_app.app_context():
        events = db.session.scalars(select(OutboxEvent)).all()
        assert sorted(e.type for e in events) == ["article.published"] * 2
    text = cli(committed_app, "outbox", "status")
    assert "Unrelayed: 2" in text and "article.published 2" in text
    status = json.loads(cli(committed_app, "outbox", "status", "--json"))
    assert status["unrelayed"] == 2 and status["by_type"] == {"article.published": 2}


def test_seed_refuses_a_file_that_is_not_a_story(committed_app, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("just one line")
    result = committed_app.test_cli_runner().invoke(args=["seed", str(bad)])
    assert result.exit_code != 0 and "not a wire story" in result.output


def test_deliveries_status_subscriptions_and_redeliver(committed_app):
    app = committed_app
    keys = Keys(app)
    client = app.test_client()
    admin = keys.auth(Role.ADMIN)
    sub = client.post(
        "/api/v1/subscriptions", json={"url": "https://93.184.215.14/x"}, headers=admin
    ).get_json()
    cli(app, "seed", "--publish")
    policy = DeliveryPolicy(retry=RetryPolicy(schedule=(0,)), rng=random.Random(1))
    with app.app_context():
        relayed = fanout.relay(db.session, utcnow(), policy, EndpointCache())
        db.session.commit()
        [job] = relayed.jobs
        outcomes.record(db.session, [Result(job, utcnow(), 5.0, status_code=502)], utcnow(), policy)
        db.session.commit()

    listed = json.loads(cli(app, "subscriptions", "list", "--json"))
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in json.dumps(listed)
    assert listed[0]["consecutive_failures"] == 1
    status = json.loads(cli(app, "deliveries", "status", "--json"))
    assert status["by_status"]["failed"] == 1
    assert [e["url"] for e in status["failing_endpoints"]] == ["https://93.184.215.14/x"]
    assert "Failing endpoints:" in cli(app, "deliveries", "status")
    # The console's overview, from the same query: one event, one failed attempt, failing.
    overview = json.loads(cli(app, "deliveries", "overview", "--json"))
    assert overview["events"] == 1 and overview["attempts"]["failed"] == 1
    assert overview["first_deliveries"] == 0 and overview["first_delivery_p50_seconds"] is None
    [failing] = overview["failing"]
    assert failing["last_error"] == "HTTP 502" and failing["next_retry_at"] is None
    text = cli(app, "deliveries", "overview", "--minutes", "5")
    assert "1 events" in text and "FAILING https://93.184.215.14/x" in text and "next retry none" in text

    out = json.loads(cli(app, "redeliver", "--failed", "--json"))
    assert out == {"requeued": 1}
    with app.app_context():
        delivery = db.session.scalars(select(Delivery)).one()
        assert delivery.status == "pending" and delivery.retry_index == 0
    assert json.loads(cli(app, "redeliver", str(uuid.uuid4()), "--json")) == {"requeued": 0}
    usage = app.test_cli_runner().invoke(args=["redeliver"])
    assert usage.exit_code == 2 and "--failed" in usage.output


def test_redeliver_never_touches_a_delivery_in_flight(committed_app):
    """The CLI and the API share one requeue rule: a delivery a worker holds stays in flight."""
    app = committed_app
    keys = Keys(app)
    client = app.test_client()
    admin = keys.auth(Role.ADMIN)
    client.post("/api/v1/subscriptions", json={"url": "https://93.184.215.14/x"}, headers=admin)
    client.post("/api/v1/subscriptions", json={"url": "https://93.184.215.15/y"}, headers=admin)
    cli(app, "seed", "--publish")
    policy = DeliveryPolicy(retry=RetryPolicy(schedule=(0,)), rng=random.Random(1))
    with app.app_context():
        relayed = fanout.relay(db.session, utcnow(), policy, EndpointCache())
        db.session.commit()
        held, failed = relayed.jobs
        outcomes.record(db.session, [Result(failed, utcnow(), 5.0, status_code=502)], utcnow(), policy)
        db.session.commit()
        states = {d.id: d.status for d in db.session.scalars(select(Delivery))}
    assert states == {held.delivery_id: "in_flight", failed.delivery_id: "failed"}

    named = [str(held.delivery_id), str(failed.delivery_id)]
    assert json.loads(cli(app, "redeliver", *named, "--json")) == {"requeued": 1}
    with app.app_context():
        states = {d.id: d.status for d in db.session.scalars(select(Delivery))}
    assert states == {held.delivery_id: "in_flight", failed.delivery_id: "pending"}
    reply = client.post(f"/api/v1/deliveries/{held.delivery_id}/redeliver", headers=admin)
    assert reply.status_code == 409


def test_partners_from_the_command_line(committed_app):
    partner_id = cli(committed_app, "partners", "create", "--name", "Dnevnik", "--email", "t@dnevnik.example",
                     "--section", "World", "--language", "bg", "--receives-embargoed").strip()  # fmt: skip
    [listed] = [json.loads(line) for line in cli(committed_app, "partners", "list", "--json").splitlines()]
    assert listed["id"] == partner_id and listed["sections"] == ["World"] and listed["languages"] == ["bg"]
    assert listed["receives_embargoed"] is True
    assert "sees: World, bg" in cli(committed_app, "partners", "list")
    key = cli(committed_app, "partners", "create-key", partner_id).strip().splitlines()[-1]
    assert key.startswith("cmsp_")
    me = committed_app.test_client().get("/partner/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.get_json()["name"] == "Dnevnik"
    feeds = cli(committed_app, "partners", "create-feed-token", partner_id).strip().splitlines()[-3:]
    assert [url.rsplit("/", 1)[1] for url in feeds] == ["rss", "atom", "json"]
    assert committed_app.test_client().get(feeds[0].removeprefix("http://127.0.0.1:8000")).status_code == 200
    missing = committed_app.test_cli_runner().invoke(args=["partners", "create-key", str(uuid.uuid4())])
    assert missing.exit_code != 0 and "No partner" in missing.output
