"""Operations from the command line: seed, subscriptions, deliveries, outbox.

Every command prints a readable summary, or JSON with ``--json`` (for scripts
and monitoring). They read and write the same tables as the API.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from cms.authoring import articles
from cms.content.models import Article
from cms.content.seed import parse_wire_story
from cms.events.models import OutboxEvent
from cms.platform.actors import Actor, Role
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.publishing import commands as publishing
from cms.webhooks import deliveries
from cms.webhooks.models import Delivery, DeliveryCount, DeliveryStatus, Subscription

CLI_ACTOR = Actor(key_id=None, name="cms cli", role=Role.ADMIN)
PACKAGED_SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed-article.txt"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "seed-article.txt"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=_plain, ensure_ascii=False) if as_json else text)


def _age(then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = int((utcnow() - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@click.command("seed")
@click.argument("story", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--count", default=1, show_default=True, help="How many copies (each gets its own slug).")
@click.option("--publish/--draft", default=False, help="Publish what was created (emits article.published).")
@click.option("--image-url", default="https://images.example.org/lead.jpg", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def seed(story: Path | None, count: int, publish: bool, image_url: str, as_json: bool) -> None:
    """Load a wire story (default: the sample story) as articles."""
    path = story or (SHARED_SEED if SHARED_SEED.exists() else PACKAGED_SEED)
    try:
        parsed = parse_wire_story(path.read_text(encoding="utf-8"), image_url=image_url)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} is not a wire story: {exc}") from None
    created = []
    with click.progressbar(range(count), label="Seeding", hidden=as_json or count < 5) as bar:
        for _ in bar:
            view = articles.create(
                db.session, CLI_ACTOR, dict(parsed.fields), message=f"Seeded from {path.name}"
            )
            if publish:
                publishing.publish(db.session, CLI_ACTOR, view.id)
            created.append({"id": str(view.id), "slug": view.content_dict()["slug"]})
    state = "published" if publish else "draft"
    lines = [f"Created {len(created)} {state} article(s) from {path}:"] + [
        f"  {c['id']}  {c['slug']}" for c in created
    ]
    _emit(as_json, {"source": str(path), "state": state, "articles": created}, "\n".join(lines))


@click.group("subscriptions")
def subscriptions_group() -> None:
    """Webhook subscriptions."""


@subscriptions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def subscriptions_list(as_json: bool) -> None:
    """Every live subscription, its filters and health (secrets are never shown)."""
    pending = dict(
        db.session.execute(
            select(Delivery.subscription_id, func.count())
            .where(Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value]))
            .group_by(Delivery.subscription_id)
        ).all()
    )
    subs = db.session.scalars(
        select(Subscription).where(Subscription.deleted_at.is_(None)).order_by(Subscription.created_at)
    ).all()
    rows = [
        {
            "id": str(s.id),
            "url": s.url,
            "enabled": s.enabled,
            "format": s.format,
            "event_types": s.event_types,
            "filters": {"sections": s.sections, "tags": s.tags, "languages": s.languages},
            "open_deliveries": pending.get(s.id, 0),
            "failing_since": s.failing_since,
            "consecutive_failures": s.consecutive_failures,
            "disabled_reason": s.disabled_reason,
        }
        for s in subs
    ]
    lines = [f"{'id':36}  {'on':3}  {'fmt':5}  {'open':>5}  {'failing':>7}  url"]
    for r in rows:
        failing = _age(r["failing_since"]) if r["failing_since"] else "-"
        lines.append(
            f"{r['id']}  {'yes' if r['enabled'] else 'no':3}  {r['format']:5}  {r['open_deliveries']:>5}  "
            f"{failing:>7}  {r['url']}"
        )
    lines.append(f"{len(rows)} subscription(s)")
    _emit(as_json, rows, "\n".join(lines))


@click.group("deliveries")
def deliveries_group() -> None:
    """Webhook deliveries."""


@deliveries_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def deliveries_status(as_json: bool) -> None:
    """Deliveries by state, and the endpoints that are failing."""
    # Kept by database triggers (a few rows), rather than counting the whole history.
    rows = db.session.execute(
        select(DeliveryCount.status, func.sum(DeliveryCount.n)).group_by(DeliveryCount.status)
    )
    counts = {status: int(n) for status, n in rows}
    now = utcnow()
    due = db.session.scalar(
        select(func.count()).where(
            Delivery.status == DeliveryStatus.PENDING.value, Delivery.next_attempt_at <= now
        )
    )
    failing = db.session.scalars(
        select(Subscription)
        .where(Subscription.deleted_at.is_(None), Subscription.failing_since.is_not(None))
        .order_by(Subscription.failing_since)
    ).all()
    data = {
        "by_status": {s.value: counts.get(s.value, 0) for s in DeliveryStatus},
        "due_now": due or 0,
        "failing_endpoints": [
            {
                "subscription_id": str(s.id),
                "url": s.url,
                "enabled": s.enabled,
                "failing_since": s.failing_since,
                "consecutive_failures": s.consecutive_failures,
                "last_success_at": s.last_success_at,
            }
            for s in failing
        ],
    }
    lines = ["Deliveries:"] + [f"  {name:10} {n:>8}" for name, n in data["by_status"].items()]
    lines.append(f"  {'due now':10} {data['due_now']:>8}")
    if failing:
        lines.append("Failing endpoints:")
        lines += [
            f"  {s.url}  failing for {_age(s.failing_since)}, {s.consecutive_failures} failures"
            + ("" if s.enabled else "  (disabled)")
            for s in failing
        ]
    else:
        lines.append("No failing endpoints.")
    _emit(as_json, data, "\n".join(lines))


@click.command("redeliver")
@click.argument("delivery_ids", nargs=-1, type=click.UUID)
@click.option(
    "--subscription", "subscription_id", type=click.UUID, help="With --failed: only this subscription."
)
@click.option("--failed", is_flag=True, help="Every failed delivery (of --subscription, since --since).")
@click.option("--since", type=click.DateTime(), help="With --failed: created at or after (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def redeliver(
    delivery_ids: tuple[uuid.UUID, ...],
    subscription_id: uuid.UUID | None,
    failed: bool,
    since: datetime | None,
    as_json: bool,
) -> None:
    """Send deliveries again (same webhook-id, fresh retry schedule)."""
    if not delivery_ids and not failed:
        raise click.UsageError("Name deliveries, or use --failed.")
    count = deliveries.requeue(
        db.session,
        ids=delivery_ids or None,
        failed_only=failed,
        subscription_id=subscription_id if failed else None,
        since=since.replace(tzinfo=UTC) if failed and since else None,
    )
    _emit(as_json, {"requeued": count}, f"Queued {count} delivery(ies) to be sent again.")


@click.group("outbox")
def outbox_group() -> None:
    """The event outbox."""


@outbox_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def outbox_status(as_json: bool) -> None:
    """Events not yet relayed and how old the oldest is (relay lag)."""
    unrelayed, oldest = db.session.execute(
        select(func.count(), func.min(OutboxEvent.occurred_at)).where(OutboxEvent.relayed_at.is_(None))
    ).one()
    total = db.session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    by_type = dict(
        db.session.execute(select(OutboxEvent.type, func.count()).group_by(OutboxEvent.type)).all()
    )
    lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
    articles_total = db.session.scalar(select(func.count()).select_from(Article)) or 0
    data = {
        "events": total,
        "unrelayed": unrelayed,
        "oldest_unrelayed_at": oldest,
        "lag_seconds": round(lag, 3),
        "by_type": by_type,
        "articles": articles_total,
    }
    lines = [
        f"Events: {total} ({', '.join(f'{t} {n}' for t, n in sorted(by_type.items())) or 'none'})",
        f"Unrelayed: {unrelayed}" + (f", oldest {_age(oldest)} old" if oldest else ""),
    ]
    _emit(as_json, data, "\n".join(lines))
