"""Scheduled actions from the command line: what happens next, and running what is due
now (the same queries and scheduler as ``GET /api/v1/scheduled`` and beat's task)."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.platform.extensions import db
from cms.publishing import schedule, scheduler
from cms.publishing.models import ActionStatus


@click.group("schedule")
def schedule_group() -> None:
    """Scheduled publishes, unpublishes and embargo lifts."""


@schedule_group.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ActionStatus]),
    help="Only this status (default: pending and skipped).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per action.")
@with_appcontext
def schedule_list(status: str | None, as_json: bool) -> None:
    """What happens next, soonest first; skipped actions with the reason."""
    after = None
    while True:
        query = schedule.ListQuery(limit=100, after=after)
        if status:
            query = schedule.ListQuery(limit=100, statuses=(status,), after=after)
        rows, after = schedule.page(db.session, query)
        for action, headline in rows:
            if as_json:
                facts = {
                    "id": str(action.id), "article_id": str(action.article_id), "headline": headline,
                    "action": action.action, "status": action.status, "run_at": action.run_at.isoformat(),
                    "scheduled_by": action.scheduled_by, "reason": action.reason,
                }  # fmt: skip
                click.echo(json.dumps(facts, ensure_ascii=False))
            else:
                why = f"  ({action.reason})" if action.reason else ""
                click.echo(
                    f"{action.run_at.isoformat()}  {action.action:<12} {action.status:<8} "
                    f"{action.article_id}  {headline}  by {action.scheduled_by}{why}"
                )
        if after is None:
            return


@schedule_group.command("run-due")
@with_appcontext
def schedule_run_due() -> None:
    """Run every action that is due now (as beat's task does; safe beside running workers)."""
    fired = scheduler.run_due(db.session, grace_seconds=scheduler.grace(current_app.config), limit=10_000)
    for f in fired:
        late = f" late by {f.lateness:.1f} s" if f.late else ""
        click.echo(f"{f.action}: {f.status}{late}")
    click.echo(f"{len(fired)} action(s) run")
