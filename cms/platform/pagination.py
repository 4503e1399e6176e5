"""Keyset cursors: the sort key of the last row returned, as dot-separated tokens.

Cursors keep pages stable while new rows arrive (unlike offsets). Clients treat
them as opaque, but their shape is exact and published (``pattern``, in the
OpenAPI document): a time is microseconds since 1970, an id 32 hex digits, a
number decimal. So any string of that shape is a valid position, and nothing
else is.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from cms.platform.errors import InvalidCursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TOKENS: dict[type, str] = {datetime: "[0-9]{1,16}", uuid.UUID: "[0-9a-f]{32}", int: "[0-9]{1,9}"}


def pattern(*kinds: type) -> str:
    """The regular expression every cursor over keys of ``kinds`` matches."""
    return "^" + r"\.".join(_TOKENS[kind] for kind in kinds) + "$"


def encode(*values: Any) -> str:
    def token(v: Any) -> str:
        if isinstance(v, datetime):
            aware = v if v.tzinfo is not None else v.replace(tzinfo=UTC)  # SQLite: naive UTC
            return str((aware - _EPOCH) // _MICROSECOND)
        if isinstance(v, uuid.UUID):
            return v.hex
        return str(int(v))

    return ".".join(token(v) for v in values)


def decode(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The key a cursor of ``kinds`` (datetime, UUID, int) names."""
    if not re.fullmatch(pattern(*kinds), cursor):
        raise InvalidCursor("The cursor is not one this API returned; start again without it.")
    out: list[Any] = []
    for kind, token in zip(kinds, cursor.split("."), strict=True):
        if kind is datetime:
            out.append(_EPOCH + int(token) * _MICROSECOND)
        elif kind is uuid.UUID:
            out.append(uuid.UUID(hex=token))
        else:
            out.append(int(token))
    return tuple(out)


def newest_first(
    session: Session,
    stmt: Select[Any],
    time_column: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Any], tuple[datetime, uuid.UUID] | None]:
    """One page of ``stmt``'s entities, newest first, keyset-paginated on ``(time, id)``.

    Returns the rows and the key to pass as ``after`` for the next page (None
    on the last page).
    """
    if after is not None:
        stmt = stmt.where(tuple_(time_column, id_column) < tuple_(*after))
    stmt = stmt.order_by(time_column.desc(), id_column.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return rows, None
    last = rows[-1]
    return rows, (getattr(last, time_column.key), getattr(last, id_column.key))


def ascending(
    session: Session, stmt: Select[Any], key: InstrumentedAttribute[Any], *, limit: int, after: Any
) -> tuple[list[Any], Any]:
    """One page of ``stmt``'s entities in ascending ``key`` order after ``after`` (None:
    from the start); returns the rows and the ``after`` of the next page (None: last)."""
    if after is not None:
        stmt = stmt.where(key > after)
    rows = list(session.scalars(stmt.order_by(key).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (getattr(rows[-1], key.key) if more and rows else None)
