"""Partner accounts: create, change, disable, delete; their keys; authenticating them.

Partner keys look like ``cmsp_…`` and live in their own table: an authoring key
lookup never finds one, and the partner lookup never finds an authoring key.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.accounts.keys import MAX_KEY_LENGTH, ActorCache, hash_key
from cms.accounts.models import Partner, PartnerKey
from cms.content.visibility import clean_names
from cms.platform import pagination, uow
from cms.platform.actors import PARTNER_KEY_PREFIX, PartnerPrincipal
from cms.platform.clock import utcnow
from cms.platform.errors import NotFound
from cms.platform.uow import command

DISPLAY_PREFIX_LENGTH = 13  # "cmsp_" + 8 characters
FILTERS = ("sections", "tags", "languages")
SETTINGS = ("name", "email", "enabled", "max_subscriptions", "rate_limit_per_minute", "receives_embargoed")


def get(session: Session, partner_id: uuid.UUID) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None or partner.deleted_at is not None:
        raise NotFound(f"No partner with id {partner_id}.")
    return partner


@command
def create(session: Session, fields: Mapping[str, Any], defaults: Mapping[str, int]) -> Partner:
    """A new partner; ``defaults`` gives the limits it gets unless ``fields`` sets them."""
    now = utcnow()
    partner = Partner(
        id=uuid.uuid4(),
        name=fields["name"],
        email=fields["email"],
        enabled=fields.get("enabled", True),
        **{name: clean_names(fields.get(name)) for name in FILTERS},
        max_subscriptions=fields.get("max_subscriptions") or defaults["max_subscriptions"],
        rate_limit_per_minute=fields.get("rate_limit_per_minute") or defaults["rate_limit_per_minute"],
        receives_embargoed=bool(fields.get("receives_embargoed", False)),
        cursor_secret=secrets.token_hex(32),
        created_at=now,
        updated_at=now,
    )
    session.add(partner)
    session.flush()
    return partner


@command
def update_partner(session: Session, partner_id: uuid.UUID, changes: Mapping[str, Any]) -> Partner:
    """Change filters, limits, contact or the enabled flag; a disabled partner's keys
    and subscriptions stop working until it is enabled again."""
    partner = get(session, partner_id)
    for name in FILTERS:
        if name in changes:
            setattr(partner, name, clean_names(changes[name]))
    resumed = changes.get("enabled") is True and not partner.enabled
    for name in SETTINGS:
        if name in changes and changes[name] is not None:
            setattr(partner, name, changes[name])
    partner.updated_at = utcnow()
    if resumed:
        uow.after_commit(session, "sweep")  # its subscriptions' waiting deliveries go out
    return partner


@command
def delete(session: Session, partner_id: uuid.UUID) -> Partner:
    """Remove a partner: its keys are revoked; its subscriptions stop (the caller
    deletes them through the webhook commands, in the same unit of work)."""
    partner = get(session, partner_id)
    now = utcnow()
    partner.deleted_at = now
    partner.enabled = False
    partner.updated_at = now
    session.execute(
        update(PartnerKey)
        .where(PartnerKey.partner_id == partner.id, PartnerKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return partner


def page(session: Session, *, limit: int, after: uuid.UUID | None) -> tuple[list[Partner], uuid.UUID | None]:
    stmt = select(Partner).where(Partner.deleted_at.is_(None))
    return pagination.ascending(session, stmt, Partner.id, limit=limit, after=after)


# ---------------------------------------------------------------- keys


@command
def create_key(session: Session, partner_id: uuid.UUID, name: str) -> tuple[PartnerKey, str]:
    """A new key for the partner; returns the row and the raw key (shown once, never stored)."""
    partner = get(session, partner_id)
    raw = PARTNER_KEY_PREFIX + secrets.token_urlsafe(32)
    key = PartnerKey(
        id=uuid.uuid4(),
        partner_id=partner.id,
        name=name,
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(raw),
        created_at=utcnow(),
    )
    session.add(key)
    return key, raw


def keys_of(session: Session, partner_id: uuid.UUID) -> list[PartnerKey]:
    get(session, partner_id)
    stmt = (
        select(PartnerKey)
        .where(PartnerKey.partner_id == partner_id, PartnerKey.revoked_at.is_(None))
        .order_by(PartnerKey.created_at, PartnerKey.id)
    )
    return list(session.scalars(stmt))


@command
def revoke_key(session: Session, partner_id: uuid.UUID, key_id: uuid.UUID) -> PartnerKey:
    key = session.get(PartnerKey, key_id)
    if key is None or key.partner_id != partner_id or key.revoked_at is not None:
        raise NotFound(f"No active key {key_id} for partner {partner_id}.")
    key.revoked_at = utcnow()
    return key


def principal_of(partner: Partner, key_id: uuid.UUID) -> PartnerPrincipal:
    """The partner as a caller (its filters, limits and trust), through key ``key_id``."""
    return PartnerPrincipal(
        partner_id=partner.id,
        key_id=key_id,
        name=partner.name,
        enabled=partner.enabled,
        sections=tuple(partner.sections),
        tags=tuple(partner.tags),
        languages=tuple(partner.languages),
        rate_limit_per_minute=partner.rate_limit_per_minute,
        receives_embargoed=partner.receives_embargoed,
        cursor_key=partner.cursor_key(),
    )


def principal_of_key(session: Session, key_id: uuid.UUID) -> PartnerPrincipal | None:
    """The partner behind an active key of an active partner, by the key's id."""
    row = session.execute(
        select(PartnerKey.id, Partner)
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(PartnerKey.id == key_id, PartnerKey.revoked_at.is_(None), Partner.deleted_at.is_(None))
    ).first()
    if row is None or not row[1].enabled:
        return None
    return principal_of(row[1], row[0])


def authenticate(session: Session, raw: str, cache: ActorCache | None = None) -> PartnerPrincipal | None:
    """The partner behind a presented key, or None when the key is unknown or revoked
    (or belongs to a deleted partner). A disabled partner is returned, for a 403."""
    if not raw.startswith(PARTNER_KEY_PREFIX) or len(raw) > MAX_KEY_LENGTH:
        return None
    key_hash = hash_key(raw)
    if cache is not None and (found := cache.get(key_hash)) is not None:
        return found  # type: ignore[no-any-return]
    row = session.execute(
        select(PartnerKey.id, Partner)
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(PartnerKey.key_hash == key_hash, PartnerKey.revoked_at.is_(None), Partner.deleted_at.is_(None))
    ).first()
    if row is None:
        return None
    key_id, partner = row
    principal = principal_of(partner, key_id)
    if cache is not None:
        cache.put(key_hash, principal)
    return principal
