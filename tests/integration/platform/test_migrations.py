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


def test_0011_projects_published_articles_and_numbers_their_events(databases: DatabaseFactory):
    """Articles published before 0011 are served to partners after it, searchable, and
    their events are in the change feed in the order they happened."""
    from flask_migrate import downgrade

    from cms.content.visibility import EVERYTHING
    from cms.delivery import content
    from cms.publishing import commands as publishing
    from tests.factories import EDITOR, ArticleFactory

    app = make_app(databases.fresh_url())
    with app.app_context():
        upgrade()
        live = ArticleFactory.create(session=db.session, publish=True, section="World")
        gone = ArticleFactory.create(session=db.session, publish=True)
        publishing.kill(db.session, EDITOR, gone.id, reason="Legal")
        ArticleFactory.create(session=db.session)  # a draft: nothing for partners
        db.session.commit()
        downgrade(revision="0010")
        upgrade()
        assert db.session.execute(text("SELECT count(*) FROM published_articles")).scalar() == 2
        assert content.by_id(db.session, EVERYTHING, live.id).version == 1
        killed = db.session.execute(
            text("SELECT state, kill_reason FROM published_articles WHERE state = 'killed'")
        ).one()
        assert tuple(killed) == ("killed", "Legal")
        positions = (
            db.session.execute(text("SELECT feed_position FROM outbox_events ORDER BY occurred_at, id"))
            .scalars()
            .all()
        )
        assert positions == [1, 2, 3]
        assert db.session.execute(text("SELECT position FROM feed_clock")).scalar() == 3
        found, _ = content.page(db.session, EVERYTHING, content.ListQuery(limit=10, q="assassination"))
        assert [r.article_id for r in found] == [live.id]
        db.session.remove()
        db.engine.dispose()
