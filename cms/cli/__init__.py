"""The ``cms`` command: a Flask CLI group (``cms db upgrade``, ``cms create-api-key``, ``cms up``…)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    # retention and overview add `deliveries prune` and `deliveries overview`
    from cms.cli import keys, ops, overview, partners, retention, schedule  # noqa: F401

    app.cli.add_command(keys.create_api_key)
    app.cli.add_command(keys.ensure_admin_key)
    app.cli.add_command(partners.partners_group)
    app.cli.add_command(schedule.schedule_group)
    for command in (ops.seed, ops.subscriptions_group, ops.deliveries_group, ops.redeliver, ops.outbox_group):
        app.cli.add_command(command)
