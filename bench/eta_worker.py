"""The naive scheduling design, for comparison: a Celery task sent with ``eta=publish_at``.

Started by ``bench/schedule.py`` as ``celery -A eta_worker worker`` (cwd bench/), on
the same Redis broker as the CMS with its own key prefix and the CMS worker's
settings (late acks, one message per process). The task's body notes when it ran
(``time.time()``, first thing) in a Redis hash, ``<prefix>fired``, under its tag.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ.get("ETA_BROKER_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("ETA_PREFIX", "eta:")

app = Celery("eta", broker=BROKER_URL)
app.conf.update(
    broker_transport_options={"global_keyprefix": PREFIX},
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)
_redis = redis.Redis.from_url(BROKER_URL)


@app.task(name="eta.fire")
def fire(tag: str) -> None:
    now = time.time()
    _redis.hset(f"{PREFIX}fired", tag, repr(now))
