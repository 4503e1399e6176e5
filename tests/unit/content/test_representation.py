"""The article representation is defined once (cms.content.representation); everything
that shows an article is derived from it or checked against it here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from cms.authoring.api import render
from cms.content import formats, representation
from cms.content.formats import ninjs, ninjs3
from cms.content.formats.facts import EventFacts
from cms.content.reads import ArticleView
from cms.content.schemas import ArticleCreateSchema, ArticleSchema, ArticleSummarySchema, ArticleUpdateSchema

NAMES = [f.name for f in representation.FIELDS]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CONTENT = {
    "headline": "Bulgaria adopts the euro",
    "standfirst": "Sofia joins the euro area.",
    "body": "<p>Text.</p>",
    "byline": "BTA",
    "dateline": "SOFIA",
    "section": "Economy",
    "tags": ["euro"],
    "language": "en",
    "slug": "bulgaria-adopts-the-euro",
    "lead_image": {"url": "https://img.example.org/a.jpg", "caption": "c", "credit": "AFP", "alt_text": "a"},
    "credits": ["BTA", "Reuters", "AFP"],
    "editor_note": "Embargoed photo.",
    "internal_note": "Source is the ministry; do not name.",
}


def view() -> ArticleView:
    return ArticleView(
        id=uuid.uuid4(),
        state="published",
        version=3,
        published_version=3,
        kill_reason=None,
        created_at=NOW,
        updated_at=NOW,
        first_published_at=NOW,
        published_at=NOW,
        embargo_until=None,
        updated_by="desk",
        content=dict(CONTENT),
    )


def test_the_output_schemas_are_the_representation_in_its_order():
    assert list(ArticleSchema().fields) == NAMES
    summary = [f.name for f in representation.SUMMARY]
    assert list(ArticleSummarySchema().fields) == summary
    for f in representation.FIELDS:
        field = ArticleSchema().fields[f.name]
        assert field.required and field.allow_none == f.nullable, f.name


def test_the_input_schemas_accept_exactly_the_content_fields():
    for schema in (ArticleCreateSchema(), ArticleUpdateSchema()):
        editable = [name for name, field in schema.fields.items() if not field.load_only]
        assert editable == list(representation.CONTENT_NAMES)


def test_the_read_model_carries_every_head_field():
    head = [f.name for f in representation.HEAD + representation.TRAILER]
    assert list(view().head()) == head


def test_the_fast_renderer_equals_the_schema_and_keeps_the_order():
    item = view()
    body = json.loads(render(item))
    assert list(body) == NAMES
    assert body == ArticleSchema().dump(item.as_dict())


def facts(article: dict) -> EventFacts:
    return EventFacts(
        id=uuid.uuid4(),
        type="article.published",
        occurred_at=NOW,
        sequence=1,
        version=3,
        article_id=article["id"],
        article=article,
    )


def test_the_json_payload_shows_partners_the_representation():
    item = view()
    article = {**item.content_dict(), **item.head()}
    data = json.loads(formats.render(facts(article), "json"))["data"]
    partner = [f.name for f in representation.FIELDS if f.partners or f not in representation.CONTENT]
    assert list(data["article"]) == partner
    assert data["article"] == {k: v for k, v in json.loads(render(item)).items() if k in partner}


def test_a_newsroom_only_field_is_never_in_a_partner_payload():
    """``internal_note`` is the newsroom's: editors see it, no webhook format carries it."""
    item = view()
    assert json.loads(render(item))["internal_note"] == CONTENT["internal_note"]
    article = {**item.content_dict(), **item.head()}
    for fmt in formats.FORMATS:
        body = formats.render(facts(article), fmt).decode()
        assert "internal_note" not in body and CONTENT["internal_note"] not in body, fmt


def test_ninjs_maps_every_partner_field():
    assert set(ninjs.FIELD_MAP) == set(representation.PARTNER_CONTENT)
    item = view()
    article = {**item.content_dict(), **item.head()}
    news = json.loads(formats.render(facts(article), "ninjs"))["data"]
    assert set(ninjs.FIELD_MAP.values()) <= set(news)  # every mapped field present when set
    news3 = json.loads(formats.render(facts(article), "ninjs3"))["data"]
    assert set(ninjs3.FIELD_MAP) == set(representation.PARTNER_CONTENT)
    assert set(ninjs3.FIELD_MAP.values()) <= set(news3)
