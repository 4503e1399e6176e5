"""Feed tokens: create (shown once), list by prefix, revoke; find the partner behind one.

A token only reads that partner's feeds: it is not a partner key (another prefix, another
table), so it opens no API, and a key never opens a feed URL.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.accounts import partners
from cms.accounts.keys import MAX_KEY_LENGTH, ActorCache, hash_key
from cms.accounts.models import Partner
from cms.feeds.models import FeedToken
from cms.platform.actors import PartnerPrincipal
from cms.platform.clock import utcnow
from cms.platform.errors import NotFound
from cms.platform.uow import command

PREFIX = "cmsf_"
DISPLAY_PREFIX_LENGTH = 13  # "cmsf_" + 8 characters


@command
def create(session: Session, partner_id: uuid.UUID, name: str) -> tuple[FeedToken, str]:
    """A new feed token for the partner: the row and the raw token (shown once, never stored)."""
    partner = partners.get(session, partner_id)
    raw = PREFIX + secrets.token_urlsafe(32)
    token = FeedToken(
        id=uuid.uuid4(),
        partner_id=partner.id,
        name=name,
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        token_hash=hash_key(raw),
        created_at=utcnow(),
    )
    session.add(token)
    return token, raw


def of_partner(session: Session, partner_id: uuid.UUID) -> list[FeedToken]:
    partners.get(session, partner_id)
    stmt = (
        select(FeedToken)
        .where(FeedToken.partner_id == partner_id, FeedToken.revoked_at.is_(None))
        .order_by(FeedToken.created_at, FeedToken.id)
    )
    return list(session.scalars(stmt))


@command
def revoke(session: Session, partner_id: uuid.UUID, token_id: uuid.UUID) -> FeedToken:
    token = session.get(FeedToken, token_id)
    if token is None or token.partner_id != partner_id or token.revoked_at is not None:
        raise NotFound(f"No active feed token {token_id} for partner {partner_id}.")
    token.revoked_at = utcnow()
    return token


def reader(session: Session, raw: str, cache: ActorCache | None = None) -> PartnerPrincipal | None:
    """The partner whose feeds ``raw`` opens; None when unknown, revoked, or its partner
    is deleted or disabled (a feed URL answers those 404 alike)."""
    if not raw.startswith(PREFIX) or len(raw) > MAX_KEY_LENGTH:
        return None
    token_hash = hash_key(raw)
    if cache is not None and (found := cache.get(token_hash)) is not None:
        return found  # type: ignore[no-any-return]
    row = session.execute(
        select(FeedToken.id, Partner)
        .join(Partner, Partner.id == FeedToken.partner_id)
        .where(
            FeedToken.token_hash == token_hash, FeedToken.revoked_at.is_(None), Partner.deleted_at.is_(None)
        )
    ).first()
    if row is None or not row[1].enabled:
        return None
    principal = partners.principal_of(row[1], row[0])
    if cache is not None:
        cache.put(token_hash, principal)
    return principal
