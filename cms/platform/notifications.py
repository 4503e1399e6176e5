"""PostgreSQL LISTEN, for threads that must hear of commits at once (the worker's relay,
the API's content cache). Run ``listen`` under ``cms.platform.supervision.supervise``:
a lost connection raises, and the supervisor connects again after a backoff."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url


def listen(
    url: str,
    channel: str,
    *,
    application_name: str,
    connected: Callable[[], None],
    notified: Callable[[], None],
    stopping: threading.Event,
) -> None:
    """LISTEN on ``channel`` until ``stopping``: ``connected()`` once listening (catch up on
    what committed before), ``notified()`` for each batch of notifications."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, application_name=application_name) as conn:
        conn.execute(f"LISTEN {channel}")
        connected()
        while not stopping.is_set():
            for _notify in conn.notifies(timeout=1.0):
                notified()
