"""Webhook subscriptions (admin): create, change, rotate the secret, ping, recover, delete."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.content.visibility import clean_names
from cms.events import outbox
from cms.events.models import OutboxEvent
from cms.events.outbox import EventType
from cms.platform import uow
from cms.platform.clock import utcnow
from cms.platform.errors import Conflict, NotFound, Unprocessable
from cms.platform.uow import command
from cms.webhooks import deliveries, embargo
from cms.webhooks.models import Delivery, DeliveryStatus, PayloadFormat, Subscription
from cms.webhooks.transport.signing import generate_secret
from cms.webhooks.transport.urls import Network, UrlRefused, check_url, parse_networks

DEFAULT_MAX_IN_FLIGHT = 4
EVENT_TYPE_PATTERNS = (
    "*",
    "article.*",
    "subscription.*",
    *(t.value for t in EventType if t != EventType.PING),
)
# Headers the delivery engine owns; a subscription may not override them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "host",
        "proxy-authorization",  # the egress proxy's (CMS_WEBHOOK_PROXY), not a partner's
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)  # only "-" else


# A header name (an RFC 9110 token) that is not one of the reserved ones, in any case.
# Written without inline flags so the OpenAPI document can carry it as it is.
HEADER_NAME_PATTERN = (
    "^(?!(?:"
    + "|".join(_any_case(n) for n in sorted(RESERVED_HEADERS))
    + ")$)"
    + r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$"
)
HEADER_VALUE_PATTERN = r"^[^\r\n\x00]*$"
_TOKEN = re.compile(HEADER_NAME_PATTERN)
_VALUE = re.compile(HEADER_VALUE_PATTERN)


@dataclass(frozen=True)
class UrlPolicy:
    allowed_networks: tuple[Network, ...] = ()
    https_only: bool = False


def url_policy(config: Mapping[str, Any]) -> UrlPolicy:
    """The SSRF policy from ``CMS_WEBHOOK_*`` settings."""
    return UrlPolicy(
        allowed_networks=parse_networks(config["CMS_WEBHOOK_ALLOWED_NETWORKS"]),
        https_only=bool(config["CMS_WEBHOOK_HTTPS_ONLY"]),
    )


def rotation_grace(config: Mapping[str, Any]) -> timedelta:
    return timedelta(hours=float(config["CMS_WEBHOOK_ROTATION_GRACE_HOURS"]))


def check_url_allowed(url: str, policy: UrlPolicy) -> None:
    try:
        check_url(url, allowed=policy.allowed_networks, https_only=policy.https_only)
    except UrlRefused as exc:
        raise Unprocessable(f"The URL cannot receive webhooks: {exc}.", field="url") from None


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            raise Unprocessable(f"The '{name}' header is set by the delivery engine.", field="headers")
        if not _TOKEN.match(name):
            raise Unprocessable(f"'{name}' is not a valid header name.", field="headers")
        if not _VALUE.match(value):
            raise Unprocessable(f"The value of '{name}' contains a line break.", field="headers")


def get(session: Session, subscription_id: uuid.UUID, partner_id: uuid.UUID | None = None) -> Subscription:
    """A live subscription; with ``partner_id``, only one of that partner's (else 404:
    another partner's subscriptions do not exist for it)."""
    sub = session.get(Subscription, subscription_id)
    if sub is None or sub.deleted_at is not None or (partner_id is not None and sub.partner_id != partner_id):
        raise NotFound(f"No subscription with id {subscription_id}.")
    return sub


@command
def create(session: Session, fields: dict[str, Any], policy: UrlPolicy) -> tuple[Subscription, str]:
    """A new subscription; returns it with its signing secret (shown once)."""
    check_url_allowed(fields["url"], policy)
    headers = dict(fields.get("headers") or {})
    _check_headers(headers)
    now = utcnow()
    secret = generate_secret()
    enabled = fields.get("enabled", True)
    sub = Subscription(
        id=uuid.uuid4(),
        partner_id=fields.get("partner_id"),
        url=fields["url"],
        description=fields.get("description"),
        event_types=clean_names(fields.get("event_types") or ["*"]),
        sections=clean_names(fields.get("sections")),
        tags=clean_names(fields.get("tags")),
        languages=clean_names(fields.get("languages")),
        format=fields.get("format") or PayloadFormat.JSON.value,
        embargo=embargo.mode_of(session, fields.get("partner_id"), fields.get("embargo")),
        headers=headers,
        enabled=enabled,
        max_in_flight=fields.get("max_in_flight") or DEFAULT_MAX_IN_FLIGHT,
        secret=secret,
        created_at=now,
        updated_at=now,
        disabled_at=None if enabled else now,
        disabled_reason=None if enabled else "Created disabled.",
        consecutive_failures=0,
    )
    session.add(sub)
    session.flush()
    return sub, secret


