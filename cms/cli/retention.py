"""``cms deliveries prune``: expire the delivery log by hand (beat does it hourly)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.cli.ops import _emit, deliveries_group
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import retention


@deliveries_group.command("prune")
@click.option(
    "--older-than-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Age limit in days (default: CMS_DELIVERY_LOG_DAYS).",
)
@click.option(
    "--deliveries-older-than-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Also delete finished deliveries older than this (default: CMS_DELIVERY_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def deliveries_prune(
    older_than_days: float | None, deliveries_older_than_days: float | None, dry_run: bool, as_json: bool
) -> None:
    """Delete attempt rows of finished deliveries older than the retention period, and
    finished deliveries older than theirs (CMS_DELIVERY_RETENTION_DAYS).

    Until then each delivery's own row (status, attempts, last status code and error)
    is kept; pending and in-flight deliveries are never touched; events are kept.
    """
    days = older_than_days if older_than_days is not None else current_app.config["CMS_DELIVERY_LOG_DAYS"]
    if days <= 0:
        raise click.ClickException(
            "CMS_DELIVERY_LOG_DAYS is 0 (keep for ever): pass --older-than-days to prune anyway."
        )
    cutoff = utcnow() - timedelta(days=days)
    rows, _finished = retention.prune_attempts(
        db.session, cutoff, commit=db.session.rollback if dry_run else db.session.commit, dry_run=dry_run
    )
    data: dict[str, object] = {
        "older_than_days": days,
        "cutoff": cutoff,
        "dry_run": dry_run,
        "attempts": rows,
    }
    verb = "would delete" if dry_run else "deleted"
    lines = [f"{verb} {rows} delivery attempt(s) from before {cutoff:%Y-%m-%d %H:%M} UTC"]
    keep_days = (
        deliveries_older_than_days
        if deliveries_older_than_days is not None
        else current_app.config["CMS_DELIVERY_RETENTION_DAYS"]
    )
    if keep_days > 0:
        delivery_cutoff = utcnow() - timedelta(days=keep_days)
        gone, _finished = retention.prune_deliveries(
            db.session,
            delivery_cutoff,
            commit=db.session.rollback if dry_run else db.session.commit,
            dry_run=dry_run,
        )
        data.update({"deliveries_older_than_days": keep_days, "deliveries": gone})
        lines.append(f"{verb} {gone} finished deliveries from before {delivery_cutoff:%Y-%m-%d %H:%M} UTC")
    _emit(as_json, data, "\n".join(lines))
