"""``cms deliveries overview``: the console's ops overview as text or JSON, from the
same query (``cms.webhooks.overview``): aggregates only, whatever the history."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from cms.cli.ops import _emit, deliveries_group
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import overview as overview_query


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


@deliveries_group.command("overview")
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 24 * 60))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def deliveries_overview(minutes: int, as_json: bool) -> None:
    """The last hour (or --minutes): events, attempts by outcome, publish to first
    delivery p50/p99, outbox lag, and the failing subscriptions."""
    view = overview_query.overview(db.session, utcnow(), minutes=minutes)
    data = {
        "minutes": minutes,
        "events": view.total_events,
        "attempts": {outcome: sum(counts) for outcome, counts in view.attempts.items()},
        "first_deliveries": view.first_deliveries,
        "first_delivery_p50_seconds": view.hour_p50,
        "first_delivery_p99_seconds": view.hour_p99,
        "outbox_lag_seconds": view.outbox_lag,
        "unrelayed": view.unrelayed,
        "open": view.open,
        "failing": [
            {
                "subscription_id": str(f.id),
                "url": f.url,
                "enabled": f.enabled,
                "consecutive_failures": f.consecutive_failures,
                "failing_since": f.failing_since,
                "last_error": f.last_error,
                "next_retry_at": f.next_retry_at,
            }
            for f in view.failing
        ],
    }
    attempts = ", ".join(f"{n} {outcome}" for outcome, n in data["attempts"].items() if n) or "none"
    lines = [
        f"Last {minutes} min: {view.total_events} events; attempts: {attempts}",
        f"Publish to first delivery: p50 {_seconds(view.hour_p50)}, p99 {_seconds(view.hour_p99)}"
        f" ({view.first_deliveries} first deliveries)",
        f"Outbox lag {view.outbox_lag:.1f}s ({view.unrelayed} waiting);"
        f" {view.open['pending']} pending, {view.open['in_flight']} in flight",
    ]
    lines += [
        f"FAILING {f.url}: {f.consecutive_failures} in a row, last error {f.last_error or '-'},"
        f" next retry {f.next_retry_at.isoformat() if f.next_retry_at else 'none'}"
        for f in view.failing
    ] or ["No failing subscriptions."]
    _emit(as_json, data, "\n".join(lines))
