"""The one place the domain reads the time, so tests can control it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (or the test clock when one is set)."""
    return _source() if _source is not None else datetime.now(UTC)


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Install a time source (tests); ``None`` restores the system clock."""
    global _source
    _source = source
