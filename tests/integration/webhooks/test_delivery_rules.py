"""Delivery rules on both databases, with a controllable clock instead of sleeping:
the retry schedule, Retry-After, ordering per (subscription, article), in-flight
caps, leases, automatic disabling, and idempotent fan-out."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy import event as sa_event

from cms.events.models import OutboxEvent
from cms.platform.actors import Role
from cms.webhooks import dispatch, fanout, outcomes
from cms.webhooks.endpoints import STAMP, Endpoint, EndpointCache
from cms.webhooks.models import Delivery, DeliveryAttempt, DeliveryCount, EventPayload, Subscription
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.schedule import DEFAULT_SCHEDULE, RetryPolicy
from cms.webhooks.transport.sender import Job, Result
from tests.helpers import create, patch, post
from tests.schemas import load_schema

PUBLIC_URL = "https://93.184.215.14/hooks/{}"
POLICY = DeliveryPolicy(retry=RetryPolicy(), lease_seconds=60, rng=random.Random(7))


def subscribe(client, admin, **fields):
    body = {"url": PUBLIC_URL.format(uuid.uuid4().hex[:6]), **fields}
    r = client.post("/api/v1/subscriptions", json=body, headers=admin)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def published(client, admin, **fields):
    article = create(client, admin, **fields)
    assert post(client, admin, article["id"], "publish").status_code == 200
    return article


def relay(session, clock):
    """Relay until nothing is left (an article's events go one relay round each)."""
    total = fanout.Relayed()
    while True:
        done = fanout.relay(session, clock(), POLICY, EndpointCache())
        session.commit()
        if not done.event_ids:
            return total
        total.event_ids += done.event_ids
        total.deliveries += done.deliveries
        total.jobs += done.jobs
        total.waiting += done.waiting


def ready(session, clock):
    """Relay, then claim: every job that may be sent now."""
    return relay(session, clock).jobs + claim(session, clock)


def claim(session, clock, **kw):
    jobs = dispatch.claim(session, clock(), POLICY, **kw)
    session.commit()
    return jobs


def outcome(job, clock, status=None, error=None, retry_after=None):
    return Result(job, clock(), 12.5, status_code=status, error=error, excerpt="{}", retry_after=retry_after)


def record(session, clock, results):
    done = outcomes.record(session, results, clock(), POLICY)
    session.commit()
    return done


def delivery(session, delivery_id):
    session.expire_all()
    return session.get(Delivery, delivery_id)


def test_retry_schedule_runs_on_the_database_clock(client, db_session, admin, clock):
    subscribe(client, admin)
    published(client, admin)
    [job] = ready(db_session, clock)
    assert job.attempt == 1
    start = clock()
    waited = [0.0]
    for n, delay in enumerate(DEFAULT_SCHEDULE[1:], start=1):
        record(db_session, clock, [outcome(job, clock, 500)])
        row = delivery(db_session, job.delivery_id)
        assert row.status == "pending" and row.attempts == n and row.lease_expires_at is None
        wait = (row.next_attempt_at - clock()).total_seconds()
        assert delay * 0.8 <= wait <= delay * 1.2, (n, wait)
        clock.advance(seconds=wait - 0.5)
        assert claim(db_session, clock) == []  # not yet due
        clock.advance(seconds=1)
        [job] = claim(db_session, clock)
        assert job.attempt == n + 1
        waited.append(wait)
    record(db_session, clock, [outcome(job, clock, 502)])
    row = delivery(db_session, job.delivery_id)
    assert row.status == "failed" and row.attempts == 10 and row.next_attempt_at is None
    hours = (clock() - start).total_seconds() / 3600
    assert 0.8 * sum(DEFAULT_SCHEDULE) / 3600 <= hours <= 1.2 * sum(DEFAULT_SCHEDULE) / 3600 + 0.01
    attempts = db_session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == job.delivery_id)
        .order_by(DeliveryAttempt.id)
    ).all()
    assert [a.number for a in attempts] == list(range(1, 11))
    assert [a.outcome for a in attempts] == ["retrying"] * 9 + ["failed"]
    assert all(a.status_code in (500, 502) and a.duration_ms == 12.5 for a in attempts)


