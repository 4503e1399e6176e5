"""Pure mechanics: signatures (checked with the standardwebhooks library), payload
formats (checked against the IPTC ninjs schema), URL safety, the retry schedule."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from standardwebhooks import Webhook

from cms.content import formats
from cms.content.formats import EventFacts
from cms.webhooks.endpoints import Endpoint
from cms.webhooks.models import Subscription
from cms.webhooks.transport import signing, urls
from cms.webhooks.transport.schedule import (
    DEFAULT_SCHEDULE,
    RetryPolicy,
    parse_retry_after,
    parse_schedule,
)
from tests.helpers import seed_fields
from tests.schemas import load_schema

NOW = datetime(2024, 11, 7, 20, 50, tzinfo=UTC)


def test_signatures_verify_with_the_standard_library():
    secret = signing.generate_secret()
    assert secret.startswith("whsec_") and len(signing.secret_key(secret)) == 32
    body = b'{"type":"article.published","timestamp":"2024-11-07T20:50:00Z","data":{}}'
    msg_id = str(uuid.uuid4())
    ts = int(datetime.now(UTC).timestamp())
    header = signing.signature(msg_id, ts, body, [signing.secret_key(secret)])
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": header}
    assert Webhook(secret).verify(body, headers) == json.loads(body)

    other = signing.generate_secret()
    both = signing.signature(msg_id, ts, body, [signing.secret_key(other), signing.secret_key(secret)])
    assert len(both.split(" ")) == 2
    for s in (secret, other):
        Webhook(s).verify(body, {**headers, "webhook-signature": both})
    assert signing.secret_hint(secret) == secret[:10] + "…" and secret[10:] not in signing.secret_hint(secret)


def _facts(type_: str, **data) -> EventFacts:
    fields = seed_fields()
    article_id = uuid.uuid4()
    article = {
        **fields,
        "slug": "putin-congratulated-trump",
        "id": article_id,
        "state": "published",
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW,
        "first_published_at": NOW,
        "published_at": NOW,
        "updated_by": "editor",
    }
    withdrawn = type_ in ("article.unpublished", "article.killed")
    return EventFacts(
        id=uuid.uuid4(),
        type=type_,
        occurred_at=NOW,
        sequence=3,
        version=2,
        article_id=article_id,
        data=data,
        article=None if withdrawn else article,
    )


@pytest.mark.parametrize(
    ("type_", "data", "status"),
    [
        ("article.published", {}, "usable"),
        ("article.updated", {"previous_version": 1}, "usable"),
        ("article.corrected", {"correction_note": "Fixed a quote.", "previous_version": 1}, "usable"),
        ("article.unpublished", {"slug": "a-slug", "reason": None}, "withheld"),
        ("article.killed", {"slug": "a-slug", "reason": "Legal"}, "canceled"),
    ],
)
def test_ninjs_payloads_validate_against_ninjs_2_1(type_, data, status):
    facts = _facts(type_, **data)
    body = json.loads(formats.render(facts, "ninjs"))
    assert set(body) == {"type", "timestamp", "data"} and body["type"] == type_
    assert body["timestamp"] == "2024-11-07T20:50:00.000000Z"
    item = body["data"]
    jsonschema.validate(item, load_schema("ninjs-schema_2.1.json"))
    assert item["pubstatus"] == status and item["version"] == "2"
    ids = {a["role"]: a["value"] for a in item["altids"]}
    assert ids == {"cms-id": str(facts.article_id), "event-id": str(facts.id), "event-sequence": "3"}
    if status == "usable":
        assert item["bodies"][0]["contenttype"] == "text/html"
        assert item["bodies"][0]["wordcount"] > 200
        assert item["associations"][0]["renditions"][0]["href"].startswith("https://")
    if type_ == "article.corrected":
        assert {"role": "correction", "value": "Fixed a quote."} in item["descriptions"]


@pytest.mark.parametrize(
    ("type_", "data", "status"),
    [
        ("article.published", {}, "usable"),
        ("article.corrected", {"correction_note": "Fixed a quote.", "previous_version": 1}, "usable"),
        ("article.unpublished", {"slug": "a-slug", "reason": None}, "withheld"),
        ("article.killed", {"slug": "a-slug", "reason": "Legal"}, "canceled"),
    ],
)
def test_ninjs3_payloads_validate_against_ninjs_3_1(type_, data, status):
    """The same item in ninjs 3.1's camelCase; the schema allows no 2.1 names."""
    facts = _facts(type_, **data)
    item = json.loads(formats.render(facts, "ninjs3"))["data"]
    jsonschema.validate(item, load_schema("ninjs-schema_3.1.json"))
    assert item["pubStatus"] == status and item["version"] == "2"
    ids = {a["role"]: a["value"] for a in item["altIds"]}
    assert ids == {"cms-id": str(facts.article_id), "event-id": str(facts.id), "event-sequence": "3"}
    if status == "usable":
        assert item["bodies"][0]["contentType"] == "text/html" and item["bodies"][0]["wordCount"] > 200
        assert item["associations"][0]["copyrightHolder"]  # renamed at every depth
    else:
        assert item["representationType"] == "partial"
    if type_ == "article.killed":
        assert item["edNote"] == "Legal"


