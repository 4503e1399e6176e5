"""Running what is due: scheduled publishes and unpublishes, and embargo lifts.

Beat asks a worker every ``CMS_SCHEDULE_INTERVAL`` seconds (and the CLI can) to
``run_due``. Each due action runs in a transaction of its own, exactly once however
many workers or beats ask at the same moment:

* the claim locks the action's *article* row with ``FOR UPDATE SKIP LOCKED``, so two
  workers take different articles, and one never waits on an article an editor is
  changing; every command locks the article before any schedule row, so the lock
  order is the same everywhere and nothing deadlocks;
* the action is then read again under its own lock: if another worker ran it (or an
  editor cancelled it) meanwhile, it is no longer pending and is left alone.

The action runs through the same command as a manual change (same event), as the
scheduler acting for whoever scheduled it. One that is no longer legal is recorded
as skipped with the reason; one that runs late (the system was down) still runs,
and how late is recorded on the row and in the metrics.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.orm import Session

from cms.content.models import Article
from cms.platform import bulk, metrics, uow
from cms.platform.actors import Actor, Role
from cms.platform.clock import utcnow
from cms.platform.errors import DomainError
from cms.publishing import commands as publishing
from cms.publishing import embargo
from cms.publishing.models import ActionKind, ActionStatus, ScheduledAction

log = logging.getLogger("cms.publishing.scheduler")

S = ScheduledAction.__table__
A = Article.__table__


@functools.cache
def _due_statement() -> Select[Any]:
    """The next due action whose article no one else holds (SQLite ignores the lock:
    its writers are serialised by BEGIN IMMEDIATE anyway)."""
    return (
        select(S.c.id)
        .select_from(S.join(A, A.c.id == S.c.article_id))
        .where(
            S.c.status == ActionStatus.PENDING.value, S.c.run_at <= bindparam("now", type_=S.c.run_at.type)
        )
        .order_by(S.c.run_at, S.c.id)
        .limit(1)
        .with_for_update(of=A, skip_locked=True)
    )


@dataclass(frozen=True)
class Fired:
    action: str
    status: str  # done | skipped
    lateness: float
    late: bool


def run_due(session: Session, *, grace_seconds: float, limit: int = 100) -> list[Fired]:
    """Run up to ``limit`` due actions, each in its own transaction; what became of them."""
    out: list[Fired] = []
    while len(out) < limit:
        fired = run_one(session, grace_seconds=grace_seconds)
        if fired is None:
            break
        out.append(fired)
        _observe(fired)
    return out


def run_one(session: Session, *, grace_seconds: float) -> Fired | None:
    """Claim and run the next due action; None when nothing is due."""
    while True:
        with uow.transaction(session):
            now = utcnow()
            if bulk.is_postgres(session):
                # A publish is an editor's act: never lose it to an asynchronous commit
                # (workers' connections may run with synchronous_commit off).
                session.execute(text("SET LOCAL synchronous_commit TO on"))
            action_id = session.execute(_due_statement(), {"now": now}).scalar()
            if action_id is None:
                return None
            action = session.get(ScheduledAction, action_id, with_for_update=True, populate_existing=True)
            if action is None or action.status != ActionStatus.PENDING.value or action.run_at > now:
                continue  # ran, cancelled or moved while we looked: take the next one
            return _fire(session, action, now, grace_seconds)


def _fire(session: Session, action: ScheduledAction, now: datetime, grace_seconds: float) -> Fired:
    lateness = max(0.0, (now - action.run_at).total_seconds())
    actor = Actor(
        key_id=action.scheduled_key_id,
        name=f"scheduler for {action.scheduled_by}",
        role=Role(action.scheduled_role),
    )
    try:
        with session.begin_nested():
            event_id = _perform(session, actor, action, now)
    except DomainError as exc:  # illegal now (killed meanwhile, version published ...)
        action.status = ActionStatus.SKIPPED.value
        action.reason = exc.detail
        event_id = None
    else:
        action.status = ActionStatus.DONE.value
    action.event_id = event_id
    action.fired_at = now
    action.updated_at = now
    action.lateness_seconds = lateness
    action.late = lateness > grace_seconds
    fired = Fired(action.action, action.status, lateness, action.late)
    log.info(
        "scheduled %s of article %s %s%s",
        action.action,
        action.article_id,
        action.status,
        f" ({action.reason})" if action.reason else "",
        extra={"action": action.action, "article_id": str(action.article_id), "lateness_seconds": lateness},
    )
    return fired


def _perform(session: Session, actor: Actor, action: ScheduledAction, now: datetime) -> Any:
    """Run the action's command; the event it recorded."""
    if action.action == ActionKind.PUBLISH:
        until = action.embargo_until
        if until is not None and until <= now:
            # Ran so late that its embargo has passed: the story simply goes out.
            action.reason = f"The embargo ({until.isoformat()}) had passed; published without it."
            until = None
        done = publishing.publish(
            session,
            actor,
            action.article_id,
            version=action.version,
            correction_note=action.correction_note,
            embargo_until=until,
        )
        return done.event.id
    if action.action == ActionKind.UNPUBLISH:
        return publishing.unpublish(session, actor, action.article_id).event.id
    return embargo.lift(session, actor, action.article_id, early=False).id


def _observe(fired: Fired) -> None:
    m = metrics.get()
    m.scheduled_actions.labels(fired.action, fired.status).inc()
    m.schedule_lateness.labels(fired.action).observe(fired.lateness)
    if fired.late:
        m.scheduled_late.labels(fired.action).inc()


def lag(session: Session) -> float:
    """Seconds the oldest pending action is overdue (0 when none is): a scheduler that
    is down shows here."""
    oldest = session.scalar(
        select(func.min(S.c.run_at)).where(S.c.status == ActionStatus.PENDING.value, S.c.run_at <= utcnow())
    )
    return max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0


def grace(config: Any) -> float:
    return float(config["CMS_SCHEDULE_GRACE_SECONDS"])
