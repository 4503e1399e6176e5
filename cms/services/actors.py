"""Who is acting: the authenticated API key, without any Flask dependency."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cms.models import Role

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
