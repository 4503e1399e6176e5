"""End to end: publish through the API, real Celery workers on Redis, signed webhooks
received on loopback and verified with the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import quote

import jsonschema
import psycopg
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.dbs import PG_ADMIN_DSN
from tests.helpers import eventually, free_port, seed_fields
from tests.receivers import Receiver
from tests.schemas import load_schema
from tests.stack import redis_available


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def deliveries(stack, **query):
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return stack.api("GET", f"/deliveries?limit=100&{params}", 200).get_json()["items"]


def test_publish_delivers_a_signed_webhook(stack, receiver):
    stack.worker()
    sub = stack.subscribe(receiver.url(), event_types=["article.*"])
    article = stack.article(section="World")
    result = stack.publish(article["id"])

    [got] = receiver.wait_ok(1, timeout=20)
    payload = Webhook(sub["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "article.published"
    assert got.webhook_id == result["event"]["id"]
    assert payload["data"]["event_id"] == result["event"]["id"]
    assert payload["data"]["article"]["id"] == article["id"]
    assert payload["data"]["article"]["headline"] == article["headline"]
    assert payload["data"]["sequence"] == 1
    assert payload["data"]["version"] == 1
    assert got.headers["content-type"] == "application/json"
    assert "newsroomcms" in got.headers["user-agent"].lower()

    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=").verify(got.body, got.headers)

    [delivery] = eventually(
        lambda: [d for d in deliveries(stack, subscription_id=sub["id"]) if d["status"] == "succeeded"],
        what="the delivery to be recorded",
    )
    assert delivery["event_id"] == result["event"]["id"]
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["outcome"] == "succeeded"
    assert json.loads(attempt["response_excerpt"]) == {"ok": True}
    assert attempt["duration_ms"] > 0


def test_rotation_signs_with_both_secrets_during_the_grace_period(stack, receiver):
    stack.worker()
    sub = stack.subscribe(receiver.url())
    rotated = stack.api("POST", f"/subscriptions/{sub['id']}/rotate-secret", 200).get_json()
    assert rotated["secret"] != sub["secret"] and rotated["previous_secret_expires_at"]
    article = stack.article()
    stack.publish(article["id"])
    [got] = receiver.wait_ok(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(sub["secret"]).verify(got.body, got.headers)
    Webhook(rotated["secret"]).verify(got.body, got.headers)


def test_ninjs_payload_of_the_seed_story_validates_against_the_iptc_schema(stack, receiver):
    schema = load_schema("ninjs-schema_2.1.json")  # before starting anything
    stack.worker()
    sub = stack.subscribe(receiver.url(), format="ninjs")
    fields = seed_fields()
    article = stack.article(**fields)
    stack.publish(article["id"])
    stack.api("POST", f"/articles/{article['id']}/kill", 200, json={"reason": "Legal: injunction"})
    received = receiver.wait_ok(2)
    published, killed = (Webhook(sub["secret"]).verify(r.body, r.headers) for r in received)

    item = published["data"]
    jsonschema.validate(item, schema)
    assert item["pubstatus"] == "usable"
    assert item["headlines"][0]["value"] == fields["headline"]
    assert item["bodies"][0]["value"] == article["body"]
    assert item["by"] == fields["byline"]
    assert item["located"] == fields["dateline"]
    assert item["language"] == "en"
    assert {s["name"] for s in item["subjects"]} >= set(fields["tags"])
    assert [s["name"] for s in item["infosources"]] == ["BTA", "Reuters", "AFP"]
    [image] = item["associations"]
    assert image["type"] == "picture"
    assert image["descriptions"][0]["value"] == fields["lead_image"]["caption"]
    assert image["by"] == "Reuters"
    assert item["version"] == "1"

    jsonschema.validate(killed["data"], schema)
    assert killed["type"] == "article.killed"
    assert killed["data"]["pubstatus"] == "canceled"
    assert killed["data"]["ednote"] == "Legal: injunction"


def test_a_500_is_retried_and_both_attempts_are_logged(stack, receiver):
    stack.worker()
    stack.beat()
    receiver.script([500])
    sub = stack.subscribe(receiver.url())
    article = stack.article()
    stack.publish(article["id"])
    receiver.wait_ok(1)
    assert [r.status for r in receiver.requests] == [500, 200]
    assert receiver.requests[0].webhook_id == receiver.requests[1].webhook_id

    [delivery] = eventually(
        lambda: [d for d in deliveries(stack, subscription_id=sub["id"]) if d["status"] == "succeeded"]
    )
    assert delivery["attempts"] == 2
    assert [(a["number"], a["status_code"], a["outcome"]) for a in delivery["attempt_log"]] == [
        (1, 500, "retrying"),
        (2, 200, "succeeded"),
    ]


def test_410_gone_disables_the_subscription(stack, receiver):
    stack.worker()
    receiver.script([410])
    sub = stack.subscribe(receiver.url())
    stack.publish(stack.article()["id"])
    receiver.wait_for(lambda rs: len(rs) >= 1)
    current = eventually(
        lambda: (
            (s := stack.api("GET", f"/subscriptions/{sub['id']}", 200).get_json())["enabled"] is False and s
        )
    )
    assert "410" in current["disabled_reason"]
    events = stack.api("GET", f"/events?subscription_id={sub['id']}", 200).get_json()["items"]
    assert [e["type"] for e in events] == ["subscription.disabled"]
    [delivery] = deliveries(stack, subscription_id=sub["id"])
    assert delivery["status"] == "failed" and delivery["attempt_log"][0]["outcome"] == "gone"


def test_events_of_one_article_arrive_in_order_under_retries(stack, receiver):
    """A later event waits while an earlier one is retrying; other articles and other
    subscriptions are not held up."""
    stack.worker()
    stack.beat()
    other = Receiver()
    try:
        sub = stack.subscribe(receiver.url())
        stack.subscribe(other.url())
        article = stack.article()
        failures = iter([500, 503, 500])  # its first event needs four attempts

        def rule(path: str, body: bytes) -> int:
            data = json.loads(body)["data"]
            if data.get("article_id") == article["id"] and data.get("sequence") == 1:
                return next(failures, 200)
            return 200

        receiver.rule = rule
        stack.publish(article["id"])
        latest = stack.revise(article, headline="Updated headline")
        stack.publish(article["id"])
        latest = stack.revise(latest, body="<p>Fixed a name.</p>")
        stack.publish(article["id"], correction_note="Corrected a name.")
        stack.api("POST", f"/articles/{article['id']}/unpublish", 200, json={})

        # Meanwhile another article goes straight through on the same subscription.
        second = stack.article()
        stack.publish(second["id"])
        [early] = receiver.wait_for(
            lambda rs: [r for r in rs if r.json()["data"].get("article_id") == second["id"]],
            what="the other article",
        )[-1:]
        other.wait_ok(5, timeout=20)

        receiver.wait_ok(5, timeout=30)
        mine = [
            (r.json()["data"]["sequence"], r.status)
            for r in receiver.requests
            if r.json()["data"].get("article_id") == article["id"]
        ]
        assert mine == [(1, 500), (1, 503), (1, 500), (1, 200), (2, 200), (3, 200), (4, 200)]
        types = [
            r.json()["type"] for r in receiver.ok() if r.json()["data"].get("article_id") == article["id"]
        ]
        assert types == ["article.published", "article.updated", "article.corrected", "article.unpublished"]
        first_success = next(
            r
            for r in receiver.requests
            if r.status == 200 and r.json()["data"].get("article_id") == article["id"]
        )
        assert early.at < first_success.at, "the other article waited for the retrying one"
        [first] = [
            d
            for d in deliveries(stack, subscription_id=sub["id"])
            if d["sequence"] == 1 and d["article_id"] == article["id"]
        ]
        assert first["attempts"] == 4
    finally:
        other.close()


def test_fan_out_to_50_receivers_each_gets_exactly_what_its_filters_select(stack):
    stack.worker()
    receivers = [Receiver() for _ in range(50)]
    try:
        sections = [None, "politics", "sport"]
        languages = [None, "bg", "en"]
        types = [["*"], ["article.published"], ["article.*"], ["article.unpublished", "article.published"]]
        tags = [None, ["elections"], ["football", "elections"]]
        filters = []
        for i, receiver in enumerate(receivers):
            f = {
                "event_types": types[i % 4],
                "format": "ninjs" if i % 5 == 0 else "json",
            }
            if sections[i % 3]:
                f["sections"] = [sections[i % 3]]
            if languages[(i // 3) % 3]:
                f["languages"] = [languages[(i // 3) % 3]]
            if tags[(i // 9) % 3]:
                f["tags"] = tags[(i // 9) % 3]
            filters.append(f)
            stack.subscribe(receiver.url(), **f)

        stories = [
            {"section": "politics", "language": "bg", "tags": ["elections"]},
            {"section": "sport", "language": "en-GB", "tags": ["football"]},
            {"section": "politics", "language": "en", "tags": []},
            {"section": "culture", "language": "de", "tags": ["elections", "film"]},
        ]
        sent = []  # (article id, event type, content)
        for story in stories:
            article = stack.article(**story)
            stack.publish(article["id"])
            sent.append((article["id"], "article.published", story))
        stack.api("POST", f"/articles/{sent[0][0]}/unpublish", 200, json={})
        sent.append((sent[0][0], "article.unpublished", stories[0]))

        def selects(f, event_type, story):
            pattern_ok = any(p in ("*", "article.*", event_type) for p in f["event_types"])
            section_ok = "sections" not in f or story["section"] in f["sections"]
            lang = story["language"].lower()
            lang_ok = "languages" not in f or any(
                lang == x or lang.startswith(x + "-") for x in f["languages"]
            )
            tags_ok = "tags" not in f or bool(set(f["tags"]) & set(story["tags"]))
            return pattern_ok and section_ok and lang_ok and tags_ok

        expected = [sorted((aid, t) for aid, t, story in sent if selects(f, t, story)) for f in filters]
        assert sum(map(len, expected)) > 30 and any(not e for e in expected)

        def received(r):
            out = []
            for req in r.ok():
                body = req.json()
                data = body["data"]
                aid = data.get("article_id") or next(
                    a["value"] for a in data.get("altids", []) if a["role"] == "cms-id"
                )
                out.append((aid, body["type"]))
            return sorted(out)

        total = sum(map(len, expected))
        assert total <= 100  # one page of the delivery log

        def all_delivered():
            items = deliveries(stack)
            return len(items) == total and all(d["status"] == "succeeded" for d in items)

        # Every delivery the database holds has succeeded, and there are exactly as many
        # as the filters select: nothing else will be sent, so the receivers can be read.
        eventually(all_delivered, timeout=60, what="every selected delivery to succeed")
        for i, (receiver, want) in enumerate(zip(receivers, expected, strict=True)):
            assert received(receiver) == want, (i, filters[i])
    finally:
        for r in receivers:
            r.close()


def test_sigkilled_worker_loses_nothing(stack):
    """Kill -9 the whole worker mid fan-out: leases expire, the sweep re-sends, all arrive."""
    stack.beat()
    worker = stack.worker()
    receivers = [Receiver() for _ in range(20)]
    try:
        for r in receivers:
            r.hang(0.2)  # keep deliveries in flight long enough to be cut off
            stack.subscribe(r.url())
        events = []
        for _ in range(10):
            article = stack.article()
            events.append(stack.publish(article["id"])["event"]["id"])
        eventually(lambda: sum(len(r.requests) for r in receivers) >= 15, what="deliveries to start")
        stack.kill(worker)
        before = sum(len(r.requests) for r in receivers)
        stack.worker()
        for r in receivers:
            r.wait_for(lambda rs: {x.webhook_id for x in rs if x.status == 200} >= set(events), timeout=60)
        total = sum(len(r.requests) for r in receivers)
        assert before < 200 <= total
        for r in receivers:
            assert {x.webhook_id for x in r.requests} == set(events)  # duplicates allowed, same ids
    finally:
        for r in receivers:
            r.close()


def test_ssrf_is_checked_again_at_send_time(stack, receiver):
    """Subscriptions made while loopback was allowed are refused by a worker that does not allow it."""
    stack.worker(CMS_WEBHOOK_ALLOWED_NETWORKS="")
    literal = stack.subscribe(receiver.url())
    named = stack.subscribe(f"http://localhost:{receiver.port}/hook")
    stack.publish(stack.article()["id"])

    def refused(sub_id):
        items = deliveries(stack, subscription_id=sub_id)
        return items and items[0]["attempt_log"] and items[0]

    for sub in (literal, named):
        delivery = eventually(lambda sub=sub: refused(sub["id"]), what="a refused attempt")
        assert "address refused" in delivery["attempt_log"][0]["error"]
        # Retried later, in case the network changes: pending, or already claimed for the
        # 5 s retry when the machine is slow to answer the poll; never given up on.
        assert delivery["status"] in ("pending", "in_flight")
    assert receiver.requests == []


def test_a_non_ascii_path_is_percent_encoded(stack, receiver):
    """A URL as a partner writes it (Cyrillic path and query) is accepted, and the
    receiver gets the signed webhook at the percent-encoded path."""
    stack.worker()
    sub = stack.subscribe(receiver.url("/hook/новини?раздел=свят"))
    assert sub["url"] == receiver.url("/hook/новини?раздел=свят")
    result = stack.publish(stack.article()["id"])
    [got] = receiver.wait_ok(1, timeout=20)
    assert got.path.startswith("/hook/%D0%BD%D0%BE%D0%B2%D0%B8%D0%BD%D0%B8?")  # UTF-8, percent-encoded
    assert got.path == "/hook/" + quote("новини") + "?" + quote("раздел") + "=" + quote("свят")
    assert Webhook(sub["secret"]).verify(got.body, got.headers)["data"]["event_id"] == result["event"]["id"]


def test_connections_to_one_host_are_limited_across_subscriptions(stack, receiver):
    """50 subscriptions on one partner host share a few connections (not 50 at once,
    which a receiver with a small listen backlog answers with SYN retransmits)."""
    stack.worker(concurrency=1, CMS_WEBHOOK_CONNECTIONS_PER_HOST="4")
    receiver.hang(0.05)  # answers overlap, so the limit is what holds them back
    for i in range(50):
        stack.subscribe(receiver.url(f"/hook/{i}"))
    event_id = stack.publish(stack.article()["id"])["event"]["id"]
    got = receiver.wait_ok(50, timeout=30)
    assert sorted(r.path for r in got) == sorted(f"/hook/{i}" for i in range(50))
    assert {r.webhook_id for r in got} == {event_id}
    assert receiver.max_open <= 4


def test_ping_redeliver_and_recover(stack, receiver):
    stack.settings["CMS_WEBHOOK_RETRY_SCHEDULE"] = "0,0.2"  # two attempts, then failed
    stack.worker()
    stack.beat()
    sub = stack.subscribe(receiver.url())

    ping = stack.api("POST", f"/subscriptions/{sub['id']}/ping", 202).get_json()
    [got] = receiver.wait_ok(1)
    body = Webhook(sub["secret"]).verify(got.body, got.headers)
    assert body["type"] == "webhook.ping" and got.webhook_id == ping["event_id"]

    [delivery] = eventually(
        lambda: [d for d in deliveries(stack, event_id=ping["event_id"]) if d["status"] == "succeeded"]
    )
    stack.api("POST", f"/deliveries/{delivery['id']}/redeliver", 202)
    receiver.wait_ok(2)
    assert receiver.ok()[1].webhook_id == ping["event_id"]

    receiver.rule = lambda path, body: 500
    since = stack.publish(stack.article()["id"])["event"]["occurred_at"]
    failed = eventually(lambda: [d for d in deliveries(stack, status="failed")], what="a failed delivery")
    assert failed[0]["attempts"] == 2
    receiver.rule = None
    result = stack.api("POST", f"/subscriptions/{sub['id']}/recover", 202, json={"since": since}).get_json()
    assert result == {"requeued": 1}
    eventually(lambda: [d for d in deliveries(stack, status="succeeded") if d["id"] == failed[0]["id"]])
    events = stack.api("GET", "/events?type=article.published", 200).get_json()["items"]
    assert events[0]["deliveries"] == {"succeeded": 1, "total": 1}


def _redis_server(port: int, tmp) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    eventually(lambda: redis_available(f"redis://127.0.0.1:{port}/0"), what="redis-server to start")
    return proc


@pytest.mark.parametrize("listen", [True, False], ids=["notify", "broker-only"])
def test_events_published_while_redis_is_down_are_all_delivered(stack, receiver, tmp_path, listen):
    """A private redis-server is stopped while editors publish; the outbox keeps the events.

    With workers listening on PostgreSQL (the default) deliveries do not even
    wait for Redis; relying on the broker alone, they go out once it is back.
    """
    port = free_port()
    redis_proc = _redis_server(port, tmp_path)
    try:
        stack.broker_url = f"redis://127.0.0.1:{port}/0"
        stack.settings["CMS_RELAY_LISTEN"] = "true" if listen else "false"
        stack.make_app()  # the API nudges this broker
        stack.worker()
        stack.beat()
        sub = stack.subscribe(receiver.url())
        stack.publish(stack.article()["id"])
        receiver.wait_ok(1)

        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        assert not redis_available(stack.broker_url)
        published = []
        for _ in range(5):
            started = time.monotonic()
            published.append(stack.publish(stack.article()["id"])["event"]["id"])
            assert time.monotonic() - started < 5, "publishing must not wait on a dead broker"
        if listen:
            receiver.wait_ok(6, timeout=60)  # no broker needed to relay and send
        else:
            # Nothing can reach the workers yet: the events wait, unrelayed, in the outbox.
            events = stack.api("GET", "/events?limit=100", 200).get_json()["items"]
            waiting = {e["id"] for e in events if e["relayed_at"] is None}
            assert waiting >= set(published)

        redis_proc = _redis_server(port, tmp_path)
        receiver.wait_ok(6, timeout=60)
        assert {r.webhook_id for r in receiver.ok()} >= set(published)
        for r in receiver.ok():
            Webhook(sub["secret"]).verify(r.body, r.headers)
        # The workers reconnected: a publish now still goes out.
        last = stack.publish(stack.article()["id"])["event"]["id"]
        receiver.wait_for(lambda rs: any(r.webhook_id == last for r in rs), timeout=30)
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)


def test_worker_threads_survive_their_database_connections_being_killed(stack):
    """pg_terminate_backend on every worker connection, again and again, mid fan-out:
    each thread reconnects, says so, and every webhook arrives exactly once (an outcome
    that could not be recorded is kept and written later, not left to its lease)."""
    stack.beat()
    worker = stack.worker()
    receivers = [Receiver() for _ in range(10)]
    database = stack.database_url.rsplit("/", 1)[1]
    try:
        for r in receivers:
            r.hang(0.02)
            stack.subscribe(r.url())
        events = []
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            for round_ in range(20):
                article = stack.article()
                events.append(stack.publish(article["id"])["event"]["id"])
                if round_ % 4 == 3:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = %s AND application_name LIKE 'cms-worker%%'",
                        [database],
                    )
        for r in receivers:
            r.wait_for(lambda rs: {x.webhook_id for x in rs if x.status == 200} >= set(events), timeout=60)
        for r in receivers:
            ids = [x.webhook_id for x in r.requests]
            assert sorted(ids) == sorted(events), "a webhook went twice or not at all"
        # The threads said they were down, and then that they were back.
        for line in ("outbox-listener thread failed", "outbox-listener thread recovered"):
            eventually(lambda line=line: line.encode() in stack.log_of(worker), what=line)
    finally:
        for r in receivers:
            r.close()
