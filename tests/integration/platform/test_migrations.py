"""Migrations that move data: rows written before them are right after them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask_migrate import upgrade
from sqlalchemy import text

from cms.platform.extensions import db
from tests.dbs import DatabaseFactory
from tests.factories import make_app


def test_filter_keys_are_filled_in_for_existing_articles(databases: DatabaseFactory):
    """0005 adds case-folded section and tag keys and fills them in for what exists."""
    url = databases.fresh_url()
    app = make_app(url)
    article_id = uuid.uuid4()
    with app.app_context():
        upgrade(revision="0004")
        now = datetime(2024, 11, 7, 20, 50, tzinfo=UTC)
        db.session.execute(
            text(
                "INSERT INTO articles (id, slug, state, headline, section, language, current_version,"
                " event_sequence, created_at, updated_at)"
                " VALUES (:id, 'putin', 'draft', 'Putin', 'Политика', 'bg', 1, 0, :now, :now)"
            ),
            {"id": article_id if db.engine.dialect.name == "postgresql" else article_id.hex, "now": now},
        )
        db.session.execute(
            text(
                "INSERT INTO article_tags (article_id, tag, position)"
                " VALUES (:id, 'Русия', 0), (:id, 'USA', 1)"
            ),
            {"id": article_id if db.engine.dialect.name == "postgresql" else article_id.hex},
        )
        db.session.commit()
        upgrade()
        assert db.session.execute(text("SELECT section_key FROM articles")).scalar() == "политика"
        keys = db.session.execute(text("SELECT tag_key FROM article_tags ORDER BY position")).scalars().all()
        assert keys == ["русия", "usa"]
        db.session.remove()
        db.engine.dispose()
