"""The hourly prune of the delivery log (``CMS_DELIVERY_LOG_DAYS``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from flask import Flask

from cms.platform import tallies
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import retention

log = logging.getLogger("cms.webhooks.prune")

# Batches of 2,000 per run: an hourly run removes up to 100,000 rows, and a
# backlog (retention just switched on) is worked off over the following runs.
MAX_BATCHES = 50


def prune(app: Flask) -> int:
    """Attempt rows past CMS_DELIVERY_LOG_DAYS, then finished deliveries past
    CMS_DELIVERY_RETENTION_DAYS. Logs only when something was deleted."""
    attempts = _prune(app, "CMS_DELIVERY_LOG_DAYS", retention.prune_attempts, "delivery attempt(s)")
    deliveries = _prune(app, "CMS_DELIVERY_RETENTION_DAYS", retention.prune_deliveries, "finished deliveries")
    return attempts + deliveries + prune_tallies(app)


def _prune(app: Flask, setting: str, prune_fn: Callable[..., tuple[int, bool]], what: str) -> int:
    days = float(app.config[setting])
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    with app.app_context():
        try:
            deleted, finished = prune_fn(
                db.session, cutoff, commit=db.session.commit, max_batches=MAX_BATCHES
            )
        except Exception:
            db.session.rollback()
            raise
    if deleted:
        log.info(
            "pruned %d %s older than %s days%s",
            deleted,
            what,
            f"{days:g}",
            "" if finished else " (more next run)",
            extra={"deleted": deleted, "finished": finished},
        )
    return deleted


TALLY_DAYS = 14  # the overview shows the last hour; two weeks leave room to look back


def prune_tallies(app: Flask) -> int:
    """Per-minute counts older than TALLY_DAYS go (a few thousand rows a day at most);
    the shards of minutes no longer written are folded into one row each."""
    now = utcnow()
    with app.app_context():
        try:
            tallies.compact(db.session, tallies.minute_of(now - COMPACT_AFTER))
            deleted = tallies.prune(db.session, tallies.minute_of(now - timedelta(days=TALLY_DAYS)))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return deleted


# Minutes this old are rarely written again; a late write lands in a new shard row, folded
# at the next run.
COMPACT_AFTER = timedelta(minutes=5)
