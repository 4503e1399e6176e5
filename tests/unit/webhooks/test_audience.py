"""Who an event goes to: fanout.matching and an endpoint's type and content filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cms.content.formats import EventFacts
from cms.content.visibility import ContentFilter
from cms.webhooks.endpoints import Endpoint
from cms.webhooks.fanout import matching


def endpoint(
    event_types: tuple[str, ...] = ("*",),
    sections: frozenset[str] = frozenset(),
    tags: frozenset[str] = frozenset(),
    languages: tuple[str, ...] = (),
) -> Endpoint:
    return Endpoint(
        id=uuid.uuid4(),
        url="https://partner.example/hook",
        format="json",
        enabled=True,
        max_in_flight=4,
        headers=(),
        event_types=event_types,
        content=ContentFilter.of(sections, tags, languages),
        key=b"k",
        previous_key=None,
        previous_until=None,
    )


def facts(type_: str, article: dict | None = None, subscription_id: uuid.UUID | None = None) -> EventFacts:
    return EventFacts(
        id=uuid.uuid4(),
        type=type_,
        occurred_at=datetime(2024, 11, 7, tzinfo=UTC),
        article_id=uuid.uuid4() if article is not None else None,
        subscription_id=subscription_id,
        article=article,
    )


def test_a_ping_goes_to_its_subscription_only_whatever_its_filters() -> None:
    pinged, other = endpoint(event_types=("article.killed",)), endpoint()
    assert matching(facts("webhook.ping", subscription_id=pinged.id), [pinged, other]) == [pinged]


def test_subscription_events_go_to_those_who_asked_by_name_but_not_the_one_concerned() -> None:
    everything, by_name, by_prefix, concerned = (
        endpoint(),
        endpoint(event_types=("subscription.disabled",)),
        endpoint(event_types=("subscription.*",)),
        endpoint(event_types=("subscription.*",)),
    )
    event = facts("subscription.disabled", subscription_id=concerned.id)
    assert matching(event, [everything, by_name, by_prefix, concerned]) == [by_name, by_prefix]


def test_article_events_go_where_type_and_content_filters_both_take_them() -> None:
    article = {"section": "Politics", "tags": ["USA"], "language": "en-GB"}
    wanted = [endpoint(), endpoint(event_types=("article.*",), sections=frozenset({"politics"}))]
    unwanted = [endpoint(event_types=("article.killed",)), endpoint(sections=frozenset({"sport"}))]
    assert matching(facts("article.published", article), [*wanted, *unwanted]) == wanted


def test_content_filters() -> None:
    article = {"section": "Politics", "tags": ["Русия", "USA"], "language": "en-GB"}
    assert endpoint().wants_content(article)
    assert endpoint().wants_content({})  # no filter: even an article with no section, tags or language
    assert endpoint(tags=frozenset({"русия"})).wants_content(article)
    assert not endpoint(tags=frozenset({"sport"})).wants_content(article)
    assert not endpoint(tags=frozenset({"usa"})).wants_content({"tags": None})
    assert endpoint(languages=("en",)).wants_content(article)  # "en" selects "en-GB"
    assert endpoint(languages=("de", "en-gb")).wants_content(article)
    assert not endpoint(languages=("e",)).wants_content(article)  # a prefix only up to a "-"
    assert not endpoint(languages=("en",)).wants_content({"language": None})
    assert not endpoint(sections=frozenset({"politics"}), languages=("fr",)).wants_content(article)


def test_a_partners_subscription_takes_only_what_the_partner_may_see() -> None:
    """Its own filter and the partner's both apply: the narrower wins."""
    import dataclasses

    base = endpoint(sections=frozenset({"politics", "world"}))
    partner_sub = dataclasses.replace(
        base, partner_content=ContentFilter.of(sections=["World"], languages=["bg"])
    )
    assert partner_sub.wants_content({"section": "world", "language": "bg"})
    assert not partner_sub.wants_content({"section": "politics", "language": "bg"})  # the partner's section
    assert not partner_sub.wants_content({"section": "world", "language": "en"})  # the partner's language
    assert base.wants_content({"section": "politics", "language": "en"})
    # An open subscription of a filtered partner is still filtered.
    open_sub = dataclasses.replace(endpoint(), partner_content=ContentFilter.of(tags=["Russia"]))
    assert open_sub.wants_content({"tags": ["RUSSIA"]}) and not open_sub.wants_content({"tags": ["USA"]})
