"""Editorial state machine: publish, update, correct, unpublish, kill.

    draft ──publish──▶ published ──unpublish──▶ unpublished ──publish──▶ published
                          │  ▲                      │
                          │  └─publish newer version (update / correction)
                          └──────────kill───────────┴──▶ killed (admin may republish)

Each change locks the article row, changes its state and records exactly one
outbox event in the same transaction. It also loads the latest version, which
the caller's answer shows: read inside the transaction (the session keeps it),
it costs one statement instead of another transaction after the commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from cms.authoring import articles
from cms.content import published
from cms.content.models import Article, ArticleState, ArticleVersion
from cms.events.models import OutboxEvent
from cms.events.outbox import EventType, record
from cms.platform.actors import Actor, Role
from cms.platform.clock import utcnow
from cms.platform.errors import InvalidTransition, NotFound, Unprocessable
from cms.platform.text import trim
from cms.platform.uow import command
from cms.publishing import embargo
from cms.publishing.models import EmbargoEnd


class Transition(NamedTuple):
    """What a transition changed: the article, its latest version (what an answer
    shows) and the event it recorded."""

    article: Article
    event: OutboxEvent
    latest: ArticleVersion


@command
def publish(
    session: Session,
    actor: Actor,
    article_id: uuid.UUID,
    *,
    version: int | None = None,
    correction_note: str | None = None,
    embargo_until: datetime | None = None,
) -> Transition:
    """Publish ``version`` (default: latest), under embargo until ``embargo_until`` if given.

    First publication and republication emit ``article.published``; a newer
    version of a live article emits ``article.updated``, or
    ``article.corrected`` when a ``correction_note`` is given. An embargo goes
    with a publication that is not live yet; an update of an article under
    embargo stays under it.
    """
    now = utcnow()
    if embargo_until is not None:
        embargo.check_until(embargo_until, now)
    article, latest = articles.lock_with_latest(session, article_id)
    number = _version_to_publish(article, article_id, version)
    event_type, data = _publication(actor, article, number, correction_note)
    until = _embargo_until(article, embargo_until)
    article.state = ArticleState.PUBLISHED
    article.published_version = number
    article.published_at = now
    article.first_published_at = article.first_published_at or now
    article.kill_reason = None
    article.updated_at = now
    event = record(
        session, article, event_type, version=number, actor=actor.label, data=data, embargo_until=until
    )
    if embargo_until is not None:
        embargo.start(session, actor, article, event, embargo_until)
    shown = latest if latest.number == number else session.get(ArticleVersion, (article.id, number))
    assert shown is not None
    published.record_publication(
        session, article, shown.data, event=event, updated_by=shown.created_by, embargo_until=until
    )
    return Transition(article, event, latest)


def _embargo_until(article: Article, asked: datetime | None) -> datetime | None:
    """The embargo the publication is under: the one asked for (only when the article is
    not live), or the one in force on a live article (an update stays under it)."""
    if article.state != ArticleState.PUBLISHED:
        return asked
    if asked is not None:
        raise InvalidTransition(
            "The article is live already: an embargo goes with a publication that is not; "
            "move an embargo in force with PUT /api/v1/articles/{id}/embargo.",
            state=article.state,
        )
    return article.embargo_until


def _version_to_publish(article: Article, article_id: uuid.UUID, version: int | None) -> int:
    """The named version, or the latest; it must exist."""
    number = article.current_version if version is None else version
    if not 1 <= number <= article.current_version:
        raise NotFound(f"Article {article_id} has no version {number}.", version=number)
    return number


def _publication(
    actor: Actor, article: Article, number: int, correction_note: str | None
) -> tuple[EventType, dict[str, object]]:
    """The event publishing ``number`` records, and its data; raises what the state refuses."""
    state = ArticleState(article.state)
    if state == ArticleState.KILLED and not actor.can(Role.ADMIN):
        raise InvalidTransition("A killed article can only be republished by an admin.", state=state)
    if state == ArticleState.PUBLISHED:
        event_type, data = _newer_version(article, state, number, correction_note)
    else:
        event_type, data = _going_live(article, correction_note)
    if correction_note:
        data["correction_note"] = correction_note
    return event_type, data


def _newer_version(
    article: Article, state: ArticleState, number: int, correction_note: str | None
) -> tuple[EventType, dict[str, object]]:
    """A live article only moves forward: an update, or a correction when a note says so."""
    assert article.published_version is not None
    if number == article.published_version:
        raise InvalidTransition(f"Version {number} is already published.", state=state)
    if number < article.published_version:
        raise InvalidTransition(
            f"Version {number} is older than the published version {article.published_version}; "
            "restore it as a new version and publish that.",
            state=state,
        )
    event_type = EventType.CORRECTED if correction_note else EventType.UPDATED
    return event_type, {"previous_version": article.published_version}


def _going_live(article: Article, correction_note: str | None) -> tuple[EventType, dict[str, object]]:
    """First publication or republication; a correction needs something published before."""
    if correction_note and article.first_published_at is None:
        # The article's state refuses it (as an illegal transition does): 409, not 422.
        raise InvalidTransition(
            "A correction note applies only to an article that has been published before.",
            state=article.state,
        )
    return EventType.PUBLISHED, {}


@command
def unpublish(
    session: Session, actor: Actor, article_id: uuid.UUID, *, reason: str | None = None
) -> Transition:
    """Withdraw a published article; it can be published again later."""
    article, latest = articles.lock_with_latest(session, article_id)
    if article.state != ArticleState.PUBLISHED:
        raise InvalidTransition(
            f"Only a published article can be unpublished; this one is {article.state}.",
            state=article.state,
        )
    event = _withdraw(session, actor, article, ArticleState.UNPUBLISHED, EventType.UNPUBLISHED, reason)
    return Transition(article, event, latest)


@command
def kill(session: Session, actor: Actor, article_id: uuid.UUID, *, reason: str) -> Transition:
    """Withdraw for legal or ethical reasons: terminal except for an admin."""
    if not reason or not trim(reason):
        raise Unprocessable("Killing an article requires a reason.", field="reason")
    article, latest = articles.lock_with_latest(session, article_id)
    if article.state == ArticleState.KILLED:
        raise InvalidTransition("The article is already killed.", state=article.state)
    if article.first_published_at is None:
        raise InvalidTransition(
            "A draft that was never published cannot be killed; there is nothing to withdraw.",
            state=article.state,
        )
    article.kill_reason = trim(reason)
    event = _withdraw(session, actor, article, ArticleState.KILLED, EventType.KILLED, trim(reason))
    return Transition(article, event, latest)


def _withdraw(
    session: Session,
    actor: Actor,
    article: Article,
    state: ArticleState,
    event_type: EventType,
    reason: str | None,
) -> OutboxEvent:
    # ``published_version`` is kept: it names the version partners last received,
    # which is what the withdrawal event refers to.
    withdrawn = article.published_version or article.current_version
    # Withdrawn under embargo: the event reaches only those who got the story early.
    in_force = embargo.current(session, article.id) if article.state == ArticleState.PUBLISHED else None
    article.state = state
    article.updated_at = utcnow()
    # The slug partners know: the published version's, not a later draft's.
    data = {"slug": published.slug_of(session, article), "reason": reason}
    until = in_force.until if in_force is not None else None
    event = record(
        session, article, event_type, version=withdrawn, actor=actor.label, data=data, embargo_until=until
    )
    if in_force is not None:
        embargo.end(session, actor, in_force, EmbargoEnd.WITHDRAWN, event)
    published.record_withdrawal(session, article, event=event)
    return event