def test_json_payload_carries_the_article_as_published():
    facts = _facts("article.corrected", correction_note="Fixed.", previous_version=1)
    body = json.loads(formats.render(facts, "json"))
    data = body["data"]
    assert data["event_id"] == str(facts.id) and data["sequence"] == 3 and data["version"] == 2
    article = data["article"]
    fields = seed_fields()
    for name in ("headline", "standfirst", "body", "byline", "dateline", "tags", "credits", "lead_image"):
        assert article[name] == fields[name], name
    assert article["published_version"] == 2 and article["state"] == "published"
    assert data["correction_note"] == "Fixed." and data["previous_version"] == 1

    killed = json.loads(formats.render(_facts("article.killed", slug="s", reason="Legal"), "json"))["data"]
    assert killed["reason"] == "Legal" and killed["article"]["state"] == "killed" and "headline" not in killed


def test_bodies_are_compact_utf8():
    facts = _facts("article.published")
    assert facts.article is not None
    facts.article["headline"] = "Путин поздрави Тръмп"
    raw = formats.render(facts, "json")
    assert "Путин поздрави Тръмп".encode() in raw  # UTF-8, not \u escapes
    assert raw.startswith(b'{"type":"article.published","timestamp":')


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.215.14", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 wrapping 10.0.0.1
    ],
)
def test_address_policy(address, allowed):
    assert urls.address_allowed(address) is allowed


def test_allowed_networks_open_exactly_what_they_name():
    loopback = urls.parse_networks("127.0.0.0/8")
    assert urls.address_allowed("127.0.0.1", loopback)
    assert urls.address_allowed("::ffff:127.0.0.1", loopback)
    assert not urls.address_allowed("10.0.0.1", loopback)
    assert not urls.address_allowed("169.254.169.254", loopback)
    urls.check_url("http://localhost:8000/x", allowed=loopback)
    with pytest.raises(urls.UrlRefused):
        urls.check_url("http://localhost:8000/x")
    with pytest.raises(urls.UrlRefused, match="https"):
        urls.check_url("http://93.184.215.14/x", https_only=True)


def test_urls_are_checked_as_they_will_be_sent():
    """Validation parses URLs as the sender does (yarl): a UTF-8 path is fine (it is sent
    percent-encoded), a host or port the sender could never use is refused at once."""
    loopback = urls.parse_networks("127.0.0.0/8")
    urls.check_url("http://127.0.0.1:8000/hook/новини?раздел=свят", allowed=loopback)
    for bad in ("http://partner.example:99999/", "http://exa\u200bmple.com/"):
        with pytest.raises(urls.UrlRefused, match="not a valid URL"):
            urls.check_url(bad, resolve=False)


