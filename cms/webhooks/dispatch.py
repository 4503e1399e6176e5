"""Claims: which deliveries may be sent now, decided in the database.

The rule that answers "may this delivery go now?" (``cms.webhooks.rule``) serves
the relay's fresh deliveries and the sweep's retries alike, so any number of
workers can share the work and a crashed one loses nothing:

* ordering: a delivery is sent only when no earlier delivery (lower sequence)
  of the same article to the same subscription is still open (pending or in
  flight). A final failure releases the next one, or one dead event would
  block an article for ever;
* isolation: at most ``max_in_flight`` deliveries per subscription are in
  flight at a claim (concurrent claimers can overshoot by a batch each);
* leases: a claimed delivery is ``in_flight`` until ``lease_expires_at``. If
  no outcome is recorded by then (the worker was killed), the sweep counts a
  failed attempt and the retry schedule sends it again;
* retries wait in the database (``next_attempt_at``) for the periodic sweep.

Outcomes are recorded by ``cms.webhooks.outcomes``. Nothing here commits: the
worker task that calls it owns the transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from cms.events import feed
from cms.events.models import OutboxEvent
from cms.platform import bulk
from cms.platform.caches import ByteLRU
from cms.webhooks import rule
from cms.webhooks.endpoints import WITH_PARTNER, Endpoint
from cms.webhooks.models import (
    OPEN_STATUSES,
    Delivery,
    DeliveryStatus,
    EventPayload,
    Subscription,
    status_is,
)
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.sender import Job

D = Delivery.__table__
S = Subscription.__table__


class BodyCache(ByteLRU):
    """Recently rendered payloads by (event id, format), so a worker sending a
    batch another process claimed does not read the same body again for each.
    The worker's own is named (metrics) and sized by CMS_WORKER_BODY_CACHE_MB."""

    def __init__(self, max_bytes: int = 4 * 2**20, name: str | None = None) -> None:
        super().__init__(name, max_bytes)


def claim(
    session: Session,
    now: datetime,
    policy: DeliveryPolicy,
    *,
    limit: int = 1000,
    event_ids: Sequence[uuid.UUID] | None = None,
    subscription_ids: Iterable[uuid.UUID] | None = None,
    endpoints: Mapping[uuid.UUID, Endpoint] | None = None,
    bodies: BodyCache | None = None,
) -> list[Job]:
    """Mark up to ``limit`` sendable deliveries in flight (leased) and return their jobs."""
    params = _rule_params(now, policy, limit, due_limit=limit * 4)
    scope = None
    if event_ids is not None:
        scope, params["event_ids"] = "events", list(event_ids)
    elif subscription_ids is not None:
        scope, params["subscription_ids"] = "subscriptions", list(subscription_ids)
    rows = session.execute(rule.claim_statement(scope, session.get_bind().dialect.name), params).all()
    return _jobs(session, rows, now, endpoints, bodies)


def _rule_params(now: datetime, policy: DeliveryPolicy, limit: int, *, due_limit: int) -> dict[str, Any]:
    """The parameters every statement of ``cms.webhooks.rule`` takes."""
    return {
        "claim_now": now,
        "claim_lease": now + timedelta(seconds=policy.lease_seconds),
        "claim_limit": limit,
        "due_limit": due_limit,
    }


def insert_fresh(
    session: Session,
    now: datetime,
    policy: DeliveryPolicy,
    deliveries: Sequence[Sequence[Any]],
    *,
    endpoints: Mapping[uuid.UUID, Endpoint] | None = None,
    bodies: BodyCache | None = None,
) -> list[Job]:
    """PostgreSQL: write a fan-out's deliveries ((id, event, subscription, article,
    sequence, type, format) each), those the rule lets go now already in flight, and
    return the jobs for those."""
    columns = list(zip(*deliveries, strict=True))
    params = _rule_params(now, policy, len(deliveries), due_limit=len(deliveries))
    params.update({f"d_{name}": list(values) for name, values in zip(rule.FRESH_NAMES, columns, strict=True)})
    # Through the driver, with the statement compiled once: SQLAlchemy would convert
    # every element of the arrays in Python (7 per delivery) before psycopg sends them.
    cursor = bulk.driver_connection(session).cursor(row_factory=namedtuple_row)
    sql, fixed = rule.fresh_insert_sql(session.get_bind().dialect)
    rows = cursor.execute(sql, {**fixed, **params}).fetchall()
    moving = [r for r in rows if r.status == DeliveryStatus.IN_FLIGHT.value]
    return _jobs(session, moving, now, endpoints, bodies)


def has_due(session: Session, now: datetime, subscription_ids: Iterable[uuid.UUID]) -> bool:
    """Whether any of these subscriptions has a delivery waiting that is due (a cheap pre-check)."""
    if bulk.is_postgres(session):
        row = bulk.driver_cursor(session).execute(_PG_HAS_DUE, {"now": now, "subs": list(subscription_ids)})
        return bool(row.fetchone()[0])
    stmt = (
        select(D.c.id)
        .where(
            status_is(D.c.status, DeliveryStatus.PENDING),
            D.c.next_attempt_at <= now,
            D.c.subscription_id.in_(list(subscription_ids)),
        )
        .limit(1)
    )
    return session.execute(stmt).first() is not None


_PG_HAS_DUE = """
SELECT EXISTS (
    SELECT 1 FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s AND subscription_id = ANY(%(subs)s::uuid[])
)
"""


