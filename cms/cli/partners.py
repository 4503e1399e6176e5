"""Partners from the command line: list them, add one, give it a key (the same commands
as ``/api/v1/partners``)."""

from __future__ import annotations

import json
import uuid

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.accounts import partners
from cms.platform.errors import NotFound
from cms.platform.extensions import db


@click.group("partners")
def partners_group() -> None:
    """Partner accounts and their keys."""


@partners_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per partner.")
@with_appcontext
def partners_list(as_json: bool) -> None:
    """Every partner: id, name, enabled, filters and limits."""
    after = None
    while True:
        rows, after = partners.page(db.session, limit=100, after=after)
        for p in rows:
            facts = {
                "id": str(p.id), "name": p.name, "email": p.email, "enabled": p.enabled,
                "sections": p.sections, "tags": p.tags, "languages": p.languages,
                "max_subscriptions": p.max_subscriptions, "rate_limit_per_minute": p.rate_limit_per_minute,
                "receives_embargoed": p.receives_embargoed,
            }  # fmt: skip
            if as_json:
                click.echo(json.dumps(facts, ensure_ascii=False))
            else:
                sees = ", ".join(p.sections + p.tags + p.languages) or "all published content"
                state = "enabled" if p.enabled else "DISABLED"
                trusted = "  receives embargoed" if p.receives_embargoed else ""
                click.echo(f"{p.id}  {p.name}  <{p.email}>  {state}  sees: {sees}{trusted}")
        if after is None:
            return


@partners_group.command("create")
@click.option("--name", required=True)
@click.option("--email", required=True, help="Contact for the partner's technical people.")
@click.option("--section", "sections", multiple=True, help="Only this section (repeat for more).")
@click.option("--tag", "tags", multiple=True, help="Only articles with one of these tags.")
@click.option("--language", "languages", multiple=True, help="Only this language (`en` takes en-GB).")
@click.option("--receives-embargoed", is_flag=True, help="Trusted with stories before their embargo lifts.")
@with_appcontext
def partners_create(name: str, email: str, sections: tuple[str, ...], tags: tuple[str, ...],
                    languages: tuple[str, ...], receives_embargoed: bool) -> None:  # fmt: skip
    """Add a partner (no filter: it sees all published content); prints its id."""
    defaults = {
        "max_subscriptions": current_app.config["CMS_PARTNER_MAX_SUBSCRIPTIONS"],
        "rate_limit_per_minute": current_app.config["CMS_PARTNER_RATE_LIMIT"],
    }
    fields = {
        "name": name, "email": email, "sections": sections, "tags": tags, "languages": languages,
        "receives_embargoed": receives_embargoed,
    }  # fmt: skip
    partner = partners.create(db.session, fields, defaults)
    click.echo(str(partner.id))


@partners_group.command("create-key")
@click.argument("partner_id", type=click.UUID)
@click.option("--name", default="partner key", help="A label shown in key lists.")
@with_appcontext
def partners_create_key(partner_id: uuid.UUID, name: str) -> None:
    """Create a key for a partner and print it (last line). It is shown only once."""
    try:
        key, raw = partners.create_key(db.session, partner_id, name)
    except NotFound as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(
        f"Created key '{key.name}' (prefix {key.prefix}). Give it to the partner now; it is not shown again:"
    )
    click.echo(raw)


@partners_group.command("create-feed-token")
@click.argument("partner_id", type=click.UUID)
@click.option("--name", default="feed reader", help="A label shown in token lists.")
@click.option(
    "--base-url", default="http://127.0.0.1:8000", show_default=True, help="Where feeds are served."
)
@with_appcontext
def partners_create_feed_token(partner_id: uuid.UUID, name: str, base_url: str) -> None:
    """Create a token for a partner's private feeds and print its RSS, Atom and JSON Feed
    URLs (last lines). It is shown only once."""
    from cms.feeds import tokens

    try:
        token, raw = tokens.create(db.session, partner_id, name)
    except NotFound as exc:
        raise click.ClickException(exc.detail) from None
    base = current_app.config["CMS_PUBLIC_URL"].rstrip("/") or base_url.rstrip("/")
    click.echo(f"Created feed token '{token.name}' (prefix {token.prefix}); its feeds (not shown again):")
    for fmt in ("rss", "atom", "json"):
        click.echo(f"{base}/feeds/v1/p/{raw}/{fmt}")
