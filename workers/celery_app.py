"""The Celery application, configured from ``CMS_*`` settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from cms.config import load_config
from cms.platform.broker import (
    PRUNE_TASK,
    QUEUES,
    RELAY_TASK,
    SCHEDULE_TASK,
    SWEEP_TASK,
    TASK_QUEUES,
    WEBSUB_NOTIFY_TASK,
    WEBSUB_VERIFY_TASK,
    broker_settings,
)


def create_celery(config: Mapping[str, Any] | None = None) -> Celery:
    settings = load_config(config)
    app = Celery("cms", set_as_current=False)
    relay_every = float(settings["CMS_RELAY_INTERVAL"])
    sweep_every = float(settings["CMS_SWEEP_INTERVAL"])
    schedule_every = float(settings["CMS_SCHEDULE_INTERVAL"])
    var = Path(settings["CMS_VAR_DIR"]).resolve()
    app.conf.update(
        **broker_settings(
            settings["CMS_BROKER_URL"] or "redis://127.0.0.1:6379/0", settings["CMS_BROKER_PREFIX"]
        ),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker outage is waited out, never fatal
        # At least once: a message is acknowledged only after its task ran, and
        # given back if the worker process dies; one message per process at a time.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Below the broker's visibility timeout (3600 s), so no running task is re-sent.
        task_time_limit=300,
        task_soft_time_limit=240,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUES[0],
        # One direct exchange per queue: a message lands in exactly one queue.
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_routes={
            name: {"queue": queue, "exchange": queue, "routing_key": queue}
            for name, queue in TASK_QUEUES.items()
        },
        task_default_exchange=QUEUES[0],
        task_default_routing_key=QUEUES[0],
        worker_hijack_root_logger=False,
        # A task whose message cannot be acknowledged (broker lost) is stopped; its
        # work is in the database and the sweep redoes it.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=False,
        beat_schedule={
            # Periodic runs are the safety net behind the API's nudges; stale
            # ones are dropped rather than piling up while workers are down.
            "relay-outbox": {
                "task": RELAY_TASK,
                "schedule": relay_every,
                "options": {"expires": max(relay_every * 5, 10)},
            },
            "sweep-deliveries": {
                "task": SWEEP_TASK,
                "schedule": sweep_every,
                "options": {"expires": max(sweep_every * 5, 10)},
            },
            # Scheduled publishes and embargo lifts: the database holds them, this
            # only asks for what is due (any number of beats or workers: each runs once).
            "run-schedule": {
                "task": SCHEDULE_TASK,
                "schedule": schedule_every,
                "options": {"expires": max(schedule_every * 5, 5)},
            },
            # WebSub: feeds that changed, and requests whose intent is not verified yet
            # (the hub's endpoint nudges that at once; this is the safety net).
            "websub-notify": {
                "task": WEBSUB_NOTIFY_TASK,
                "schedule": float(settings["CMS_WEBSUB_INTERVAL"]),
                "options": {"expires": 10},
            },
            "websub-verify": {"task": WEBSUB_VERIFY_TASK, "schedule": 10.0, "options": {"expires": 30}},
            "prune-delivery-log": {
                "task": PRUNE_TASK,
                "schedule": 3600.0,
                "options": {"expires": 1800},
            },
        },
        beat_schedule_filename=str(var / "celerybeat-schedule"),
        beat_scheduler="workers.beat:Scheduler",
    )
    if app.conf.broker_url.startswith(("redis://", "rediss://")):
        app.conf.broker_transport = "workers.redis_transport:Transport"
    app.conf.cms_settings = settings
    # Registers the tasks on this app (shared_task binds them to every app).
    from workers import tasks

    tasks.bind(app)

    return app