def load_jobs(
    session: Session,
    delivery_ids: Sequence[uuid.UUID],
    now: datetime,
    endpoints: Mapping[uuid.UUID, Endpoint] | None = None,
    bodies: BodyCache | None = None,
) -> list[Job]:
    """Jobs for deliveries claimed earlier (by the relay) whose lease still holds."""
    if not delivery_ids:
        return []
    stmt = select(D.c.id, D.c.event_id, D.c.subscription_id, D.c.format, D.c.attempts, D.c.retry_index).where(
        D.c.id.in_(delivery_ids),
        status_is(D.c.status, DeliveryStatus.IN_FLIGHT),
        D.c.lease_expires_at > now,
    )
    return _jobs(session, session.execute(stmt).all(), now, endpoints, bodies)


def _jobs(
    session: Session,
    rows: Sequence[Any],
    now: datetime,
    endpoints: Mapping[uuid.UUID, Endpoint] | None,
    bodies: BodyCache | None,
) -> list[Job]:
    if not rows:
        return []
    endpoints = _endpoints_for(session, rows, endpoints)
    cache = bodies if bodies is not None else BodyCache()
    # A fan-out is many rows of few payloads: look each payload up once.
    payloads = {key: cache.get(key) for key in {(r.event_id, r.format) for r in rows}}
    for key, body in _read_missing_bodies(session, payloads).items():
        payloads[key] = body
        cache.put(key, body)
    keys: dict[uuid.UUID, tuple[bytes, ...]] = {}  # per subscription, not per row
    positions = _feed_positions(session, rows, endpoints, cache)
    jobs = []
    for r in rows:
        endpoint = endpoints[r.subscription_id]
        signing = keys.get(endpoint.id)
        if signing is None:
            signing = keys[endpoint.id] = endpoint.keys_at(now)
        body = payloads[(r.event_id, r.format)]
        position = positions.get(r.event_id) if endpoint.cursor_key is not None else None
        if position is None:
            jobs.append(_job(r, endpoint, body, signing))
        else:
            jobs.append(_job_with_cursor(r, endpoint, body, signing, position))
    return jobs


def _feed_positions(
    session: Session, rows: Sequence[Any], endpoints: Mapping[uuid.UUID, Endpoint], cache: BodyCache
) -> dict[uuid.UUID, int]:
    """Change-feed positions of the events going to partners' subscriptions (their
    webhooks carry the partner's cursor); positions never change, so they are cached
    (the relay puts its events' there first: inside its pipeline no query may run)."""
    wanted = {r.event_id for r in rows if endpoints[r.subscription_id].cursor_key is not None}
    out: dict[uuid.UUID, int] = {}
    for event_id in wanted:
        if (cached := cache.get((event_id, "feed"))) is not None:
            out[event_id] = int(cached)
    missing = wanted - out.keys()
    if missing:
        stmt = select(OutboxEvent.id, OutboxEvent.feed_position).where(
            OutboxEvent.id.in_(missing), OutboxEvent.feed_position.is_not(None)
        )
        for event_id, position in session.execute(stmt):
            out[event_id] = position
            cache.put((event_id, "feed"), str(position).encode())
    return out


FEED_CURSOR_HEADER = "webhook-feed-cursor"


def _job_with_cursor(
    row: Any, endpoint: Endpoint, body: bytes, keys: tuple[bytes, ...], position: int
) -> Job:
    """A partner's webhook: the payload with its ``feed_cursor`` (a field of the envelope,
    added to the stored bytes) and the ``webhook-feed-cursor`` header; signed as sent."""
    assert endpoint.cursor_key is not None and body.endswith(b"}")
    cursor = feed.log_cursor(endpoint.cursor_key, position)
    job = _job(row, endpoint, body[:-1] + b',"feed_cursor":"' + cursor.encode() + b'"}', keys)
    return dataclasses.replace(job, headers=(*job.headers, (FEED_CURSOR_HEADER, cursor)))


def _endpoints_for(
    session: Session, rows: Sequence[Any], endpoints: Mapping[uuid.UUID, Endpoint] | None
) -> Mapping[uuid.UUID, Endpoint]:
    """The caller's endpoints, completed from the database when they lack a row's
    subscription (none given, or a cache older than the delivery)."""
    if endpoints is not None and all(r.subscription_id in endpoints for r in rows):
        return endpoints
    wanted = {r.subscription_id for r in rows}
    rows = session.execute(WITH_PARTNER.where(Subscription.id.in_(wanted))).all()
    return {**(endpoints or {}), **{s.id: Endpoint.of(s, partner) for s, partner in rows}}


def _read_missing_bodies(
    session: Session, payloads: dict[tuple[uuid.UUID, str], bytes | None]
) -> dict[tuple[uuid.UUID, str], bytes]:
    """The payloads the cache lacked, read with one query."""
    missing = [key for key, body in payloads.items() if body is None]
    if not missing:
        return {}
    found = {}
    stmt = select(EventPayload.event_id, EventPayload.format, EventPayload.body).where(
        EventPayload.event_id.in_({event_id for event_id, _fmt in missing})
    )
    for event_id, fmt, body in session.execute(stmt):
        if (event_id, fmt) in payloads:
            found[(event_id, fmt)] = body.encode()
    return found


def _job(row: Any, endpoint: Endpoint, body: bytes, keys: tuple[bytes, ...]) -> Job:
    return Job(
        delivery_id=row.id,
        event_id=row.event_id,
        subscription_id=row.subscription_id,
        url=endpoint.url,
        body=body,
        keys=keys,
        headers=endpoint.headers,
        attempt=row.attempts + 1,
        max_in_flight=endpoint.max_in_flight,
        retry_index=row.retry_index,
    )


def stats(session: Session) -> dict[str, int]:
    """Delivery counts by status."""
    return dict(session.execute(select(D.c.status, func.count()).group_by(D.c.status)).all())


def open_for(session: Session, subscription_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                and_(D.c.subscription_id == subscription_id, status_is(D.c.status, *OPEN_STATUSES))
            )
        )
        or 0
    )
