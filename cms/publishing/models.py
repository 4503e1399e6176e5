"""Time in the newsroom: scheduled actions and embargoes.

A ``scheduled_actions`` row is something that must happen at ``run_at``: a publish
or unpublish an editor scheduled, or the lift of an embargo. The database is the
only record of it (no broker message, countdown or ETA): beat asks a worker every
second to run what is due, and claims in the database make each run exactly once.

An ``embargoes`` row is one period during which a published article is visible
only to trusted partners (``receives_embargoed``); it ends when it is lifted (at its
time, or early) or when the article is withdrawn.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cms.platform.actors import Actor
from cms.platform.models import Base


class ActionKind(enum.StrEnum):
    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    LIFT_EMBARGO = "lift_embargo"


# What an editor schedules (POST .../schedule replaces these, never an embargo's lift).
EDITORIAL_ACTIONS = (ActionKind.PUBLISH.value, ActionKind.UNPUBLISH.value)


class ActionStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"  # no longer legal when it came due: ``reason`` says why
    CANCELLED = "cancelled"


PENDING = text("status = 'pending'")


class ScheduledAction(Base):
    __tablename__ = "scheduled_actions"
    __table_args__ = (
        # What comes due next: pending rows only, so the index stays small.
        Index("ix_scheduled_actions_due", "run_at", "id", postgresql_where=PENDING, sqlite_where=PENDING),
        Index("ix_scheduled_actions_article", "article_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    article_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("articles.id"))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[datetime]
    # A scheduled publish: which version (None: the latest when it fires), a
    # correction note, and the embargo the publication carries.
    version: Mapped[int | None]
    correction_note: Mapped[str | None] = mapped_column(Text)
    embargo_until: Mapped[datetime | None]
    # Who scheduled it: the scheduler acts on their behalf, with their role.
    scheduled_by: Mapped[str] = mapped_column(String(200))
    scheduled_role: Mapped[str] = mapped_column(String(16))
    scheduled_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What became of it.
    fired_at: Mapped[datetime | None]
    lateness_seconds: Mapped[float | None] = mapped_column(Float)
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # beyond CMS_SCHEDULE_GRACE_SECONDS
    event_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def pending(
        cls,
        actor: Actor,
        article_id: uuid.UUID,
        kind: ActionKind,
        run_at: datetime,
        now: datetime,
        **extra: Any,
    ) -> ScheduledAction:
        """A new action ``actor`` asked for, to run at ``run_at`` on their behalf."""
        return cls(
            id=uuid.uuid4(),
            article_id=article_id,
            action=kind.value,
            status=ActionStatus.PENDING.value,
            run_at=run_at,
            scheduled_by=actor.label,
            scheduled_role=actor.role.value,
            scheduled_key_id=actor.key_id,
            created_at=now,
            updated_at=now,
            late=False,
            **extra,
        )


class EmbargoEnd(enum.StrEnum):
    LIFTED = "lifted"  # at its time, by the scheduler
    LIFTED_EARLY = "lifted_early"  # by an editor
    WITHDRAWN = "withdrawn"  # the article was unpublished or killed under embargo


OPEN = text("ended_at IS NULL")


class Embargo(Base):
    __tablename__ = "embargoes"
    __table_args__ = (
        # At most one embargo in force per article.
        Index(
            "uq_embargoes_open_article",
            "article_id",
            unique=True,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        ),
        Index("ix_embargoes_article_created", "article_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    article_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("articles.id"))
    until: Mapped[datetime]  # when it lifts (changed by an extension)
    original_until: Mapped[datetime]
    version: Mapped[int]  # the version published under it
    event_id: Mapped[uuid.UUID]  # the publication that started it
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(16))
    end_event_id: Mapped[uuid.UUID | None]