def test_retry_after_is_honoured(client, db_session, admin, clock):
    subscribe(client, admin)
    published(client, admin)
    [job] = ready(db_session, clock)
    record(db_session, clock, [outcome(job, clock, 429, retry_after="120")])
    row = delivery(db_session, job.delivery_id)
    assert (row.next_attempt_at - clock()).total_seconds() == pytest.approx(120)
    clock.advance(seconds=119)
    assert claim(db_session, clock) == []
    clock.advance(seconds=2)
    [job] = claim(db_session, clock)
    record(db_session, clock, [outcome(job, clock, 200)])
    assert delivery(db_session, job.delivery_id).status == "succeeded"


def test_a_later_event_waits_for_an_earlier_one_of_the_same_article(client, db_session, admin, clock):
    sub = subscribe(client, admin)
    article = published(client, admin)
    other = published(client, admin)
    v2 = patch(client, admin, article, headline="Second")
    assert post(client, admin, article["id"], "publish").status_code == 200
    patch(client, admin, v2, headline="Third")
    assert post(client, admin, article["id"], "publish").status_code == 200
    jobs = ready(db_session, clock)
    by_article = {(j.event_id) for j in jobs}
    assert len(jobs) == 2  # one per article: the article's second and third events wait
    first = next(j for j in jobs if _seq(db_session, j) == (article["id"], 1))
    assert by_article

    record(db_session, clock, [outcome(first, clock, 500)])
    clock.advance(seconds=10)
    [retry] = claim(db_session, clock)
    assert _seq(db_session, retry) == (article["id"], 1)  # still the first event, not the second
    record(db_session, clock, [outcome(retry, clock, 200)])
    [second] = claim(db_session, clock)
    assert _seq(db_session, second) == (article["id"], 2)

    # A final failure releases the next event too, or one dead event would block the article.
    record(db_session, clock, [outcome(second, clock, 410)])
    assert db_session.get(Subscription, uuid.UUID(sub["id"])).enabled is False
    db_session.execute(update(Subscription).values(enabled=True))
    db_session.commit()
    [third] = claim(db_session, clock)
    assert _seq(db_session, third) == (article["id"], 3)
    assert other


def _seq(session, job):
    row = session.get(Delivery, job.delivery_id)
    return str(row.article_id), row.sequence


def test_in_flight_cap_per_subscription(client, db_session, admin, clock):
    subscribe(client, admin, max_in_flight=2)
    for _ in range(5):
        published(client, admin)
    jobs = ready(db_session, clock)
    assert len(jobs) == 2
    assert claim(db_session, clock) == []
    record(db_session, clock, [outcome(jobs[0], clock, 200)])
    assert len(claim(db_session, clock)) == 1
    record(db_session, clock, [outcome(jobs[1], clock, 204)])
    assert len(claim(db_session, clock)) == 1


def test_an_expired_lease_counts_an_attempt_and_sends_again(client, db_session, admin, clock):
    sub = subscribe(client, admin)
    published(client, admin)
    [job] = ready(db_session, clock)
    clock.advance(seconds=30)
    assert outcomes.expire_leases(db_session, clock(), POLICY).subscriptions == set()
    clock.advance(seconds=31)
    done = outcomes.expire_leases(db_session, clock(), POLICY)
    db_session.commit()
    assert done.retrying == 1
    row = delivery(db_session, job.delivery_id)
    assert row.status == "pending" and row.attempts == 1
    [attempt] = db_session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row.id)).all()
    assert attempt.outcome == "lease-expired" and "lease expired" in attempt.error
    # A lost worker is not the endpoint's fault.
    assert db_session.get(Subscription, uuid.UUID(sub["id"])).failing_since is None
    # A late outcome from the lost worker does not overwrite the new state.
    record(db_session, clock, [outcome(job, clock, 200)])
    assert delivery(db_session, job.delivery_id).status == "pending"
    clock.advance(seconds=10)
    [again] = claim(db_session, clock)
    assert again.delivery_id == job.delivery_id and again.attempt == 2


