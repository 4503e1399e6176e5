"""Ops pages (admin): every subscription's health, one subscription's deliveries with
every attempt (pause, resume, redeliver, recover failures since a time), and who got
an event. The same commands and queries as the admin API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from cms.console import auth, charts, paging
from cms.console.views import bp
from cms.platform.actors import Role
from cms.platform.clock import utcnow
from cms.platform.errors import DomainError
from cms.platform.extensions import db
from cms.webhooks import deliveries, overview, subscriptions


def _admin() -> auth.User:
    user: auth.User = g.user
    if not user.can(Role.ADMIN):
        abort(403)
    return user


@bp.get("/ops")
def ops_overview() -> str:
    """The last hour at a glance: every figure from aggregates (cms.webhooks.overview)."""
    _admin()
    view = overview.overview(db.session, utcnow())
    return render_template(
        "console/ops_overview.html",
        view=view,
        events_chart=charts.counts("Events per minute", view.minutes, {"events": view.events}),
        outcomes_chart=charts.counts("Delivery attempts per minute, by outcome", view.minutes, view.attempts),
        latency_chart=charts.latency(
            "Publish to first delivery (seconds)", view.minutes, {"p50": view.p50, "p99": view.p99}
        ),
    )


@bp.get("/ops/subscriptions")
def ops_subscriptions() -> str:
    _admin()
    rows, next_key = subscriptions.page(db.session, limit=100, after=paging.after(datetime, uuid.UUID))
    return render_template(
        "console/ops_subscriptions.html", rows=rows, older=paging.older("console.ops_subscriptions", next_key)
    )


def _sub(subscription_id: uuid.UUID) -> Any:
    try:
        return subscriptions.get(db.session, subscription_id)
    except DomainError:
        abort(404)


@bp.get("/ops/subscriptions/<uuid:subscription_id>")
def ops_subscription(subscription_id: uuid.UUID) -> str:
    _admin()
    sub = _sub(subscription_id)
    rows, next_key = deliveries.page(
        db.session,
        deliveries.DeliveryFilters(subscription_id=sub.id),
        limit=50,
        after=paging.after(datetime, uuid.UUID),
    )
    attempts = deliveries.attempts_of(db.session, [r.id for r in rows])
    older = paging.older("console.ops_subscription", next_key, subscription_id=sub.id)
    page = {"sub": sub, "rows": rows, "attempts": attempts, "older": older}
    return render_template("console/ops_subscription.html", **page)


@bp.post("/ops/subscriptions/<uuid:subscription_id>/<any(pause, resume):change>")
def ops_toggle(subscription_id: uuid.UUID, change: str) -> Any:
    _admin()
    _sub(subscription_id)
    policy = subscriptions.url_policy(current_app.config)
    subscriptions.update_subscription(db.session, subscription_id, {"enabled": change == "resume"}, policy)
    flash("Resumed: waiting deliveries go out in order." if change == "resume" else "Paused.")
    return redirect(url_for("console.ops_subscription", subscription_id=subscription_id))


@bp.post("/ops/deliveries/<uuid:delivery_id>/redeliver")
def ops_redeliver(delivery_id: uuid.UUID) -> Any:
    _admin()
    back = request.form.get("back", "")
    try:
        delivery = deliveries.redeliver(db.session, delivery_id)
        flash("Queued again (same webhook-id).")
        back = back or url_for("console.ops_subscription", subscription_id=delivery.subscription_id)
    except DomainError as exc:
        flash(exc.detail)
    return redirect(back if back.startswith("/console/") else url_for("console.ops_subscriptions"))


@bp.post("/ops/subscriptions/<uuid:subscription_id>/recover")
def ops_recover(subscription_id: uuid.UUID) -> Any:
    _admin()
    _sub(subscription_id)
    try:
        since = datetime.fromisoformat(request.form.get("since", ""))
    except ValueError:
        flash("Give the time to recover from, e.g. 2026-11-30T09:00.")
    else:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        count = subscriptions.recover(db.session, subscription_id, since)
        flash(f"{count} failed deliveries queued again.")
    return redirect(url_for("console.ops_subscription", subscription_id=subscription_id))


@bp.get("/ops/events/<uuid:event_id>")
def ops_event(event_id: uuid.UUID) -> str:
    _admin()
    rows, _ = deliveries.page(
        db.session, deliveries.DeliveryFilters(event_id=event_id), limit=200, after=None
    )
    if not rows:
        abort(404)
    attempts = deliveries.attempts_of(db.session, [r.id for r in rows])
    return render_template("console/ops_event.html", event_id=event_id, rows=rows, attempts=attempts)
