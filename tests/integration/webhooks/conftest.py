from __future__ import annotations

import pytest

from cms.platform.actors import Role


@pytest.fixture
def admin(keys):
    return keys.auth(Role.ADMIN)
