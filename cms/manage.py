"""The ``cms`` console script: a Flask CLI group over ``create_app`` (``cms db upgrade``, ``cms up``…)."""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command


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
