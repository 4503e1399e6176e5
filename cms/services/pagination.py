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
