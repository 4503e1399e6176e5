"""The one rule for "may this delivery go now?", as SQL over a set of candidates.

``sendable(candidates)`` selects the ids among ``candidates`` (rows with ``id``,
``subscription_id``, ``article_id``, ``sequence``, ``next_attempt_at`` and
``created_at``, ``embargo``) that may be sent now (see ``cms.webhooks.dispatch`` for the
guarantees). It is applied to two kinds of candidates, built here once each:

* ``claim_statement``: due ``pending`` rows already in the table (the sweep, the
  recorder's follow-up, and SQLite's fan-out), marked ``in_flight`` by an UPDATE;
* ``fresh_insert_statement`` (PostgreSQL): the rows a fan-out is about to insert,
  which are written already ``in_flight`` or ``pending`` by the rule, in one
  INSERT: one write per delivery instead of an insert and then a claim.

Statements are built once (with bind parameters): building one costs more than
running it for a small fan-out. Statuses are SQL literals (``status_is``), which
the partial indexes need.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    Insert,
    Integer,
    String,
    Update,
    Uuid,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.selectable import FromClause, Select

from cms.accounts.models import Partner
from cms.webhooks.models import OPEN_STATUSES, Delivery, DeliveryStatus, Subscription, status_is

D = Delivery.__table__
S = Subscription.__table__
P = Partner.__table__
RETURNED = ("id", "event_id", "subscription_id", "format", "attempts", "retry_index")
CANDIDATE_COLUMNS = (
    "id",
    "subscription_id",
    "article_id",
    "sequence",
    "next_attempt_at",
    "created_at",
    "embargo",
)
HELD = literal_column("'held'")  # cms.webhooks.embargo: waits for the embargo's lift


def _now() -> Any:
    return bindparam("claim_now", type_=D.c.updated_at.type)


def _lease() -> Any:
    return bindparam("claim_lease", type_=D.c.lease_expires_at.type)


def sendable(candidates: FromClause, *, batch: bool = False, lateral: bool = True) -> Select[Any]:
    """Ids of ``candidates`` that may go now, at most ``claim_limit``.

    Ordering: no earlier delivery (lower sequence) of the same article to the same
    subscription is open in the table; with ``batch``, the candidates are rows
    being written together (not in the table yet) and carry ``first_sequence``,
    the lowest sequence among them for their subscription and article, so only
    that one may go. Room: a subscription's room is its cap less what it has in
    flight; paused, deleted or full subscriptions drop out before the oldest due
    candidates are kept (``due_limit``), so a backlog behind a hanging endpoint
    costs nothing. Within a subscription the oldest take the free slots.
    ``lateral=False`` for SQLite, which has no LATERAL (and probes by key anyway).
    """
    c = candidates
    earlier = D.alias("earlier")
    flying = D.alias("flying")
    # Each candidate's subscription by its key, with its room: the cap less a count on
    # the small in-flight index. LATERAL with LIMIT 1 keeps this join order: as a
    # plain join the planner, unable to estimate the room filter, took the enabled
    # subscriptions for one row and scanned every candidate for each of them.
    in_flight = (
        select(func.count())
        .where(flying.c.subscription_id == S.c.id, status_is(flying.c.status, DeliveryStatus.IN_FLIGHT))
        .scalar_subquery()
    )
    room = (S.c.max_in_flight - in_flight).label("room")
    # A partner's subscriptions pause with their partner (disabled or deleted).
    partner_paused = exists().where(
        P.c.id == S.c.partner_id, or_(P.c.enabled.is_(False), P.c.deleted_at.is_not(None))
    )
    live = (S.c.id == c.c.subscription_id, S.c.enabled.is_(True), S.c.deleted_at.is_(None), ~partner_paused)
    if lateral:
        sub = select(room).where(*live).limit(1).lateral("sub")
        joined, room_of = c.join(sub, true()), sub.c.room
    else:
        joined, room_of = c.join(S, and_(*live)), room
    conditions = [
        room_of > 0,
        # Held for an embargo: never, until the lift's relay releases it.
        or_(c.c.embargo.is_(None), c.c.embargo != HELD),
        ~exists().where(
            earlier.c.subscription_id == c.c.subscription_id,
            earlier.c.article_id == c.c.article_id,
            earlier.c.sequence < c.c.sequence,
            status_is(earlier.c.status, *OPEN_STATUSES),
        ),
    ]
    if batch:  # a window over the batch, not a join of it with itself (no statistics)
        conditions.append(or_(c.c.first_sequence.is_(None), c.c.sequence <= c.c.first_sequence))
    due = (
        select(c.c.id, c.c.subscription_id, c.c.next_attempt_at, c.c.created_at, room_of.label("room"))
        .select_from(joined)
        .where(*conditions)
        .order_by(c.c.next_attempt_at, c.c.created_at)
        .limit(bindparam("due_limit"))
        .subquery("due")
    )
    ranked = select(
        due.c.id,
        due.c.next_attempt_at,
        due.c.room,
        func.row_number()
        .over(partition_by=due.c.subscription_id, order_by=(due.c.next_attempt_at, due.c.created_at))
        .label("rank"),
    ).subquery("ranked")
    return (
        select(ranked.c.id)
        .where(ranked.c.rank <= ranked.c.room)
        .order_by(ranked.c.next_attempt_at)
        .limit(bindparam("claim_limit"))
    )


@functools.cache
def claim_statement(scope: str | None, dialect: str) -> Update:
    """Mark the sendable due ``pending`` rows ``in_flight``; ``scope`` None, "events"
    (``event_ids``) or "subscriptions" (``subscription_ids``). Parameters:
    ``claim_now``, ``claim_lease``, ``claim_limit``, ``due_limit``."""
    due = select(*(D.c[name] for name in CANDIDATE_COLUMNS)).where(
        status_is(D.c.status, DeliveryStatus.PENDING), D.c.next_attempt_at <= _now()
    )
    if scope == "events":
        due = due.where(D.c.event_id.in_(bindparam("event_ids", expanding=True)))
    elif scope == "subscriptions":
        due = due.where(D.c.subscription_id.in_(bindparam("subscription_ids", expanding=True)))
    return (
        update(D)
        .where(
            D.c.id.in_(sendable(due.subquery("candidates"), lateral=dialect == "postgresql")),
            status_is(D.c.status, DeliveryStatus.PENDING),
        )
        .values(
            status=DeliveryStatus.IN_FLIGHT.value,
            lease_expires_at=_lease(),
            updated_at=_now(),
        )
        .returning(*(D.c[name] for name in RETURNED))
    )


_FRESH_COLUMNS = (
    ("id", Uuid),
    ("event_id", Uuid),
    ("subscription_id", Uuid),
    ("article_id", Uuid),
    ("sequence", Integer),
    ("event_type", String),
    ("format", String),
    ("embargo", String),
)


FRESH_NAMES = tuple(name for name, _kind in _FRESH_COLUMNS)


@functools.cache
def fresh_insert_statement() -> Insert:
    """PostgreSQL: insert a fan-out's deliveries (arrays ``d_<column>``), each
    ``in_flight`` (leased) if the rule lets it go now, else ``pending``; conflicts
    (a relay run again after a crash) are skipped. Returns the rows written, with
    their status. Parameters as ``claim_statement`` (``claim_limit``: the rows)."""
    arrays = [bindparam(f"d_{name}", type_=ARRAY(kind)) for name, kind in _FRESH_COLUMNS]
    fresh = (
        func.unnest(*arrays)
        .table_valued(*(column(name, kind) for name, kind in _FRESH_COLUMNS))
        .render_derived(name="fresh", with_types=False)
    )
    rows = select(
        *fresh.c,
        case((fresh.c.embargo == HELD, null()), else_=_now()).label("next_attempt_at"),
        _now().label("created_at"),
        func.min(fresh.c.sequence)
        .over(partition_by=(fresh.c.subscription_id, fresh.c.article_id))
        .label("first_sequence"),
    ).cte("rows")
    go = sendable(rows, batch=True).subquery("go")
    moving = go.c.id.is_not(None)
    body = select(
        *(rows.c[name] for name, _kind in _FRESH_COLUMNS),
        case((moving, literal_column("'in_flight'")), else_=literal_column("'pending'")),
        literal_column("0"),
        literal_column("0"),
        rows.c.next_attempt_at,
        case((moving, _lease()), else_=None),
        rows.c.created_at,
        rows.c.created_at,
    ).select_from(rows.outerjoin(go, go.c.id == rows.c.id))
    names = [*FRESH_NAMES, "status", "attempts", "retry_index", "next_attempt_at", "lease_expires_at"]
    names += ["created_at", "updated_at"]
    return (
        pg_insert(D)
        .from_select(names, body)
        .on_conflict_do_nothing()
        .returning(*(D.c[name] for name in RETURNED), D.c.status)
    )


_compiled: dict[str, tuple[str, dict[str, Any]]] = {}


def fresh_insert_sql(dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """``fresh_insert_statement`` as the driver's SQL (``%(name)s`` parameters), and
    the values of the parameters the construct holds itself (its literals)."""
    found = _compiled.get(dialect.name)
    if found is None:
        compiled = fresh_insert_statement().compile(dialect=dialect)
        # The construct's own literals (LIMIT 1, room > 0): every parameter but those
        # a caller must give.
        fixed = {k: v for k, v in compiled.params.items() if not compiled.binds[k].required}
        found = _compiled[dialect.name] = (str(compiled), fixed)
    return found
