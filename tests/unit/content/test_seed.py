"""parse_wire_story: each optional part of a wire story is recognised, or left out, on its own."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cms.content.seed import parse_wire_story

FULL = """Last news in Fakti

The headline

The standfirst.

Nov 7, 2024 22:50 106

A caption  - 1

First paragraph, as quoted by BTA & Reuters.

Second <paragraph>."""


def test_a_full_story() -> None:
    story = parse_wire_story(FULL, image_url="https://img/x.jpg")
    assert story.published_at == datetime(2024, 11, 7, 22, 50, tzinfo=ZoneInfo("Europe/Sofia"))
    assert story.fields == {
        "headline": "The headline",
        "standfirst": "The standfirst.",
        "body": "<p>First paragraph, as quoted by BTA &amp; Reuters.</p>\n<p>Second &lt;paragraph&gt;.</p>",
        "section": "Last news",
        "byline": "Fakti",
        "language": "en",
        "credits": ["BTA", "Reuters"],
        "lead_image": {
            "url": "https://img/x.jpg",
            "caption": "A caption",
            "credit": None,
            "alt_text": "A caption",
        },
        "tags": [],
    }


def test_a_short_story_has_no_section_line_dateline_or_caption() -> None:
    story = parse_wire_story("Headline\n\nStandfirst\n\nBody by AFP.\n\nMore.", timezone="UTC")
    assert story.published_at is None
    assert story.fields["headline"] == "Headline"
    assert story.fields["section"] is None and story.fields["byline"] is None
    assert story.fields["lead_image"] is None
    assert story.fields["credits"] == ["AFP"]
    assert story.fields["body"] == "<p>Body by AFP.</p>\n<p>More.</p>"


def test_a_section_line_without_an_outlet_is_the_section() -> None:
    story = parse_wire_story("World\n\nHeadline\n\nStandfirst\n\nOne\n\nTwo\n\nThree")
    assert (story.fields["section"], story.fields["byline"]) == ("World", None)
    assert story.fields["body"] == "<p>One</p>\n<p>Two</p>\n<p>Three</p>"


def test_a_dateline_without_a_view_count_and_agencies_as_whole_words_only() -> None:
    story = parse_wire_story("Headline\n\nStandfirst\n\nJan 2, 2025 9:05\n\nAPPLE and dpa.", timezone="UTC")
    assert story.published_at == datetime(2025, 1, 2, 9, 5, tzinfo=ZoneInfo("UTC"))
    assert story.fields["credits"] == ["dpa"]


def test_too_short() -> None:
    with pytest.raises(ValueError, match="at least a headline, a standfirst and a body"):
        parse_wire_story("Headline\n\n \n\nStandfirst")