def test_a_subscription_failing_for_five_days_is_disabled(client, db_session, admin, clock):
    sub = subscribe(client, admin)
    sid = uuid.UUID(sub["id"])
    start = clock()
    for day in (0, 2, 4):
        clock.now = start + timedelta(days=day)
        published(client, admin)
        jobs = ready(db_session, clock)
        record(db_session, clock, [outcome(j, clock, error="connection failed: refused") for j in jobs])
    row = db_session.get(Subscription, sid)
    db_session.refresh(row)
    assert row.enabled and row.failing_since == start and row.consecutive_failures >= 3

    clock.now = start + timedelta(days=5, minutes=1)
    published(client, admin)
    jobs = ready(db_session, clock)
    done = record(db_session, clock, [outcome(j, clock, 503) for j in jobs])
    assert done.disabled == [sid]
    db_session.refresh(row)
    assert not row.enabled and "5 days" in row.disabled_reason
    [event] = db_session.scalars(select(OutboxEvent).where(OutboxEvent.subscription_id == sid)).all()
    assert event.type == "subscription.disabled" and event.article_id is None
    # Its deliveries wait (disabled is a pause) rather than being sent.
    published(client, admin)
    assert ready(db_session, clock) == []


def test_a_success_resets_the_failure_clock(client, db_session, admin, clock):
    sub = subscribe(client, admin)
    start = clock()
    for day, status in ((0, 500), (3, 200), (6, 500)):
        clock.now = start + timedelta(days=day)
        published(client, admin)
        record(db_session, clock, [outcome(j, clock, status) for j in ready(db_session, clock)])
    row = db_session.get(Subscription, uuid.UUID(sub["id"]))
    db_session.refresh(row)
    assert row.enabled and row.failing_since == start + timedelta(days=6)


def test_fan_out_is_idempotent_and_renders_once_per_format(client, db_session, admin, clock):
    for fmt in ("json", "json", "json", "ninjs", "ninjs"):
        subscribe(client, admin, format=fmt)
    published(client, admin)
    done = relay(db_session, clock)
    assert done.deliveries == 5
    [event_id] = done.event_ids
    assert db_session.scalar(select(func.count()).select_from(EventPayload)) == 2
    # Relay the same event again (as after a crash before the commit was seen).
    db_session.execute(update(OutboxEvent).values(relayed_at=None))
    db_session.commit()
    relay(db_session, clock)
    assert db_session.scalar(select(func.count()).select_from(Delivery)) == 5
    assert relay(db_session, clock).event_ids == []
    assert event_id


def test_a_subscription_in_ninjs3_gets_ninjs_3_1(client, db_session, admin, clock):
    """Created through the API in format ninjs3, sent the seed story as an IPTC ninjs
    3.1 item that validates against the schema, beside a ninjs 2.1 subscriber."""
    schema = load_schema("ninjs-schema_3.1.json")
    sub = subscribe(client, admin, format="ninjs3")
    assert sub["format"] == "ninjs3"
    subscribe(client, admin, format="ninjs")
    published(client, admin)
    jobs = {str(j.subscription_id): j for j in ready(db_session, clock)}
    item = json.loads(jobs[sub["id"]].body)["data"]
    jsonschema.validate(item, schema)
    assert item["pubStatus"] == "usable" and item["headlines"][0]["value"]
    assert db_session.scalar(select(func.count()).select_from(EventPayload)) == 2  # one per format


def test_filters_and_system_events(client, db_session, admin, clock):
    politics = subscribe(client, admin, sections=["politics"])
    monitor = subscribe(client, admin, event_types=["subscription.disabled"])
    everything = subscribe(client, admin)
    published(client, admin, section="sport")
    jobs = relay(db_session, clock).jobs
    targets = {str(d.subscription_id) for d in db_session.scalars(select(Delivery))}
    assert targets == {everything["id"]}

    record(db_session, clock, [outcome(jobs[0], clock, 410)])
    relay(db_session, clock)  # the subscription.disabled event goes to the monitor only
    rows = db_session.scalars(select(Delivery).where(Delivery.event_type == "subscription.disabled")).all()
    assert [str(d.subscription_id) for d in rows] == [monitor["id"]]
    assert politics


