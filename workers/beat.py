"""Celery beat's scheduler, creating its state directory (``CMS_VAR_DIR``) first."""

from __future__ import annotations

import logging
from pathlib import Path

from celery.beat import PersistentScheduler

log = logging.getLogger("workers.beat")


class Scheduler(PersistentScheduler):
    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
        # Celery's own "beat: Starting..." and its line per task sent are kept below
        # INFO (cms.platform.logs.CHATTY_LOGGERS): say once what will be sent, and when.
        plan = ", ".join(
            f"{name} every {entry['schedule']:g} s" for name, entry in self.app.conf.beat_schedule.items()
        )
        log.info("beat: Starting; sends %s", plan)
