"""Test data and apps: an app on a given database, API keys for every role.

Tests build their data through the same commands the API uses (so versions are
hash-chained and events recorded as in production), never by inserting rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import factory
from flask import Flask
from flask_migrate import upgrade

from cms.accounts import keys as api_keys
from cms.app import create_app
from cms.authoring import articles
from cms.content.reads import ArticleView
from cms.content.seed import parse_wire_story
from cms.platform.actors import Actor, Role
from cms.platform.extensions import db
from cms.publishing import commands as publishing
from cms.webhooks import subscriptions
from cms.webhooks.models import Subscription


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


# ---------------------------------------------------------------- test data
# factory_boy factories whose ``create`` runs the production command (so an
# article gets its hash-chained version 1 and a publish its outbox event).
# Pass ``session=db.session`` inside an app context.

EDITOR = Actor(key_id=None, name="factory desk", role=Role.EDITOR)
SEED = parse_wire_story((Path(__file__).resolve().parents[1] / "cms/fixtures/seed-article.txt").read_text())


class ArticleFactory(factory.Factory):
    """Articles shaped like the seed wire story; ``publish=True`` publishes them too."""

    class Meta:
        model = dict

    headline = factory.Sequence(lambda n: f"{SEED.fields['headline']} ({n})")
    standfirst = SEED.fields.get("standfirst")
    body = SEED.fields["body"]
    section = "world"
    tags = factory.LazyFunction(lambda: ["Russia", "United States"])
    language = "en"
    credits = factory.LazyFunction(lambda: list(SEED.fields.get("credits") or ["BTA"]))

    @classmethod
    def _create(cls, model_class: Any, *, session: Any, publish: bool = False, **fields: Any) -> ArticleView:
        view = articles.create(session, EDITOR, dict(fields))
        if publish:
            publishing.publish(session, EDITOR, view.id)
        return view


class SubscriptionFactory(factory.Factory):
    """Subscriptions to public-looking URLs (no request is made unless a worker runs)."""

    class Meta:
        model = dict

    url = factory.Sequence(lambda n: f"https://93.184.215.14/hooks/{n}")
    event_types = factory.LazyFunction(lambda: ["*"])
    format = "json"

    @classmethod
    def _create(cls, model_class: Any, *, session: Any, **fields: Any) -> tuple[Subscription, str]:
        return subscriptions.create(session, dict(fields), subscriptions.UrlPolicy())
