"""Relay: turn outbox events into one delivery per matching subscription.

Runs in a worker's transaction (the task commits). Payloads are rendered once
per (event, format) and stored; deliveries are written in bulk, unique per
(event, subscription), so running a relay twice creates nothing new.

The one rule for "may this delivery go now?" (``cms.webhooks.rule``: no earlier
event of the article still open for that subscription, room under its in-flight
cap, subscription enabled) decides each delivery's first state: on PostgreSQL it
is applied to the rows as they are inserted, so those that may go are written
``in_flight`` (one write per delivery); on SQLite they are written ``pending`` and
claimed by the same rule in the same transaction. Those in flight are returned as
jobs, with the bodies just rendered, so a publish reaches partners at once; the
rest wait for the sweep. Disabled subscriptions still get their deliveries (a pause):
they go out, in order, when it is enabled again. Deleted ones get none. Events
recorded under an embargo are held for some subscriptions until the lift
(``cms.webhooks.embargo``: decided per subscription here, released by the lift's relay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.content.formats import EventFacts, render
from cms.content.formats.facts import facts_of
from cms.events import outbox
from cms.events.outbox import EventType
from cms.platform import bulk
from cms.webhooks import dispatch, embargo
from cms.webhooks.dispatch import BodyCache
from cms.webhooks.endpoints import STAMP_SQL, Endpoint, EndpointCache
from cms.webhooks.models import Delivery, DeliveryStatus, EventPayload
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.sender import Job

D = Delivery.__table__
PENDING = DeliveryStatus.PENDING.value
DELIVERY_COLUMNS = (
    "id",
    "event_id",
    "subscription_id",
    "article_id",
    "sequence",
    "event_type",
    "format",
    "embargo",
    "status",
    "attempts",
    "retry_index",
    "next_attempt_at",
    "lease_expires_at",
    "created_at",
    "updated_at",
)


def matching(event: EventFacts, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """The subscriptions ``event`` goes to."""
    if event.type == EventType.PING:
        return _pinged(event, endpoints)
    if event.article_id is None:
        return _watching_subscriptions(event, endpoints)
    return _wanting_article(event, endpoints)


def _pinged(event: EventFacts, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """A ping is a test of one subscription: it goes there only, whatever its filters."""
    return [e for e in endpoints if e.id == event.subscription_id]


def _watching_subscriptions(event: EventFacts, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """subscription.* events go only to those who asked for them by name ("*" means
    article events), never to the subscription the event is about."""
    return [e for e in endpoints if e.id != event.subscription_id and e.wants_type(event.type)]


def _wanting_article(event: EventFacts, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Article events go to those whose type and content filters both take them."""
    content = event.article or {}
    return [e for e in endpoints if e.wants_type(event.type) and e.wants_content(content)]


@dataclass
class Relayed:
    event_ids: list[uuid.UUID] = field(default_factory=list)
    # Per event: (id, type, deliveries written), for logs and metrics.
    summary: list[tuple[uuid.UUID, str, int]] = field(default_factory=list)
    deliveries: int = 0
    jobs: list[Job] = field(default_factory=list)  # written in flight: send these now
    waiting: int = 0  # written pending: blocked by an earlier event, the cap, or a pause
    released: set[uuid.UUID] = field(default_factory=set)  # events whose held deliveries may go now


def _already_fanned_out(session: Session, event_ids: Sequence[uuid.UUID]) -> bool:
    return session.execute(select(D.c.id).where(D.c.event_id.in_(event_ids)).limit(1)).first() is not None


def _read_state(session: Session, event_ids: list[uuid.UUID]) -> tuple[tuple[Any, ...] | None, bool]:
    """(subscriptions' change stamp, whether no delivery of these events exists yet).
    PostgreSQL writes deliveries with ON CONFLICT whatever the answer: not asked there."""
    if bulk.is_postgres(session):
        stamp = bulk.driver_connection(session).execute(STAMP_SQL, prepare=True).fetchone()
        return tuple(stamp), True
    return None, not _already_fanned_out(session, event_ids)


# PostgreSQL: payloads and the relayed mark in one statement; the deliveries follow
# in one more (``dispatch.insert_fresh``), written in flight where the rule allows.
_PG_WRITE = """
WITH payloads AS (
    INSERT INTO event_payloads (event_id, format, body)
    SELECT * FROM unnest(%(p_event)b::uuid[], %(p_format)b::text[], %(p_body)b::text[])
    ON CONFLICT DO NOTHING
)
UPDATE outbox_events SET relayed_at = %(now)s WHERE id = ANY(%(events)b::uuid[])
"""


