"""Embargoes in the fan-out: who gets an event recorded under embargo, and when.

An event recorded while its article was under embargo (``embargo_until`` set) goes:

* at once to subscriptions that take embargoed content (``embargo: send`` of a
  partner with ``receives_embargoed``), marked in the payload (delivery ``early``);
* to every other matching subscription, *held*: written ``pending`` with no next
  attempt and the ``held`` mark, which the claim rule never lets go; being open, it
  also keeps that subscription's later events of the article behind it, in order.

When the relay reaches the article's ``article.embargo_lifted`` (recorded by the
lift, after every earlier event of the article was relayed), the held deliveries
are released, in order, before the lift event itself (held ``embargo_changed`` news is
dropped: the lift that follows says all such a subscription needs). When it reaches a withdrawal
recorded under embargo (unpublish, kill), the held deliveries are cancelled: those
subscriptions never had the story, and get the withdrawal only if they had received
something of the article before (an earlier, public publication).

All of this runs in the relay's transaction, event by event in article order, so
it never races the commands: whatever the relay sees is already committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cms.accounts.models import Partner
from cms.content.formats.facts import WITHDRAWAL_EVENTS, EventFacts
from cms.events.outbox import EventType
from cms.platform.errors import Conflict
from cms.webhooks.endpoints import Endpoint
from cms.webhooks.models import Delivery, DeliveryStatus, Subscription

D = Delivery.__table__
EARLY, HELD, RELEASED = "early", "held", "released"


@dataclass
class Gates:
    """What the relay learnt before planning: per withdrawal under embargo, the
    subscriptions that had received something of the article; the events whose
    held deliveries it released (to be claimed after the commit)."""

    informed: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    released_events: set[uuid.UUID] = field(default_factory=set)


def prepare(session: Session, now: datetime, rows: Sequence[Any]) -> Gates:
    """Release or cancel held deliveries for the lifts and embargoed withdrawals among ``rows``."""
    gates = Gates()
    for row in rows:
        if row.type == EventType.EMBARGO_LIFTED:
            gates.released_events.update(_release(session, now, row.article_id))
        elif row.embargo_until is not None and row.type in WITHDRAWAL_EVENTS:
            _cancel_held(session, now, row.article_id)
            gates.informed[row.id] = _informed(session, row.article_id)
    return gates


def _held(article_id: uuid.UUID) -> Any:
    return (
        D.c.article_id == article_id,
        D.c.embargo == HELD,
        D.c.status == DeliveryStatus.PENDING.value,
    )


def _release(session: Session, now: datetime, article_id: uuid.UUID) -> set[uuid.UUID]:
    """Held deliveries go, in order; held news of the embargo moving is dropped (the lift
    that follows says all a subscription that held them needs)."""
    session.execute(
        update(D)
        .where(*_held(article_id), D.c.event_type == EventType.EMBARGO_CHANGED.value)
        .values(
            status=DeliveryStatus.CANCELLED.value,
            next_attempt_at=None,
            updated_at=now,
            last_error="Superseded by the embargo's lift.",
        )
    )
    stmt = (
        update(D)
        .where(*_held(article_id))
        .values(embargo=RELEASED, next_attempt_at=now, updated_at=now)
        .returning(D.c.event_id)
    )
    return set(session.execute(stmt).scalars())


def _cancel_held(session: Session, now: datetime, article_id: uuid.UUID) -> None:
    session.execute(
        update(D)
        .where(*_held(article_id))
        .values(
            status=DeliveryStatus.CANCELLED.value,
            next_attempt_at=None,
            updated_at=now,
            last_error="Withdrawn under embargo: never sent.",
        )
    )


def _informed(session: Session, article_id: uuid.UUID) -> set[uuid.UUID]:
    """Subscriptions that were sent (or are being sent) something of the article."""
    stmt = (
        select(D.c.subscription_id)
        .where(D.c.article_id == article_id, or_(D.c.embargo.is_(None), D.c.embargo != HELD))
        .distinct()
    )
    return set(session.execute(stmt).scalars())


def targets(event: EventFacts, matching: list[Endpoint], gates: Gates) -> list[tuple[Endpoint, str | None]]:
    """Each matching subscription with its delivery's embargo mark (None: no embargo);
    those that must not get the event at all are left out."""
    if event.embargo_until is None:
        return [(e, None) for e in matching]
    out: list[tuple[Endpoint, str | None]] = []
    informed = gates.informed.get(event.id)
    for e in matching:
        if e.embargo_send:
            out.append((e, EARLY))
        elif informed is not None:  # a withdrawal under embargo
            if e.id in informed:
                out.append((e, None))
        else:
            out.append((e, HELD))
    return out


def early_recipients(session: Session, article_id: uuid.UUID) -> list[dict[str, Any]]:
    """Deliveries of the article sent under embargo (``early``), oldest first: the partner,
    subscription, event and when it was received (None: not yet)."""
    S, P = Subscription.__table__, Partner.__table__
    stmt = (
        select(
            P.c.id.label("partner_id"),
            P.c.name.label("partner"),
            D.c.subscription_id,
            D.c.id.label("delivery_id"),
            D.c.event_id,
            D.c.event_type,
            D.c.status,
            D.c.delivered_at,
        )
        .select_from(D.join(S, S.c.id == D.c.subscription_id).outerjoin(P, P.c.id == S.c.partner_id))
        .where(D.c.article_id == article_id, D.c.embargo == EARLY)
        .order_by(D.c.created_at, D.c.id)
    )
    return [dict(row._mapping) for row in session.execute(stmt)]


def mode_of(session: Session, partner_id: uuid.UUID | None, mode: str | None) -> str:
    """``hold`` unless asked otherwise; ``send`` only for a partner trusted with embargoed
    content (the newsroom's own subscriptions hold too: they feed public sites). A refusal
    is the partner's state, not the request's shape: 409."""
    if mode != "send":
        return "hold"
    partner = session.get(Partner, partner_id) if partner_id is not None else None
    if partner is None or not partner.receives_embargoed:
        raise Conflict(
            "Only a partner with receives_embargoed may have embargoed stories sent before the lift.",
            field="embargo",
        )
    return "send"
