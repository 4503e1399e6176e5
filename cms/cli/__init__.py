"""The ``cms`` command: a Flask CLI group (``cms db upgrade``, ``cms create-api-key``, ``cms up``…)."""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command


def register_commands(app: Flask) -> None:
    from cms.cli import keys, ops, retention  # noqa: F401 (retention adds `deliveries prune`)

    app.cli.add_command(keys.create_api_key)
    app.cli.add_command(keys.ensure_admin_key)
    for command in (ops.seed, ops.subscriptions_group, ops.deliveries_group, ops.redeliver, ops.outbox_group):
        app.cli.add_command(command)


def _make_app() -> Flask:
    from cms.app import create_app

    return create_app()


def main() -> None:
    from cms.cli import serve

    cli = FlaskGroup(
        name="cms",
        create_app=_make_app,
        add_default_commands=False,
        set_debug_flag=False,
        help="Newsroom CMS administration.",
    )
    cli.add_command(serve.run_command)
    cli.add_command(serve.up_command)
    cli.add_command(shell_command)
    cli.add_command(routes_command)
    cli.main(prog_name="cms")
