"""Who is acting: roles and the authenticated actor, without any Flask dependency.

Every capability checks roles, so they live here; ``cms.accounts`` stores the keys."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    WRITER = "writer"
    READER = "reader"


ROLE_RANK = {Role.READER: 0, Role.WRITER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Actor:
    key_id: uuid.UUID | None
    name: str
    role: Role

    def can(self, role: Role) -> bool:
        """Roles are ordered: admin > editor > writer > reader."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def label(self) -> str:
        return self.name


SYSTEM = Actor(key_id=None, name="system", role=Role.ADMIN)


# Partner keys start with this (authoring keys with "cms_"): each lookup refuses the other's.
PARTNER_KEY_PREFIX = "cmsp_"


@dataclass(frozen=True, slots=True)
class PartnerPrincipal:
    """A partner calling with one of its own keys (content API, self-service).

    It has no role: no authoring route accepts it (those take ``Actor`` keys only)."""

    partner_id: uuid.UUID
    key_id: uuid.UUID
    name: str
    enabled: bool
    sections: tuple[str, ...]
    tags: tuple[str, ...]
    languages: tuple[str, ...]
    rate_limit_per_minute: int
    receives_embargoed: bool
    cursor_key: bytes = field(repr=False)  # signs its feed cursors: never in a log line

    @property
    def label(self) -> str:
        return f"partner:{self.name}"
