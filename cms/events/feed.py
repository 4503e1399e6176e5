"""Change-feed positions and cursors.

**Positions in commit order.** Every article event gets a ``feed_position`` as the
last step of the transaction that records it (``uow.before_commit``): the feed
clock's one row is bumped and stays locked until that transaction commits. The
next transaction to take a position waits for the commit, so positions become
visible in increasing order and a reader that has seen position *n* can never
later find a committed change below *n*: nothing is skipped, whatever order
transactions started or wrote in. (On SQLite writers are serialised anyway.)
The cost is that committing publishing transactions queue for one row between
their last statement and their commit, a few milliseconds each.

**Cursors are the partner's.** A cursor names where a partner is in the feed and
carries an HMAC made with that partner's own secret, so a cursor that was
edited, invented or issued to another partner does not verify (400), and none
reveals anything another partner could use.

- ``L<position>``: the log, after ``position``;
- ``S<snapshot>.<article id>``: the initial sync, after that article, with the
  log to continue after ``snapshot`` (the clock when the sync began).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cms.events.models import FeedClock, OutboxEvent
from cms.platform import uow
from cms.platform.errors import InvalidCursor

_BUMP = text("UPDATE feed_clock SET position = position + :n WHERE id = 1 RETURNING position")


def _allocate(session: Session, events: list[Any]) -> None:
    """``uow.before_commit`` hook: positions for this transaction's article events."""
    fresh = [e for e in events if e.feed_position is None]
    if not fresh:
        return
    session.flush()
    last = int(session.execute(_BUMP, {"n": len(fresh)}).scalar_one())
    for offset, event in enumerate(fresh, start=last - len(fresh) + 1):
        event.feed_position = offset


def enlist(session: Session, event: OutboxEvent) -> None:
    """Give ``event`` its feed position when its unit of work commits."""
    uow.before_commit(session, _allocate, event)


def head(session: Session) -> int:
    """The last position handed out (every change up to it is committed)."""
    return int(session.scalar(select(FeedClock.position).where(FeedClock.id == 1)) or 0)


# ---------------------------------------------------------------- cursors


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a partner is: in the log after ``position``, or (``syncing``) in the
    initial sync after ``after_article`` with the log to follow from ``position``."""

    position: int
    syncing: bool = False
    after_article: uuid.UUID | None = None


_MAC_CHARS = 22  # 132 bits of HMAC-SHA256, URL-safe base64
_SHAPE = re.compile(r"^(L[0-9]{1,19}|S[0-9]{1,19}\.[0-9a-f]{32})\.[A-Za-z0-9_-]{22}$")
PATTERN = _SHAPE.pattern


def _mac(key: bytes, body: str) -> str:
    digest = hmac.digest(key, body.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]


def encode(key: bytes, cursor: Cursor) -> str:
    if cursor.syncing:
        assert cursor.after_article is not None
        body = f"S{cursor.position}.{cursor.after_article.hex}"
    else:
        body = f"L{cursor.position}"
    return f"{body}.{_mac(key, body)}"


def log_cursor(key: bytes, position: int) -> str:
    """The cursor to resume the log after ``position`` (what each webhook carries)."""
    return encode(key, Cursor(position))


def decode(key: bytes, raw: str) -> Cursor:
    """The cursor ``raw`` names; InvalidCursor (400) unless this partner was given it."""
    if not _SHAPE.match(raw):
        raise InvalidCursor("The cursor is malformed; use one this API or a webhook gave you.")
    body, _, mac = raw.rpartition(".")
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise InvalidCursor(
            "The cursor was not issued to this partner; use one this API or a webhook gave you."
        )
    if body[0] == "L":
        return Cursor(int(body[1:]))
    position, _, article = body[1:].partition(".")
    return Cursor(int(position), syncing=True, after_article=uuid.UUID(hex=article))
