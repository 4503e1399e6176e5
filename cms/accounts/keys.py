"""API keys: generated here, shown once, stored as SHA-256, revoked softly."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.accounts.models import ApiKey
from cms.platform import pagination
from cms.platform.actors import Actor, Role
from cms.platform.caches import ExpiringMemo
from cms.platform.clock import utcnow
from cms.platform.errors import Conflict, NotFound
from cms.platform.uow import command

KEY_PREFIX = "cms_"
DISPLAY_PREFIX_LENGTH = 12  # "cms_" + 8 characters: enough to tell keys apart, useless to an attacker


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


MIN_PROVIDED_KEY_LENGTH = 32
MAX_KEY_LENGTH = 200


@command
def create(session: Session, *, name: str, role: Role, raw: str | None = None) -> tuple[ApiKey, str]:
    """A new key; returns the row and the raw key, which is never stored.

    ``raw`` lets an operator provision a key chosen elsewhere (a deployment's
    secret store); it must be long enough to be unguessable, and carry our prefix,
    since :func:`authenticate` refuses anything else before hashing it.
    """
    if raw is None:
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
    elif (
        not raw.startswith(KEY_PREFIX)
        or len(raw) < MIN_PROVIDED_KEY_LENGTH
        or len(raw) > MAX_KEY_LENGTH
        or not raw.isprintable()
        or " " in raw
    ):
        raise ValueError(
            f"an API key must start with {KEY_PREFIX!r} and be {MIN_PROVIDED_KEY_LENGTH} to"
            f" {MAX_KEY_LENGTH} printable characters, no spaces"
        )
    key = ApiKey(
        id=uuid.uuid4(),
        name=name,
        role=str(role),
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(raw),
        created_at=utcnow(),
    )
    session.add(key)
    return key, raw


class ActorCache(ExpiringMemo):
    """Per-process memo of recent successful authentications.

    Saves a query on every request. A key revoked through this process is
    forgotten at once; other processes stop accepting it within ``ttl`` seconds.
    Only successes are cached, so a new key works immediately everywhere.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, name: str = "api-keys") -> None:
        super().__init__(name, ttl, max_entries)


def authenticate(session: Session, raw: str, cache: ActorCache | None = None) -> Actor | None:
    """The actor for a presented key, or ``None`` when unknown or revoked."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > MAX_KEY_LENGTH:
        return None
    key_hash = hash_key(raw)
    if cache is not None and (actor := cache.get(key_hash)) is not None:
        return actor
    row = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    actor = Actor(key_id=row.id, name=row.name, role=Role(row.role))
    if cache is not None:
        cache.put(key_hash, actor)
    return actor


def actor_of_key(session: Session, key_id: uuid.UUID) -> Actor | None:
    """The actor behind an active key, by its id (a console session names its key so)."""
    row = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    ).first()
    return Actor(key_id=row.id, name=row.name, role=Role(row.role)) if row is not None else None


def page(
    session: Session, *, limit: int, after: uuid.UUID | None, include_revoked: bool = False
) -> tuple[list[ApiKey], uuid.UUID | None]:
    stmt = select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return pagination.ascending(session, stmt, ApiKey.id, limit=limit, after=after)


@command
def revoke(session: Session, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key; refuses to revoke the last active admin key (no lock-out)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound(f"No active API key with id {key_id}.")
    if key.role == Role.ADMIN:
        admins = session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None))
        )
        if admins == 1:
            raise Conflict("This is the last active admin key; create another admin key first.")
    key.revoked_at = utcnow()
    return key


@command
def ensure_first_admin(session: Session, provided: str | None = None) -> str | None:
    """Create an admin key if no active one exists; returns it (None when one existed).

    ``provided`` (``CMS_ADMIN_KEY``) is used as the key instead of a random one,
    so a deployment can provision it from its secret store."""
    exists = session.scalar(
        select(ApiKey.id).where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None)).limit(1)
    )
    if exists is not None:
        return None  # (the unit of work ends the transaction: on SQLite it holds the write lock)
    _key, raw = create(session, name="first admin", role=Role.ADMIN, raw=provided)
    return raw
