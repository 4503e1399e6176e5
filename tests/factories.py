"""Test data and apps: an app on a given database, API keys for every role.

Tests build their data through the same commands the API uses (so versions are
hash-chained and events recorded as in production), never by inserting rows.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_migrate import upgrade

from cms.accounts import keys as api_keys
from cms.app import create_app
from cms.platform.actors import Role
from cms.platform.extensions import db


def make_app(url: str, **overrides: Any) -> Flask:
    # No broker unless a test asks for one: publishing must work without it.
    settings = {"CMS_DATABASE_URL": url, "CMS_SECRET_KEY": "test", "CMS_BROKER_URL": "", **overrides}
    return create_app(settings)


def migrate(app: Flask) -> None:
    with app.app_context():
        upgrade()


class Keys:
    """One API key per role, created inside the test's transaction."""

    def __init__(self, app: Flask) -> None:
        self.raw: dict[Role, str] = {}
        with app.app_context():
            for role in Role:
                _key, raw = api_keys.create(db.session, name=f"{role} tester", role=role)
                self.raw[role] = raw
            db.session.commit()

    def auth(self, role: Role | str = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw[Role(role)]}"}