def test_deleting_a_subscription_cancels_what_it_was_still_owed(client, db_session, admin, clock):
    sub = subscribe(client, admin, max_in_flight=1)
    published(client, admin)
    published(client, admin)
    [job] = ready(db_session, clock)
    assert client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=admin).status_code == 204
    statuses = sorted(d.status for d in db_session.scalars(select(Delivery)))
    assert statuses == ["cancelled", "in_flight"]
    record(db_session, clock, [outcome(job, clock, 200)])
    published(client, admin)
    assert relay(db_session, clock).deliveries == 0
    assert client.get(f"/api/v1/subscriptions/{sub['id']}", headers=admin).status_code == 404


def test_jobs_carry_both_secrets_during_a_rotation(client, db_session, admin, clock):
    sub = subscribe(client, admin)
    r = client.post(f"/api/v1/subscriptions/{sub['id']}/rotate-secret", headers=admin)
    assert r.status_code == 200
    published(client, admin)
    [job] = ready(db_session, clock)
    assert len(job.keys) == 2
    record(db_session, clock, [outcome(job, clock, 200)])
    clock.advance(hours=24, seconds=1)
    published(client, admin)
    [job] = ready(db_session, clock)
    assert len(job.keys) == 1
    assert isinstance(job, Job)


def test_jobs_complete_the_callers_endpoints_and_read_payloads_once(client, db_session, admin, clock):
    first = uuid.UUID(subscribe(client, admin)["id"])
    second = uuid.UUID(subscribe(client, admin, format="ninjs")["id"])
    published(client, admin)
    relayed = relay(db_session, clock).jobs
    ids = [j.delivery_id for j in relayed]
    expected = {j.delivery_id: (j.url, j.body) for j in relayed}
    stored = {s.id: Endpoint.of(s) for s in db_session.scalars(select(Subscription))}
    stale = {first: dataclasses.replace(stored[first], url="https://stale.example/")}
    statements: list[str] = []

    def reads(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "deliveries" not in statement:
            statements.append(statement)

    def load(endpoints, cache):
        statements.clear()
        return {
            j.delivery_id: (j.url, j.body)
            for j in dispatch.load_jobs(db_session, ids, clock(), endpoints, cache)
        }

    bind = db_session.get_bind()
    sa_event.listen(bind, "before_cursor_execute", reads)
    try:
        # Every endpoint given: used as given; the payloads are read in one query.
        cache = dispatch.BodyCache()
        jobs = load({**stored, **stale}, cache)
        assert {url for url, _body in jobs.values()} == {"https://stale.example/", stored[second].url}
        assert len(statements) == 1 and "event_payloads" in statements[0]
        # Bodies cached: no payload read. An endpoint missing: all of the rows' reloaded.
        assert load(stale, cache) == expected
        assert len(statements) == 1 and "subscriptions" in statements[0]
        # A cache too small to keep a body: still one read for them all.
        assert load(stored, dispatch.BodyCache(max_bytes=8)) == expected
        assert len(statements) == 1 and "event_payloads" in statements[0]
    finally:
        sa_event.remove(bind, "before_cursor_execute", reads)


def test_concurrent_relays_fan_out_each_event_once(committed_app):
    """Four relays at once over forty events (several per article): every delivery is
    written and claimed exactly once, and each article's events in sequence order."""
    from cms.platform.extensions import db
    from tests.factories import Keys
    from tests.helpers import at_once

    app = committed_app
    keys = Keys(app)
    client = app.test_client()
    admin = keys.auth(Role.ADMIN)
    for _ in range(5):
        subscribe(client, admin, max_in_flight=10)
    articles = [create(client, admin, headline=f"Story {i}") for i in range(10)]
    for article in articles:  # published, updated, unpublished, republished: 4 events each
        assert post(client, admin, article["id"], "publish").status_code == 200
        patch(client, admin, article, headline="Changed")
        assert post(client, admin, article["id"], "publish").status_code == 200
        assert post(client, admin, article["id"], "unpublish").status_code == 200
        assert post(client, admin, article["id"], "publish").status_code == 200

    claimed: list[uuid.UUID] = []
    relayed: list[uuid.UUID] = []

    def relay_until_empty(_n: int) -> None:
        cache = EndpointCache()
        with app.app_context():
            while True:
                done = fanout.relay(db.session, datetime.now(UTC), POLICY, cache, limit=3)
                db.session.commit()
                if not done.event_ids:
                    return
                relayed.extend(done.event_ids)
                claimed.extend(j.delivery_id for j in done.jobs)

    at_once(4, relay_until_empty)

    with app.app_context():
        rows = db.session.scalars(select(Delivery)).all()
        unrelayed = db.session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))
        )
    assert len(relayed) == len(set(relayed)) == 40 and unrelayed == 0
    assert len(rows) == 200 and len({(d.event_id, d.subscription_id) for d in rows}) == 200
    assert len(claimed) == len(set(claimed))
    # Only each (subscription, article)'s first event could be claimed at once; the rest wait their turn.
    in_flight = [d for d in rows if d.status == "in_flight"]
    assert {d.id for d in in_flight} == set(claimed)
    assert all(d.sequence == 1 for d in in_flight) and len(in_flight) == 50


