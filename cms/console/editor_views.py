"""Editors' actions on an article's page (editor role and up, as in the API): publish
now (optionally under embargo, or as a correction), unpublish, schedule a publish
and/or an unpublish, cancel the schedule, lift an embargo early. Each form posts to
the same command as the API; a refusal comes back as the command's own words."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, g, redirect, request, url_for

from cms.console import auth
from cms.console.views import bp
from cms.platform.actors import Actor, Role
from cms.platform.errors import DomainError, NotFound
from cms.platform.extensions import db
from cms.publishing import commands as publishing
from cms.publishing import embargo, schedule


def _editor() -> Actor:
    user: auth.User = g.user
    if not user.can(Role.EDITOR) or user.actor is None:
        abort(403)
    return user.actor


class BadForm(ValueError):
    """A form field that does not parse; said back to the editor, nothing changes."""


def _when(name: str, *, required: bool = False) -> datetime | None:
    """A ``datetime-local`` field, read as UTC (the page says so)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        if required:
            raise BadForm(f"Give {name.replace('_', ' ')}.")
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadForm(f"{name.replace('_', ' ')}: give a date and time, e.g. 2026-12-01T09:00.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(name: str) -> str | None:
    return request.form.get(name, "").strip() or None


def _act(article_id: uuid.UUID, do: Callable[[Actor], str]) -> Any:
    actor = _editor()
    try:
        flash(do(actor))
    except NotFound:
        abort(404)
    except (DomainError, BadForm) as exc:
        flash(exc.detail if isinstance(exc, DomainError) else str(exc), "error")
    return redirect(url_for("console.article", article_id=article_id))


@bp.post("/articles/<uuid:article_id>/publish")
def article_publish(article_id: uuid.UUID) -> Any:
    def do(actor: Actor) -> str:
        until = _when("embargo_until")
        done = publishing.publish(
            db.session, actor, article_id, correction_note=_text("correction_note"), embargo_until=until
        )
        return f"Published version {done.article.published_version} ({done.event.type})" + (
            f", under embargo until {until:%Y-%m-%d %H:%M} UTC." if until else "."
        )

    return _act(article_id, do)


@bp.post("/articles/<uuid:article_id>/unpublish")
def article_unpublish(article_id: uuid.UUID) -> Any:
    def do(actor: Actor) -> str:
        publishing.unpublish(db.session, actor, article_id, reason=_text("reason"))
        return "Unpublished."

    return _act(article_id, do)


@bp.post("/articles/<uuid:article_id>/schedule")
def article_schedule(article_id: uuid.UUID) -> Any:
    def do(actor: Actor) -> str:
        plan = schedule.Plan(
            publish_at=_when("publish_at"),
            unpublish_at=_when("unpublish_at"),
            embargo_until=_when("embargo_until"),
            correction_note=_text("correction_note"),
        )
        if plan.publish_at is None and plan.unpublish_at is None:
            raise BadForm("Give a time to publish or to unpublish.")
        actions = schedule.replace(db.session, actor, article_id, plan)
        return (
            "Scheduled: " + "; ".join(f"{a.action} at {a.run_at:%Y-%m-%d %H:%M} UTC" for a in actions) + "."
        )

    return _act(article_id, do)


@bp.post("/articles/<uuid:article_id>/schedule/cancel")
def article_schedule_cancel(article_id: uuid.UUID) -> Any:
    def do(actor: Actor) -> str:
        return f"{schedule.cancel(db.session, actor, article_id)} scheduled action(s) cancelled."

    return _act(article_id, do)


@bp.post("/articles/<uuid:article_id>/embargo/lift")
def article_embargo_lift(article_id: uuid.UUID) -> Any:
    def do(actor: Actor) -> str:
        embargo.lift_early(db.session, actor, article_id)
        return "Embargo lifted: partners get the story now."

    return _act(article_id, do)
