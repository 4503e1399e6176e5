"""Thin tasks: each runs one step of the delivery pipeline in this process's runtime.

``cms.relay`` (after a publish, and periodically) fans events out and sends;
``cms.deliver`` sends a batch another process claimed; ``cms.sweep``
(periodically) re-sends expired leases and due retries; ``cms.prune-delivery-log``
(hourly) expires old attempt rows; ``cms.run-schedule`` (every second) runs due
scheduled actions. All of them are safe to run twice: the
database decides what is claimable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from celery import Celery, shared_task
from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown
from flask import Flask
from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from cms.feeds import websub
from cms.platform import logs
from cms.platform.broker import (
    DELIVER_TASK,
    PRUNE_TASK,
    RELAY_TASK,
    SCHEDULE_TASK,
    SWEEP_TASK,
    TASK_QUEUES,
    WEBSUB_NOTIFY_TASK,
    WEBSUB_VERIFY_TASK,
)
from cms.platform.extensions import db
from cms.publishing import scheduler
from cms.webhooks import engine as runtime
from cms.webhooks import prune as retention
from cms.webhooks.subscriptions import url_policy

log = logging.getLogger("workers")


_celery: list[Celery] = []  # the app these tasks run in, set by ``bind`` (no import of ``workers``)


_hub: list[Any] = []  # Flask-WebSub's hub: its delivery task is registered on our app


def bind(app: Celery) -> None:
    """Called by ``create_celery``: the tasks send follow-up work through ``app``; the
    WebSub hub registers its own task on it now, so every worker process knows it."""
    _celery[:] = [app]
    from flask_websub.hub import Hub

    hub = Hub(websub.Storage(_scope, lambda: url_policy(_flask().config)), celery=app, **websub.HUB_SETTINGS)
    hub.register_validator(
        lambda callback_url, *_args: websub.callback_refused(callback_url, url_policy(_flask().config))
    )
    _hub[:] = [hub]


def _flask() -> Flask:
    return runtime.get_runtime(_make_app, _send_task).app


_scope = websub.app_scope(_flask)


def _send_task(name: str, *, args: list[Any] | None = None, queue: str | None = None) -> None:
    app = _celery[0]
    queue = queue or TASK_QUEUES[name]
    app.send_task(name, args=args or [], queue=queue, exchange=queue, routing_key=queue, retry=False)


def _make_app() -> Flask:
    from cms.app import create_app

    # Worker transactions are safe to lose (re-sent with the same webhook-id): no WAL flush wait.
    return create_app({"CMS_DB_SYNCHRONOUS_COMMIT": False}, role="worker")


@shared_task(name=RELAY_TASK)
def relay() -> int:
    return runtime.get_runtime(_make_app, _send_task).relay()


@shared_task(name=DELIVER_TASK)
def deliver(delivery_ids: list[str]) -> None:
    runtime.get_runtime(_make_app, _send_task).deliver(delivery_ids)


@shared_task(name=SWEEP_TASK)
def sweep() -> int:
    sent = runtime.get_runtime(_make_app, _send_task).sweep()
    if sent:  # an idle sweep (most of them) writes nothing
        log.info("sweep sent %d due deliveries", sent, extra={"deliveries": sent})
    return sent


@shared_task(name=PRUNE_TASK)
def prune_delivery_log() -> int:
    return retention.prune(runtime.get_runtime(_make_app, _send_task).app)


@shared_task(name=SCHEDULE_TASK)
def run_schedule() -> int:
    """Due scheduled publishes, unpublishes and embargo lifts (each runs once, whoever asks)."""
    app = runtime.get_runtime(_make_app, _send_task).app
    with app.app_context():
        return len(scheduler.run_due(db.session, grace_seconds=scheduler.grace(app.config)))


@shared_task(name=WEBSUB_VERIFY_TASK)
def websub_verify() -> int:
    """Verify the intent of pending WebSub (un)subscriptions."""
    return websub.verify_pending(_scope, _hub[0])


@shared_task(name=WEBSUB_NOTIFY_TASK)
def websub_notify() -> int:
    """Tell WebSub subscribers (or an external hub) which feeds changed."""
    config = _flask().config
    if config["CMS_WEBSUB_HUB"]:
        return websub.ping_external(_scope, config, _post_form)
    return websub.notify(_scope, config, _hub[0])


def _post_form(url: str, form: dict[str, str]) -> None:
    import requests

    requests.post(url, data=form, timeout=5).raise_for_status()


@setup_logging.connect
def _logging(**_kwargs: Any) -> None:
    # Lines like the API's, at CMS_LOG_LEVEL in CMS_LOG_FORMAT (``--loglevel`` is not
    # used); with a receiver connected Celery installs no handlers of its own.
    settings = _celery[0].conf.cms_settings
    logs.configure(settings["CMS_LOG_LEVEL"], settings["CMS_LOG_FORMAT"])


@worker_init.connect
def _metrics_server(**_kwargs: Any) -> None:
    """The worker's main process serves all its processes' metrics (multiprocess mode)."""
    port = _celery[0].conf.cms_settings["CMS_WORKER_METRICS_PORT"]
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not port:
        return
    if not directory:
        log.warning("CMS_WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: no worker metrics")
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):  # left by an earlier run
        stale.unlink()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    log.info("worker metrics on :%d/metrics", port)


@worker_process_init.connect
def _start_runtime(**_kwargs: Any) -> None:
    # Each worker process listens for new events from the start (PostgreSQL),
    # rather than when its first task arrives.
    runtime.get_runtime(_make_app, _send_task)


@worker_process_shutdown.connect
def _close_runtime(**_kwargs: Any) -> None:
    runtime.shutdown()
