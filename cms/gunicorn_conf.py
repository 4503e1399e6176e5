"""gunicorn settings for the API container: ``gunicorn -c python:cms.gunicorn_conf cms.wsgi:app``.

Logging is ours (``cms.platform.logs``, at ``CMS_LOG_LEVEL`` in ``CMS_LOG_FORMAT``):
gunicorn's own lines go through the same handler, and it writes no access log
(the app writes one line per request, ``CMS_ACCESS_LOG``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its metrics there
and ``/metrics`` adds them up; the directory is emptied when the server starts
so a previous run's figures do not linger.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cms.config import load_config
from cms.platform import logs

bind = f"0.0.0.0:{os.environ.get('CMS_PORT', '8000')}"
workers = int(os.environ.get("CMS_API_WORKERS", "4"))
# Threads per worker (gthread): connections stay open between requests (keep-alive),
# which partners that poll the content API and change feed rely on; sync workers
# would close every connection after one response.
worker_class = "gthread"
threads = int(os.environ.get("CMS_API_THREADS", "4"))
keepalive = int(os.environ.get("CMS_API_KEEPALIVE", "75"))  # seconds an idle connection stays open
accesslog = None  # the app logs one JSON line per request (CMS_ACCESS_LOG)
_settings = load_config()
logconfig_dict = logs.dict_config(_settings["CMS_LOG_LEVEL"], _settings["CMS_LOG_FORMAT"])
# The most gunicorn allows: the app answers URLs over 4 KB with its own 414 problem
# (cms.platform.http.routing.MAX_URL_BYTES); only a request line over this gets gunicorn's page.
limit_request_line = 8190


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
