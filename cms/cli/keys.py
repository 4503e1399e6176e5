"""API keys from the command line (first start, automation)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.accounts import keys as api_keys
from cms.platform.actors import Role
from cms.platform.extensions import db

ROLE_CHOICES = click.Choice([r.value for r in Role])


@click.command("create-api-key")
@click.option("--role", type=ROLE_CHOICES, required=True, help="admin, editor, writer or reader.")
@click.option("--name", default=None, help="A label shown in key lists (default: '<role> key').")
@with_appcontext
def create_api_key(role: str, name: str | None) -> None:
    """Create an API key and print it (last line). It is shown only once."""
    key, raw = api_keys.create(db.session, name=name or f"{role} key", role=Role(role))
    click.echo(f"Created {role} key '{key.name}' (prefix {key.prefix}). Store it now; it is not shown again:")
    click.echo(raw)


def first_admin_key(provided: str | None = None) -> str | None:
    """Create an admin key if no active one exists; returns it (None when one existed).

    ``provided`` (``CMS_ADMIN_KEY``) is used as the key instead of a random one,
    so a deployment can provision it from its secret store.
    """
    try:
        return api_keys.ensure_first_admin(db.session, provided or None)
    except ValueError as exc:
        raise click.ClickException(f"CMS_ADMIN_KEY: {exc}") from None


@click.command("ensure-admin-key")
@with_appcontext
def ensure_admin_key() -> None:
    """Create and print an admin key only when no active admin key exists (first start)."""
    provided = current_app.config["CMS_ADMIN_KEY"]
    raw = first_admin_key(provided)
    if raw is None:
        click.echo("An admin API key already exists (list keys with GET /api/v1/api-keys).")
    elif provided:
        click.echo(f"First start: created the admin key given in CMS_ADMIN_KEY (prefix {raw[:12]}).")
    else:
        click.echo(
            f"First start: created admin key (prefix {raw[:12]}). Store it now; it is not shown again:"
        )
        click.echo(raw)
