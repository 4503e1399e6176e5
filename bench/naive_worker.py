"""The naive design, for comparison: one Celery task per delivery doing ``requests.post``.

Started by ``bench/fanout.py`` as ``celery -A naive_worker worker`` (cwd bench/),
on the same broker with its own key prefix.
"""

from __future__ import annotations

import os
import time

import requests
from celery import Celery

from cms.webhooks.signing import secret_key, signature

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    broker_transport_options={"global_keyprefix": os.environ.get("NAIVE_PREFIX", "naive:")},
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)


@app.task(name="naive.post")
def post(url: str, msg_id: str, body: str, secret: str) -> int:
    ts = int(time.time())
    data = body.encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(msg_id, ts, data, [secret_key(secret)]),
    }
    return requests.post(url, data=data, headers=headers, timeout=15, allow_redirects=False).status_code
