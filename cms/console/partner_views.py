"""The partner's own console pages: its subscriptions (rotate the secret, send a test
ping), its delivery log with every attempt, and replay since a time. Every query and
command is the self-service API's, scoped to the signed-in partner: another partner's
subscription is 404 here exactly as it is there."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from cms.console import auth, paging
from cms.console.views import bp
from cms.platform.errors import DomainError
from cms.platform.extensions import db
from cms.webhooks import deliveries, subscriptions


@dataclass(frozen=True)
class _Caller:
    """What the ping command records as the actor."""

    label: str


def _partner() -> auth.User:
    user: auth.User = g.user
    if user.kind != "partner" or user.partner_id is None:
        abort(403)
    return user


@bp.get("/partner/subscriptions")
def partner_subscriptions() -> str:
    user = _partner()
    rows, _ = subscriptions.page(db.session, limit=100, after=None, partner_id=user.partner_id)
    return render_template("console/partner_subscriptions.html", rows=rows)


@bp.get("/partner/subscriptions/<uuid:subscription_id>")
def partner_subscription(subscription_id: uuid.UUID) -> str:
    return _subscription_page(subscription_id, _partner())


def _subscription_page(subscription_id: uuid.UUID, user: auth.User, new_secret: str | None = None) -> str:
    sub = _own(subscription_id, user)
    filters = deliveries.DeliveryFilters(subscription_id=sub.id, partner_id=user.partner_id)
    rows, next_key = deliveries.page(db.session, filters, limit=50, after=paging.after(datetime, uuid.UUID))
    attempts = deliveries.attempts_of(db.session, [r.id for r in rows])
    return render_template(
        "console/partner_subscription.html",
        sub=sub,
        rows=rows,
        attempts=attempts,
        new_secret=new_secret,
        older=paging.older("console.partner_subscription", next_key, subscription_id=sub.id),
    )


def _own(subscription_id: uuid.UUID, user: auth.User) -> Any:
    try:
        return subscriptions.get(db.session, subscription_id, user.partner_id)
    except DomainError:
        abort(404)


@bp.post("/partner/subscriptions/<uuid:subscription_id>/rotate")
def partner_rotate(subscription_id: uuid.UUID) -> Any:
    user = _partner()
    _own(subscription_id, user)
    grace = subscriptions.rotation_grace(current_app.config)
    _sub, secret = subscriptions.rotate_secret(db.session, subscription_id, grace, user.partner_id)
    # Shown in this answer only: never through the (signed, readable) session cookie.
    return _subscription_page(subscription_id, user, new_secret=secret)


@bp.post("/partner/subscriptions/<uuid:subscription_id>/ping")
def partner_ping(subscription_id: uuid.UUID) -> Any:
    user = _partner()
    _own(subscription_id, user)
    try:
        subscriptions.ping(db.session, _Caller(f"partner:{user.name}"), subscription_id, user.partner_id)
        flash("Test ping sent.")
    except DomainError as exc:
        flash(exc.detail)
    return redirect(url_for("console.partner_subscription", subscription_id=subscription_id))


@bp.post("/partner/subscriptions/<uuid:subscription_id>/replay")
def partner_replay(subscription_id: uuid.UUID) -> Any:
    user = _partner()
    _own(subscription_id, user)
    try:
        since = datetime.fromisoformat(request.form.get("since", ""))
    except ValueError:
        flash("Give the time to replay from, e.g. 2026-11-30T09:00.")
        return redirect(url_for("console.partner_subscription", subscription_id=subscription_id))
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    count = subscriptions.recover(
        db.session, subscription_id, since, failed_only=False, partner_id=user.partner_id
    )
    flash(f"{count} deliveries queued again.")
    return redirect(url_for("console.partner_subscription", subscription_id=subscription_id))
