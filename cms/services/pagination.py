"""Opaque keyset cursors: base64url of a small JSON list.

Cursors carry the sort key of the last row returned, so pages stay stable
while new rows arrive (unlike offsets).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from cms.services.errors import InvalidCursor


def encode(*values: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, uuid.UUID):
            return str(v)
        return v

    raw = json.dumps([plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Decode a cursor made by ``encode`` with values of ``kinds`` (datetime, UUID, int)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive datetime")
                out.append(parsed.astimezone(UTC))
            elif kind is uuid.UUID:
                out.append(uuid.UUID(value))
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
                    raise ValueError("bad integer")
                out.append(value)
            else:  # pragma: no cover - programming error
                raise TypeError(kind)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
        raise InvalidCursor("The cursor is not one this API returned; start again without it.") from exc
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
