"""Thin tasks: each runs one step of the delivery pipeline in this process's runtime.

``cms.relay`` (after a publish, and periodically) fans events out and sends;
``cms.deliver`` sends a batch another process claimed; ``cms.sweep``
(periodically) re-sends expired leases and due retries. All of them are safe
to run twice: the database decides what is claimable.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from cms.broker import DELIVER_TASK, RELAY_TASK, SWEEP_TASK, TASK_QUEUES
from workers import runtime

log = logging.getLogger("workers")


def _send_task(name: str, *, args: list[Any] | None = None, queue: str | None = None) -> None:
    from workers import app

    queue = queue or TASK_QUEUES[name]
    app.send_task(name, args=args or [], queue=queue, exchange=queue, routing_key=queue, retry=False)


@shared_task(name=RELAY_TASK)
def relay() -> int:
    return runtime.get_runtime(_send_task).relay()


@shared_task(name=DELIVER_TASK)
def deliver(delivery_ids: list[str]) -> None:
    runtime.get_runtime(_send_task).deliver(delivery_ids)


@shared_task(name=SWEEP_TASK)
def sweep() -> int:
    return runtime.get_runtime(_send_task).sweep()


@worker_process_init.connect
def _start_runtime(**_kwargs: Any) -> None:
    # Each worker process listens for new events from the start (PostgreSQL),
    # rather than when its first task arrives.
    runtime.get_runtime(_send_task)


@worker_process_shutdown.connect
def _close_runtime(**_kwargs: Any) -> None:
    runtime.shutdown()
