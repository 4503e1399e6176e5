"""Nudging the workers after a commit, without importing them.

The outbox row is the record of an event; this message only wakes a relay
sooner than its next periodic run. So a failed nudge (broker down) is logged
and forgotten, and for a few seconds no further nudge is tried, so requests
do not each wait on a dead broker. Task and queue names are shared with
``workers`` from here (``cms`` never imports ``workers``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

RELAY_TASK = "cms.relay"
SWEEP_TASK = "cms.sweep"
DELIVER_TASK = "cms.deliver"
PRUNE_TASK = "cms.prune-delivery-log"
SCHEDULE_TASK = "cms.run-schedule"
WEBSUB_VERIFY_TASK = "cms.websub-verify"
WEBSUB_NOTIFY_TASK = "cms.websub-notify"

EVENTS_QUEUE = "cms.events"  # relay and sweep
DELIVERIES_QUEUE = "cms.deliveries"  # first attempts
RETRIES_QUEUE = "cms.retries"  # retries and re-sends: never ahead of first attempts
QUEUES = (EVENTS_QUEUE, DELIVERIES_QUEUE, RETRIES_QUEUE)
TASK_QUEUES = {
    RELAY_TASK: EVENTS_QUEUE,
    SWEEP_TASK: EVENTS_QUEUE,
    SCHEDULE_TASK: EVENTS_QUEUE,  # short, and due to the second
    WEBSUB_VERIFY_TASK: RETRIES_QUEUE,  # calls subscribers' callbacks: never ahead of webhooks
    WEBSUB_NOTIFY_TASK: RETRIES_QUEUE,
    DELIVER_TASK: DELIVERIES_QUEUE,
    PRUNE_TASK: RETRIES_QUEUE,  # housekeeping: behind anything a partner waits for
}


def celery_broker(url: str) -> tuple[str, str | None]:
    """``(broker_url, broker_transport)`` for Celery from ``CMS_BROKER_URL``.

    ``sqla+sqlite:///…`` selects the embedded broker (``cms.platform.broker_sqlite``).
    """
    if url.startswith("sqla+sqlite://"):
        return url.removeprefix("sqla+"), "cms.platform.broker_sqlite:Transport"
    return url, None


def transport_options(prefix: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        # Longer than any task may run (task_time_limit), so a running task is
        # never handed to a second worker.
        "visibility_timeout": 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    if prefix:
        options["global_keyprefix"] = prefix
    return options


def broker_settings(url: str, prefix: str) -> dict[str, Any]:
    """Celery settings for the broker named by ``CMS_BROKER_URL``."""
    broker_url, transport = celery_broker(url)
    if transport is not None:  # the embedded broker: kombu takes engine options only
        return {"broker_url": broker_url, "broker_transport": transport}
    return {"broker_url": broker_url, "broker_transport_options": transport_options(prefix)}


class Nudger:
    """Sends "relay now" / "sweep now" messages to the workers' broker."""

    BACKOFF_SECONDS = 5.0

    def __init__(self, broker_url: str, prefix: str = "") -> None:
        self.broker_url = broker_url
        self.prefix = prefix
        self._client: Any = None
        self._lock = threading.Lock()
        self._quiet_until = 0.0

    def _celery(self) -> Any:
        if self._client is None:
            from celery import Celery

            client = Celery("cms-api", set_as_current=False)
            client.conf.update(
                **broker_settings(self.broker_url, self.prefix),
                broker_connection_timeout=2,
                task_routes={
                    name: {"queue": queue, "exchange": queue, "routing_key": queue}
                    for name, queue in TASK_QUEUES.items()
                },
            )
            self._client = client
        return self._client

    def nudge(self, task: str) -> bool:
        """Queue ``task``; False (and a log line) if the broker is unreachable."""
        if not self.broker_url or time.monotonic() < self._quiet_until:
            return False
        try:
            with self._lock:
                celery = self._celery()
            queue = TASK_QUEUES[task]
            celery.send_task(
                task, queue=queue, exchange=queue, routing_key=queue, retry=False, ignore_result=True
            )
            return True
        except Exception as exc:
            self._quiet_until = time.monotonic() + self.BACKOFF_SECONDS
            log.warning("could not nudge %s (%s); the periodic run will pick the work up", task, exc)
            return False
