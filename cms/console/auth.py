"""Who is signed in to the console: a newsroom API key or a partner key, exchanged for a
session cookie that names the key (never holds it). Every request checks the key is
still active, so revoking it (or disabling its partner) ends its sessions at once; a
session unused for ``CMS_CONSOLE_IDLE_MINUTES`` ends too."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from flask import current_app, session

from cms.accounts import keys, partners
from cms.platform.actors import PARTNER_KEY_PREFIX, Actor, Role
from cms.platform.extensions import db


@dataclass(frozen=True)
class User:
    kind: str  # staff | partner
    name: str
    key_id: uuid.UUID
    role: Role | None = None  # staff only
    partner_id: uuid.UUID | None = None
    actor: Actor | None = None  # staff only: who the commands record

    @classmethod
    def staff(cls, actor: Actor, key_id: uuid.UUID) -> User:
        return cls("staff", actor.name, key_id, role=actor.role, actor=actor)

    def can(self, role: Role) -> bool:
        return self.kind == "staff" and self.role is not None and self._rank(self.role) >= self._rank(role)

    @staticmethod
    def _rank(role: Role) -> int:
        return [Role.READER, Role.WRITER, Role.EDITOR, Role.ADMIN].index(role)


def sign_in(raw: str) -> User | None:
    """The user a key signs in, or None (unknown, revoked, disabled partner)."""
    raw = raw.strip()
    user: User | None = None
    if raw.startswith(PARTNER_KEY_PREFIX):
        principal = current_app.extensions["cms_authenticate_partner"](db.session, raw)
        if principal is not None and principal.enabled:
            user = User("partner", principal.name, principal.key_id, partner_id=principal.partner_id)
    else:
        actor = current_app.extensions["cms_authenticate"](db.session, raw)
        if actor is not None and actor.key_id is not None:
            user = User.staff(actor, actor.key_id)
    session.clear()
    if user is not None:
        session.update(kind=user.kind, key=str(user.key_id), seen=time.time())
    return user


def current() -> User | None:
    """The signed-in user, or None (never signed in, idle too long, key revoked)."""
    if "key" not in session:
        return None
    idle = float(current_app.config["CMS_CONSOLE_IDLE_MINUTES"]) * 60
    if time.time() - float(session.get("seen", 0)) > idle:
        session.clear()
        return None
    key_id = uuid.UUID(session["key"])
    user: User | None = None
    if session.get("kind") == "partner":
        principal = partners.principal_of_key(db.session, key_id)
        if principal is not None:
            user = User("partner", principal.name, key_id, partner_id=principal.partner_id)
    else:
        actor = keys.actor_of_key(db.session, key_id)
        if actor is not None:
            user = User.staff(actor, key_id)
    if user is None:
        session.clear()
        return None
    session["seen"] = time.time()
    return user


def sign_out() -> None:
    session.clear()