def test_worker_caches_see_every_subscription_change_whatever_its_clock(client, db_session, admin, clock):
    """The cache reloads on a counter the database keeps, not on max(updated_at): an
    update stamped earlier than the latest one (another process's clock) still counts."""
    cache = EndpointCache()
    first = subscribe(client, admin)
    clock.advance(hours=1)
    subscribe(client, admin)  # the newest updated_at
    assert cache.get(db_session)[uuid.UUID(first["id"])].enabled
    clock.advance(hours=-2)  # a process whose clock is behind disables the first one
    r = client.patch(f"/api/v1/subscriptions/{first['id']}", json={"enabled": False}, headers=admin)
    assert r.status_code == 200
    assert not cache.get(db_session)[uuid.UUID(first["id"])].enabled
    # What every webhook outcome writes (health columns) does not make workers reload.
    stamp = db_session.execute(STAMP).one()
    db_session.execute(
        update(Subscription).values(
            consecutive_failures=Subscription.consecutive_failures + 1, last_failure_at=clock()
        )
    )
    assert db_session.execute(STAMP).one() == stamp
    db_session.execute(update(Subscription).values(max_in_flight=7))
    assert db_session.execute(STAMP).one() != stamp
    assert {e.max_in_flight for e in cache.get(db_session).values()} == {7}
    # Deleting (soft) drops it from the cache.
    assert client.delete(f"/api/v1/subscriptions/{first['id']}", headers=admin).status_code == 204
    assert uuid.UUID(first["id"]) not in cache.get(db_session)


def test_delivery_counts_kept_by_the_database_match_the_rows(client, db_session, admin, clock):
    """The counters behind `cms deliveries status` follow every insert, outcome and delete."""

    def counted() -> dict[str, int]:
        rows = db_session.execute(
            select(DeliveryCount.status, func.sum(DeliveryCount.n)).group_by(DeliveryCount.status)
        )
        return {status: int(n) for status, n in rows if int(n)}

    def actual() -> dict[str, int]:
        return dict(db_session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())

    for _ in range(3):
        subscribe(client, admin)
    for _ in range(4):
        published(client, admin)
    jobs = ready(db_session, clock)
    assert counted() == actual() and actual()["in_flight"] == len(jobs)
    statuses = [200, 500, 410] + [200] * (len(jobs) - 3)
    record(db_session, clock, [outcome(j, clock, s) for j, s in zip(jobs, statuses, strict=True)])
    db_session.commit()
    assert counted() == actual()
    # An update that leaves every status as it was changes no count.
    db_session.execute(update(Delivery).values(updated_at=clock.now))
    assert counted() == actual()
    db_session.execute(delete(DeliveryAttempt))
    db_session.execute(delete(Delivery).where(Delivery.status == "succeeded"))
    assert counted() == actual() and "succeeded" not in counted()
