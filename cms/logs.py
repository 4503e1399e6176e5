"""Structured logs: one JSON object per line, with the request id on every API line
and the event and delivery ids on the worker lines that concern them.

Ids travel in context variables, so any ``logging`` call inside a request (or a
delivery's processing) carries them without being passed along. Nothing logs
secrets: API keys and signing secrets never reach a log call, and subscription
URLs are logged without their query string.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
delivery_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("delivery_id", default=None)
_CONTEXT = (("request_id", request_id), ("event_id", event_id), ("delivery_id", delivery_id))
HANDLER_NAME = "cms"


class ContextFilter(logging.Filter):
    """Copies the ids of the current request or delivery onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT:
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, Flask, Celery, gunicorn's) to one stderr handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Lines carry no source location, thread or process names: skip computing them
    # (the caller's frame lookup alone is a noticeable part of a line's cost).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.getLogger("cms").setLevel(level.upper())


@contextlib.contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Attach ids (``event_id``, ``delivery_id``, ``request_id``) to the log lines inside."""
    tokens = []
    for name, var in _CONTEXT:
        if name in ids:
            tokens.append((var, var.set(ids[name])))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def safe_url(url: str) -> str:
    """A URL as it may be logged: without credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "<invalid url>"


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call, leaving out empty values."""
    return {k: v for k, v in values.items() if v is not None}
