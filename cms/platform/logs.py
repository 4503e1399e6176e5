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
import enum
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

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


# Attributes every LogRecord has; anything else on a record came from ``extra=``
# or a filter and is written as a field of its own.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


_encode = json.JSONEncoder(default=_json_default, ensure_ascii=False).encode
_quote = json.encoder.encode_basestring  # a str as a JSON string, non-ASCII kept (as _encode does)


class JsonLines(logging.Formatter):
    """One JSON object per record: level, logger, message, the extra fields, time.

    Written for the access log's cost (one line per request): a third of what a
    general-purpose JSON formatter took per line.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                line[key] = value
        line["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()  # ISO 8601, UTC
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return _encode(line)


_access = logging.getLogger("cms.access")
_cms = logging.getLogger("cms")  # looked up once: getLogger takes logging's module lock


def _json_handler_alone() -> logging.Handler | None:
    """Our JSON handler when it is the only place an access line would go."""
    handlers = logging.root.handlers
    if len(handlers) != 1 or _access.handlers or _cms.handlers or not _access.propagate:
        return None
    handler = handlers[0]
    if handler.name != HANDLER_NAME or type(handler.formatter) is not JsonLines or len(handler.filters) != 1:
        return None
    return handler if handler.level <= logging.INFO else None


def access(method: str, path: str, route: str, status: int, duration_ms: float) -> None:
    """The request's access-log line (logger ``cms.access``, level INFO).

    With our JSON handler alone on the root logger (the normal case) the line
    is written straight to its stream, exactly as ``JsonLines`` would format it:
    a LogRecord and the handler chain cost ~125k instructions per line, a third
    of a whole bare Flask request. Any other set-up goes through ``logging``.
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    message = f"{method} {path} {status}"
    handler = _json_handler_alone()
    if handler is None:
        fields = {"method": method, "path": path, "route": route, "status": status}
        _access.info(message, extra={**fields, "duration_ms": duration_ms})
        return
    # The line is assembled as text in JsonLines' field order: json's own string
    # encoder (C) quotes each value; numbers are written as json writes them.
    ids = "".join(
        f', "{name}": {_quote(value)}' for name, var in _CONTEXT if (value := var.get()) is not None
    )
    text = (
        f'{{"level": "INFO", "logger": "cms.access", "message": {_quote(message)}, '
        f'"method": {_quote(method)}, "path": {_quote(path)}, "route": {_quote(route)}, '
        f'"status": {int(status)}, "duration_ms": {float(duration_ms)!r}{ids}, '
        f'"time": "{datetime.now(UTC).isoformat()}"}}\n'
    )
    stream = handler.stream  # type: ignore[attr-defined]
    handler.acquire()
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stderr must not fail the request
        pass
    finally:
        handler.release()


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, Flask, Celery, gunicorn's) to one stderr handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # No patching of logging's module globals (logProcesses and the like): other
    # formatters, gunicorn's "%(process)d" among them, depend on those attributes.
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