def test_retry_schedule_with_jitter():
    policy = RetryPolicy()
    assert policy.max_attempts == 10 and parse_schedule("0, 5,300") == (0.0, 5.0, 300.0)
    with pytest.raises(ValueError):
        parse_schedule("5,-1")
    rng = random.Random(1)
    for failures, base in enumerate(DEFAULT_SCHEDULE[1:], start=1):
        waits = [(policy.next_attempt_at(failures, NOW, rng=rng) - NOW).total_seconds() for _ in range(200)]
        assert base * 0.8 <= min(waits) and max(waits) <= base * 1.2
        assert max(waits) - min(waits) > base * 0.2  # really jittered
    assert policy.next_attempt_at(10, NOW) is None
    # Retry-After only ever lengthens the wait, and is capped at a day.
    assert policy.next_attempt_at(1, NOW, retry_after=3600, rng=rng) == NOW + timedelta(hours=1)
    assert (policy.next_attempt_at(2, NOW, retry_after=1, rng=rng) - NOW).total_seconds() >= 240
    assert policy.next_attempt_at(1, NOW, retry_after=10**9) == NOW + timedelta(days=1)


def test_retry_after_header_forms():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Thu, 07 Nov 2024 20:52:00 GMT", NOW) == 120
    assert parse_retry_after("Thu, 07 Nov 2024 20:00:00 GMT", NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_retries_never_take_every_slot_from_first_attempts():
    from cms.webhooks.transport.sender import Job, Lanes

    def job(attempt: int, subscription: uuid.UUID) -> Job:
        return Job(uuid.uuid4(), uuid.uuid4(), subscription, "http://x", b"", (), (), attempt, 100)

    async def main() -> tuple[int, list[str]]:
        lanes = Lanes(retry_limit=2)
        release = asyncio.Event()
        inside: list[str] = []
        dead = uuid.uuid4()  # an endpoint with a backlog of retries that hang

        async def hold(j: Job, name: str) -> None:
            async with lanes.slot(j):
                inside.append(name)
                await release.wait()

        retries = [asyncio.create_task(hold(job(3, dead), f"retry-{i}")) for i in range(10)]
        await asyncio.sleep(0.01)
        first = asyncio.create_task(hold(job(1, uuid.uuid4()), "first"))
        await asyncio.sleep(0.01)
        snapshot = list(inside)
        release.set()
        await asyncio.gather(first, *retries)
        return len(snapshot), snapshot

    count, snapshot = asyncio.run(main())
    assert count == 3 and snapshot[-1] == "first"  # two retries in, eight waiting, the first attempt through


def test_in_flight_cap_per_subscription_in_the_sender():
    from cms.webhooks.transport.sender import Job, Lanes

    async def main() -> int:
        lanes = Lanes(retry_limit=100)
        sub = uuid.uuid4()
        release = asyncio.Event()
        inside = 0

        async def hold() -> None:
            nonlocal inside
            async with lanes.slot(Job(uuid.uuid4(), uuid.uuid4(), sub, "http://x", b"", (), (), 1, 4)):
                inside += 1
                await release.wait()

        tasks = [asyncio.create_task(hold()) for _ in range(10)]
        await asyncio.sleep(0.01)
        seen = inside
        release.set()
        await asyncio.gather(*tasks)
        return seen

    assert asyncio.run(main()) == 4


def test_subscription_section_and_tag_filters_ignore_case():
    """As the article list's filters do: "politics" selects "Politics", "русия" selects "Русия"."""
    subscription = Subscription(
        id=uuid.uuid4(),
        url="https://partner.example/hook",
        format="json",
        enabled=True,
        max_in_flight=4,
        headers={},
        event_types=["*"],
        sections=["politics"],
        tags=["русия", "USA"],
        languages=[],
        secret=signing.generate_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
    )
    endpoint = Endpoint.of(subscription)
    assert endpoint.wants_content({"section": "Politics", "tags": ["Русия"]})
    assert endpoint.wants_content({"section": "POLITICS", "tags": ["usa", "Other"]})
    assert not endpoint.wants_content({"section": "Sport", "tags": ["Русия"]})
    assert not endpoint.wants_content({"section": "Politics", "tags": ["Russia"]})
    assert not endpoint.wants_content({"section": None, "tags": []})