def _write(
    session: Session,
    now: datetime,
    event_ids: list[uuid.UUID],
    payloads: list[tuple[uuid.UUID, str, str]],
    deliveries: list[tuple[Any, ...]],
    fresh: bool,
) -> None:
    """Payloads, the relayed mark and (not on PostgreSQL) the deliveries, pending."""
    if bulk.is_postgres(session):
        p_columns = list(zip(*payloads, strict=True)) if payloads else [()] * 3
        params = {
            "now": now,
            "events": event_ids,
            "p_event": list(p_columns[0]),
            "p_format": list(p_columns[1]),
            "p_body": list(p_columns[2]),
        }
        bulk.driver_cursor(session).execute(_PG_WRITE, params)
        return
    bulk.insert_ignoring_conflicts(
        session,
        EventPayload.__table__,
        [{"event_id": e, "format": f, "body": b} for e, f, b in payloads],
    )
    rows = [
        dict(
            zip(
                DELIVERY_COLUMNS, (*row, PENDING, 0, 0, _first_attempt(row, now), None, now, now), strict=True
            )
        )
        for row in deliveries
    ]
    if fresh:
        bulk.copy_rows(session, D, DELIVERY_COLUMNS, [tuple(r.values()) for r in rows])
    else:
        bulk.insert_ignoring_conflicts(session, D, rows)
    outbox.mark_relayed(session, event_ids, now)


def _first_attempt(row: Sequence[Any], now: datetime) -> datetime | None:
    """Held deliveries have no next attempt until the embargo lifts."""
    return None if row[-1] == embargo.HELD else now


def relay(
    session: Session,
    now: datetime,
    policy: DeliveryPolicy,
    cache: EndpointCache,
    *,
    limit: int = 100,
    bodies: BodyCache | None = None,
) -> Relayed:
    """Fan out up to ``limit`` ready events (none relayed: nothing to do)."""
    rows = outbox.claim_unrelayed(session, limit)
    if not rows:
        return Relayed()
    event_ids = [r.id for r in rows]
    stamp, fresh = _read_state(session, event_ids)
    live = cache.get(session, stamp)
    done = Relayed(event_ids=event_ids)
    bodies = bodies if bodies is not None else BodyCache()
    gates = embargo.prepare(session, now, rows)  # before the pipeline: it reads
    done.released = gates.released_events
    payloads, deliveries = _plan(rows, live, done, bodies, gates)
    done.deliveries = len(deliveries)
    # Re-relaying after a crash, the deliveries may exist already: conflicts are ignored.
    if bulk.is_postgres(session):
        # Payloads, the relayed mark and the deliveries: one round trip (pipeline).
        with bulk.driver_connection(session).pipeline():
            _write(session, now, event_ids, payloads, [], fresh)
            if deliveries:
                done.jobs = dispatch.insert_fresh(
                    session, now, policy, deliveries, endpoints=live, bodies=bodies
                )
    else:
        _write(session, now, event_ids, payloads, deliveries, fresh)
        if not deliveries:
            return done
        done.jobs = dispatch.claim(
            session, now, policy, limit=len(deliveries), event_ids=event_ids, endpoints=live, bodies=bodies
        )
    # Those not sent now (blocked, no room, paused; or, after a crash, written before)
    # are looked at again once this commits.
    done.waiting = done.deliveries - len(done.jobs)
    return done


def _plan(
    rows: Sequence[Any],
    live: Mapping[uuid.UUID, Endpoint],
    done: Relayed,
    bodies: BodyCache,
    gates: embargo.Gates,
) -> tuple[list[tuple[uuid.UUID, str, str]], list[tuple[Any, ...]]]:
    """Each event's payloads (rendered once per format, and cached) and deliveries."""
    payloads: list[tuple[uuid.UUID, str, str]] = []
    deliveries: list[tuple[Any, ...]] = []
    for row in rows:
        f = facts_of(row)
        targets = embargo.targets(f, matching(f, live.values()), gates)
        if row.feed_position is not None:  # partners' webhooks carry it (dispatch)
            bodies.put((f.id, "feed"), str(row.feed_position).encode())
        done.summary.append((f.id, f.type, len(targets)))
        for fmt in sorted({t.format for t, _mark in targets}):
            body = render(f, fmt)
            payloads.append((f.id, fmt, body.decode()))
            bodies.put((f.id, fmt), body)
        deliveries.extend(
            (uuid.uuid4(), f.id, t.id, f.article_id, f.sequence, f.type, t.format, mark)
            for t, mark in targets
        )
    return payloads, deliveries
