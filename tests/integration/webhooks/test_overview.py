"""The ops overview's aggregates on both databases: what the per-minute tallies say
matches the rows they count, and failing subscriptions carry their last error and
next retry."""

from __future__ import annotations

import math

from sqlalchemy import func, select

from cms.events.models import OutboxEvent
from cms.platform import tallies
from cms.webhooks import deliveries, overview
from cms.webhooks.models import Delivery, DeliveryAttempt
from tests.integration.webhooks.test_delivery_rules import (
    claim,
    outcome,
    published,
    ready,
    record,
    subscribe,
)


def _latencies(session) -> list[float]:
    rows = session.execute(
        select(Delivery.delivered_at, OutboxEvent.occurred_at)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.delivered_at.is_not(None))
    ).all()
    return sorted((d - o).total_seconds() for d, o in rows)


def test_the_overview_counts_what_the_rows_say(client, db_session, admin, clock):
    good = subscribe(client, admin)
    bad = subscribe(client, admin)
    start = clock()
    for i in range(3):
        published(client, admin, headline=f"Story {i}")
    jobs = ready(db_session, clock)
    assert len(jobs) == 6
    clock.advance(seconds=2)
    record(
        db_session,
        clock,
        [outcome(j, clock, 200 if str(j.subscription_id) == good["id"] else 500) for j in jobs],
    )

    view = overview.overview(db_session, clock())
    assert len(view.minutes) == 60 and view.minutes[-1] <= clock() < view.minutes[-1].replace(second=59)
    assert view.total_events == 3 == db_session.scalar(select(func.count()).select_from(OutboxEvent))
    assert view.events[view.minutes.index(start.replace(second=0, microsecond=0))] == 3
    assert view.total("succeeded") == 3 and view.total("retrying") == 3 and view.total("failed") == 0
    assert view.first_deliveries == 3
    assert 2 / 1.25 <= view.hour_p50 <= 2 * 1.25 and view.hour_p99 <= 2 * 1.25
    assert view.open == {"pending": 3, "in_flight": 0}
    [failing] = view.failing
    assert str(failing.id) == bad["id"] and failing.consecutive_failures == 3
    assert failing.last_error == "HTTP 500" and failing.next_retry_at > clock()

    # The failing subscription recovers a minute later: three more first deliveries.
    clock.advance(minutes=1)
    retried = claim(db_session, clock)
    assert len(retried) == 3
    record(db_session, clock, [outcome(j, clock, 204) for j in retried])
    view = overview.overview(db_session, clock())
    assert view.failing == [] and view.first_deliveries == 6 and view.total("succeeded") == 6
    assert sum(view.attempts["succeeded"][-1:]) == 3  # in the later minute
    exact = _latencies(db_session)
    assert len(exact) == 6
    for q, got in ((0.5, view.hour_p50), (0.99, view.hour_p99)):
        want = exact[math.ceil(q * len(exact)) - 1]  # the nearest rank
        assert want / 1.25 <= got <= want * 1.25, (q, got, want)

    # A redelivery of a delivered webhook is an attempt, not another first delivery; a
    # failed one does not unsay the first success.
    again = jobs[0] if str(jobs[0].subscription_id) == good["id"] else jobs[1]
    deliveries.redeliver(db_session, again.delivery_id)
    db_session.commit()
    [job] = claim(db_session, clock)
    record(db_session, clock, [outcome(job, clock, 500)])
    db_session.expire_all()
    assert db_session.get(Delivery, job.delivery_id).delivered_at is not None
    view = overview.overview(db_session, clock())
    assert view.first_deliveries == 6 and view.total("retrying") == 4
    attempts = db_session.scalar(select(func.count()).select_from(DeliveryAttempt))
    assert sum(sum(v) for v in view.attempts.values()) == attempts

    # Spread over every shard (as many writer connections leave them), then folded back:
    # the figures do not change, and one row per (minute, metric) remains.
    T = tallies.MinuteTally.__table__
    rows = db_session.execute(
        select(T.c.minute, T.c.metric, func.sum(T.c.n)).group_by(T.c.minute, T.c.metric)
    ).all()
    split = []
    for minute, metric, n in rows:  # up to two counts go to shards 1 and 2, the rest to shard 0
        moved = min(int(n), 3) - 1
        split += [{"minute": minute, "metric": metric, "shard": k, "n": 1} for k in range(1, moved + 1)]
        split.append({"minute": minute, "metric": metric, "shard": 0, "n": int(n) - moved})
    db_session.execute(T.delete())
    db_session.execute(T.insert(), split)
    spread = overview.overview(db_session, clock())
    assert (spread.attempts, spread.events, spread.hour_p50) == (view.attempts, view.events, view.hour_p50)
    tallies.compact(db_session, tallies.minute_of(clock()) + 1)
    assert overview.overview(db_session, clock()) == spread
    keys = db_session.execute(select(T.c.minute, T.c.metric)).all()
    if db_session.get_bind().dialect.name == "postgresql":
        assert len(keys) == len(set(keys)) == len(rows)


def test_an_hour_ago_falls_out_and_old_tallies_are_pruned(client, db_session, admin, clock):
    subscribe(client, admin)
    published(client, admin)
    record(db_session, clock, [outcome(j, clock, 200) for j in ready(db_session, clock)])
    assert overview.overview(db_session, clock()).total_events == 1
    clock.advance(minutes=60)
    view = overview.overview(db_session, clock())
    assert view.total_events == 0 and view.first_deliveries == 0 and view.hour_p50 is None
    assert tallies.prune(db_session, tallies.minute_of(clock())) >= 3
    assert db_session.scalar(select(func.count()).select_from(tallies.MinuteTally)) == 0


def test_events_of_every_writer_are_counted(client, db_session, admin, clock):
    """A system event (a test ping) is counted by the database, like an article's."""
    sub = subscribe(client, admin)
    r = client.post(f"/api/v1/subscriptions/{sub['id']}/ping", headers=admin)
    assert r.status_code in (200, 202), r.get_json()
    assert overview.overview(db_session, clock()).total_events == 1
