"""Structured logs: one JSON object per line (python-json-logger), with the request id
on every API line and the event and delivery ids on the worker lines that concern them.

Each process configures logging once, through ``logging.config.dictConfig``
(``configure``; gunicorn applies the same dictionary from ``cms.gunicorn_conf``):
one stderr handler on the root logger, which every logger (ours, Flask's,
Celery's, gunicorn's) reaches. Ids travel in context variables and a filter on
that handler copies them onto each record, so any ``logging`` call inside a
request (or a delivery's processing) carries them without being passed along.

Nothing logs secrets: API keys and signing secrets never reach a log call, and
subscription URLs are logged without their query string.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.config
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

# orjson serialises a line in a fraction of the stdlib's time (the access line is per request).
from pythonjsonlogger.orjson import OrjsonFormatter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
delivery_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("delivery_id", default=None)
_CONTEXT = (("request_id", request_id), ("event_id", event_id), ("delivery_id", delivery_id))
HANDLER_NAME = "cms"

# Loggers that write a line for every periodic run, idle or not (beat's "Sending due
# task", the worker's "Task ... received" and "... succeeded"), or one per plugin
# whenever a process loads alembic: warnings only, unless the level is DEBUG. Our
# own tasks log a line when they did some work.
CHATTY_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace", "alembic.runtime.plugins")


class ContextFilter(logging.Filter):
    """Copies the ids of the current request or delivery onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT:
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """``CMS_LOG_FORMAT=text``: one readable line, with the ids of the request or delivery."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name}={value}" for name, _ in _CONTEXT if (value := getattr(record, name, None)))
        line = super().formatMessage(record)
        return f"{line} [{ids}]" if ids else line


def dict_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The whole logging set-up, for ``logging.config.dictConfig`` (gunicorn's ``logconfig_dict``)."""
    if fmt not in ("json", "text"):
        raise ValueError(f"CMS_LOG_FORMAT must be 'json' or 'text', not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"CMS_LOG_LEVEL: unknown level {level!r}")
    chatty = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {
                "()": OrjsonFormatter,
                "fmt": "{levelname}{name}{message}",
                "style": "{",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",  # ISO 8601, UTC; non-ASCII stays UTF-8
            },
            "text": {"()": TextFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            HANDLER_NAME: {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": fmt,
                "filters": ["context"],
            }
        },
        "root": {"level": numeric, "handlers": [HANDLER_NAME]},
        "loggers": {
            # gunicorn gives its loggers handlers of their own and stops propagation:
            # its lines go through ours instead (it has no access log: we write it).
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": False},
            **{name: {"level": chatty} for name in CHATTY_LOGGERS},
        },
    }


_configuring = threading.Lock()


def configured() -> bool:
    """Whether this process's logging is set up (our handler is on the root logger)."""
    return any(handler.name == HANDLER_NAME for handler in logging.root.handlers)


def configure(level: str = "INFO", fmt: str = "json") -> bool:
    """Set up this process's logging, once: later calls change nothing.

    Returns whether this call did it. Called by each entry point (``create_app``,
    Celery's ``setup_logging`` signal); a gunicorn worker finds it done by gunicorn.
    """
    with _configuring:
        if configured():
            return False
        logging.config.dictConfig(dict_config(level, fmt))
        return True


_access = logging.getLogger("cms.access")


def access(method: str, path: str, route: str, status: int, duration_ms: float) -> None:
    """The request's access-log line (logger ``cms.access``, level INFO)."""
    if _access.isEnabledFor(logging.INFO):
        fields = {"method": method, "path": path, "route": route, "status": status}
        _access.info("%s %s %d", method, path, status, extra={**fields, "duration_ms": duration_ms})


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