@command
def update_subscription(
    session: Session,
    subscription_id: uuid.UUID,
    changes: dict[str, Any],
    policy: UrlPolicy,
    partner_id: uuid.UUID | None = None,
) -> Subscription:
    """Change settings. Enabling again clears the health record; pending deliveries resume."""
    sub = get(session, subscription_id, partner_id)
    now = utcnow()
    _change_target(sub, changes, policy)
    _change_filters_and_settings(sub, changes)
    if "embargo" in changes:
        sub.embargo = embargo.mode_of(session, sub.partner_id, changes["embargo"])
    if "enabled" in changes and changes["enabled"] != sub.enabled:
        _set_enabled(session, sub, changes["enabled"], now)
    sub.updated_at = now
    return sub


# Settings stored as cleaned lists (blank and repeated entries dropped), and as given.
_LIST_SETTINGS = ("event_types", "sections", "tags", "languages")
_PLAIN_SETTINGS = ("description", "format", "max_in_flight")


def _change_target(sub: Subscription, changes: dict[str, Any], policy: UrlPolicy) -> None:
    """Where and how deliveries are sent: a new URL must pass the address policy
    (the same one again is not checked anew); headers must not be the engine's."""
    if "url" in changes and changes["url"] != sub.url:
        check_url_allowed(changes["url"], policy)
        sub.url = changes["url"]
    if "headers" in changes:
        headers = dict(changes["headers"] or {})
        _check_headers(headers)
        sub.headers = headers


def _change_filters_and_settings(sub: Subscription, changes: dict[str, Any]) -> None:
    for name in _LIST_SETTINGS:
        if name in changes:
            setattr(sub, name, clean_names(changes[name]))
    for name in _PLAIN_SETTINGS:
        if name in changes:
            setattr(sub, name, changes[name])


def _set_enabled(session: Session, sub: Subscription, enabled: bool, now: datetime) -> None:
    """Enabling starts afresh (no failure record) and wakes the sweep, so the
    deliveries that waited go out; disabling records that an administrator paused it."""
    sub.enabled = enabled
    if enabled:
        sub.disabled_at = None
        sub.disabled_reason = None
        sub.failing_since = None
        sub.consecutive_failures = 0
        uow.after_commit(session, "sweep")
    else:
        sub.disabled_at = now
        sub.disabled_reason = "Disabled by an administrator."


def page(
    session: Session,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    partner_id: uuid.UUID | None = None,
) -> tuple[list[Subscription], tuple[datetime, uuid.UUID] | None]:
    """Oldest first, keyset-paginated on ``(created_at, id)``; a partner's only, if given."""
    stmt = select(Subscription).where(Subscription.deleted_at.is_(None))
    if partner_id is not None:
        stmt = stmt.where(Subscription.partner_id == partner_id)
    if after is not None:
        stmt = stmt.where(
            (Subscription.created_at > after[0])
            | ((Subscription.created_at == after[0]) & (Subscription.id > after[1]))
        )
    rows = list(session.scalars(stmt.order_by(Subscription.created_at, Subscription.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].created_at, rows[-1].id) if more and rows else None)


@command
def delete(session: Session, subscription_id: uuid.UUID, partner_id: uuid.UUID | None = None) -> Subscription:
    """Stop for good: the row and its delivery log stay, pending deliveries are cancelled."""
    sub = get(session, subscription_id, partner_id)
    now = utcnow()
    sub.deleted_at = now
    sub.enabled = False
    sub.disabled_at = sub.disabled_at or now
    sub.updated_at = now
    session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == sub.id, Delivery.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.CANCELLED.value, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return sub


@command
def rotate_secret(
    session: Session, subscription_id: uuid.UUID, grace: timedelta, partner_id: uuid.UUID | None = None
) -> tuple[Subscription, str]:
    """A new secret; the old one keeps signing too until the grace period ends."""
    sub = get(session, subscription_id, partner_id)
    now = utcnow()
    secret = generate_secret()
    sub.previous_secret = sub.secret if grace.total_seconds() > 0 else None
    sub.previous_secret_expires_at = now + grace if grace.total_seconds() > 0 else None
    sub.secret = secret
    sub.updated_at = now
    return sub, secret


@command
def ping(
    session: Session, actor: Any, subscription_id: uuid.UUID, partner_id: uuid.UUID | None = None
) -> OutboxEvent:
    """Send a ``webhook.ping`` test event to this subscription only."""
    sub = get(session, subscription_id, partner_id)
    if not sub.enabled:
        raise Conflict("The subscription is disabled; enable it to ping it.", enabled=False)
    return outbox.record_system(
        session,
        EventType.PING,
        subscription_id=sub.id,
        actor=actor.label,
        data={"message": "Ping from the newsroom CMS: this endpoint receives our webhooks."},
    )


@command
def recover(
    session: Session,
    subscription_id: uuid.UUID,
    since: datetime,
    *,
    failed_only: bool = True,
    partner_id: uuid.UUID | None = None,
) -> int:
    """Send again every failed delivery created since ``since`` (every delivery, with
    ``failed_only=False``: a partner's replay); returns how many."""
    sub = get(session, subscription_id, partner_id)
    return deliveries.requeue(session, failed_only=failed_only, subscription_id=sub.id, since=since)
