"""The naive design, for comparison: one Celery task per delivery doing ``requests.post``.

Started by ``bench/fanout.py`` as ``celery -A naive_worker worker`` (cwd bench/),
on the same broker with its own key prefix.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import requests
from celery import Celery
from standardwebhooks.webhooks import Webhook

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    broker_transport_options={"global_keyprefix": os.environ.get("NAIVE_PREFIX", "naive:")},
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
)


@app.task(name="naive.post")
def post(url: str, msg_id: str, body: str, secret: str) -> int:
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    reply = requests.post(url, data=body.encode(), headers=headers, timeout=15, allow_redirects=False)
    return reply.status_code
