"""The ``cms`` command: a Flask CLI group (``cms db upgrade``, ``cms create-api-key``, ``cms run``)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext
from sqlalchemy import select

from cms.extensions import db
from cms.models import ApiKey, Role
from cms.services import api_keys

ROLE_CHOICES = click.Choice([r.value for r in Role])


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_api_key)
    app.cli.add_command(ensure_admin_key)


@click.command("create-api-key")
@click.option("--role", type=ROLE_CHOICES, required=True, help="admin, editor, writer or reader.")
@click.option("--name", default=None, help="A label shown in key lists (default: '<role> key').")
@with_appcontext
def create_api_key(role: str, name: str | None) -> None:
    """Create an API key and print it (last line). It is shown only once."""
    key, raw = api_keys.create(db.session, name=name or f"{role} key", role=Role(role))
    db.session.commit()
    click.echo(f"Created {role} key '{key.name}' (prefix {key.prefix}). Store it now; it is not shown again:")
    click.echo(raw)


@click.command("ensure-admin-key")
@with_appcontext
def ensure_admin_key() -> None:
    """Create and print an admin key only when no active admin key exists (first start)."""
    exists = db.session.scalar(
        select(ApiKey.id).where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None)).limit(1)
    )
    if exists is not None:
        click.echo("An admin API key already exists (list keys with GET /api/v1/api-keys).")
        return
    key, raw = api_keys.create(db.session, name="first admin", role=Role.ADMIN)
    db.session.commit()
    click.echo(f"First start: created admin key (prefix {key.prefix}). Store it now; it is not shown again:")
    click.echo(raw)


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: CMS_PORT (8000).")
@with_appcontext
def run_command(host: str, port: int | None) -> None:
    """Run the development server (use gunicorn cms.wsgi:app in production)."""
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["CMS_PORT"]
    click.echo(f"API on http://{host}:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _make_app() -> Flask:
    from cms.app import create_app

    return create_app()


def main() -> None:
    cli = FlaskGroup(
        name="cms",
        create_app=_make_app,
        add_default_commands=False,
        set_debug_flag=False,
        help="Newsroom CMS administration.",
    )
    cli.add_command(run_command)
    cli.add_command(shell_command)
    cli.add_command(routes_command)
    cli.main(prog_name="cms")
