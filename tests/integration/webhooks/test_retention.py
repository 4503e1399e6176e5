"""Retention of the delivery log: old attempts of finished deliveries go, the rest stays."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from sqlalchemy import func, select, update

from cms.events.models import OutboxEvent
from cms.platform.actors import Role
from cms.platform.broker import PRUNE_TASK, RETRIES_QUEUE
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import fanout, outcomes, retention
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.models import Delivery, DeliveryAttempt, EventPayload
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.schedule import RetryPolicy
from cms.webhooks.transport.sender import Result
from tests.factories import ArticleFactory, Keys, SubscriptionFactory
from tests.helpers import cli


def _attempts(app) -> dict[str, list[int]]:
    """Attempt ids by delivery status."""
    with app.app_context():
        rows = db.session.execute(
            select(Delivery.status, DeliveryAttempt.id)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .order_by(DeliveryAttempt.id)
        ).all()
    out: dict[str, list[int]] = {}
    for status, attempt_id in rows:
        out.setdefault(status, []).append(attempt_id)
    return out


def _history(app) -> dict[str, int]:
    """Four deliveries: succeeded and failed long ago, retrying since long ago, succeeded now."""
    with app.app_context():
        SubscriptionFactory(session=db.session)
        ArticleFactory.create_batch(4, session=db.session, publish=True)
    final = DeliveryPolicy(retry=RetryPolicy(schedule=(0,)), rng=random.Random(1))
    retrying = DeliveryPolicy(retry=RetryPolicy(schedule=(0, 3600)), rng=random.Random(1))
    long_ago = utcnow() - timedelta(days=100)
    with app.app_context():
        relayed = fanout.relay(db.session, utcnow(), final, EndpointCache())
        db.session.commit()
        jobs = sorted(relayed.jobs, key=lambda j: str(j.delivery_id))
        assert len(jobs) == 4
        now = utcnow()
        outcomes.record(db.session, [Result(jobs[0], now, 5.0, status_code=200)], now, final)
        outcomes.record(db.session, [Result(jobs[1], now, 5.0, status_code=502)], now, final)
        outcomes.record(db.session, [Result(jobs[2], now, 5.0, status_code=503)], now, retrying)
        outcomes.record(db.session, [Result(jobs[3], now, 5.0, status_code=204)], now, final)
        old = [j.delivery_id for j in jobs[:3]]
        db.session.execute(
            update(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(old)).values(attempted_at=long_ago)
        )
        db.session.commit()
        return {
            str(j.delivery_id): db.session.get(Delivery, j.delivery_id).attempts  # type: ignore[union-attr]
            for j in jobs
        }


def test_prune_keeps_open_and_recent_attempts_and_every_delivery(committed_app):
    app = committed_app
    attempts_before = _history(app)
    before = _attempts(app)
    assert {k: len(v) for k, v in before.items()} == {"succeeded": 2, "failed": 1, "pending": 1}

    dry = json.loads(cli(app, "deliveries", "prune", "--dry-run", "--json"))
    assert dry["attempts"] == 2 and dry["dry_run"] is True and dry["older_than_days"] == 90
    assert _attempts(app) == before

    done = json.loads(cli(app, "deliveries", "prune", "--json"))
    assert done["attempts"] == 2
    after = _attempts(app)
    # The old succeeded and failed attempts went; the retrying delivery's old attempt
    # and the recent success stayed.
    assert after == {"succeeded": [before["succeeded"][1]], "pending": before["pending"]}
    assert "deleted 0 delivery attempt(s)" in cli(app, "deliveries", "prune")

    with app.app_context():
        deliveries = db.session.scalars(select(Delivery)).all()
        # Every delivery row and its summary survive; events too.
        assert {str(d.id): d.attempts for d in deliveries} == attempts_before
        assert {d.status for d in deliveries} == {"succeeded", "failed", "pending"}
        assert db.session.scalar(select(func.count()).select_from(OutboxEvent)) == 4
        failed = next(d for d in deliveries if d.status == "failed")
        assert failed.last_status_code == 502
    # A pruned delivery can still be sent again.
    admin = Keys(app).auth(Role.ADMIN)
    r = app.test_client().post(f"/api/v1/deliveries/{failed.id}/redeliver", headers=admin)
    assert r.status_code in (200, 202), r.get_json()

    refused = app.test_cli_runner().invoke(args=["deliveries", "prune", "--older-than-days", "0"])
    assert refused.exit_code == 2


def test_batches_walk_the_log_and_stop_at_recent_rows(committed_app):
    app = committed_app
    _history(app)
    with app.app_context():
        cutoff = utcnow() - timedelta(days=90)
        deleted, finished = retention.prune_attempts(
            db.session, cutoff, commit=db.session.commit, limit=1, max_batches=1
        )
        assert (deleted, finished) == (1, False)  # one row per batch: more to do
        deleted, finished = retention.prune_attempts(db.session, cutoff, commit=db.session.commit, limit=1)
        assert (deleted, finished) == (1, True)
        assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 2


def test_the_scheduled_task_prunes_per_setting_and_is_wired_into_beat(committed_app, databases):
    from cms.app import create_app
    from cms.webhooks import prune as worker_retention
    from workers.celery_app import create_celery

    _history(committed_app)
    url = committed_app.config["CMS_DATABASE_URL"]
    keep_all = create_app({"CMS_DATABASE_URL": url, "CMS_DELIVERY_LOG_DAYS": 0})
    assert worker_retention.prune(keep_all) == 0
    assert sum(len(v) for v in _attempts(committed_app).values()) == 4
    ninety = create_app({"CMS_DATABASE_URL": url, "CMS_DELIVERY_LOG_DAYS": 90})
    assert worker_retention.prune(ninety) == 2
    assert sum(len(v) for v in _attempts(committed_app).values()) == 2
    for app in (keep_all, ninety):
        with app.app_context():
            db.engine.dispose()

    celery = create_celery({"CMS_DATABASE_URL": url, "CMS_BROKER_URL": "redis://127.0.0.1:6379/0"})
    entry = celery.conf.beat_schedule["prune-delivery-log"]
    assert entry["task"] == PRUNE_TASK and entry["schedule"] == 3600.0
    assert celery.conf.task_routes[PRUNE_TASK]["queue"] == RETRIES_QUEUE
    assert PRUNE_TASK in celery.tasks


def test_finished_deliveries_go_after_their_own_retention_period(committed_app):
    """CMS_DELIVERY_RETENTION_DAYS bounds the deliveries table: finished deliveries not
    changed for that long go with their attempts (and payloads no delivery uses);
    open ones and recent ones stay, and so do the events."""
    app = committed_app
    _history(app)
    very_long_ago = utcnow() - timedelta(days=400)
    with app.app_context():
        rows = db.session.execute(select(Delivery.id, Delivery.status).order_by(Delivery.created_at)).all()
        old = [d for d, status in rows if status in ("failed", "pending")] + [
            next(d for d, status in rows if status == "succeeded")
        ]
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(old))
            .values(created_at=very_long_ago, updated_at=very_long_ago)
        )
        db.session.commit()
        payloads_before = db.session.scalar(select(func.count()).select_from(EventPayload))

    dry = json.loads(cli(app, "deliveries", "prune", "--dry-run", "--json"))
    assert dry["deliveries"] == 2 and dry["deliveries_older_than_days"] == 365
    with app.app_context():
        cutoff = utcnow() - timedelta(days=365)
        # One row a batch: the walk ends at the first row created after the cutoff,
        # though the batch is full (rows are created in order, after the three old ones).
        steps, after = [], None
        while True:
            batch = retention.prune_deliveries_batch(db.session, cutoff, after=after, limit=1, dry_run=True)
            steps.append(batch.deleted)
            if batch.next_after is None:
                break
            after = batch.next_after
        assert sorted(steps) == [0, 0, 1, 1] and steps[-1] == 0
        # Two batches of one row each must still find both (the walk goes on past the first).
        deleted, finished = retention.prune_deliveries(
            db.session, cutoff, commit=db.session.commit, limit=1, max_batches=2
        )
        assert deleted == 2
        deleted, finished = retention.prune_deliveries(db.session, cutoff, commit=db.session.commit)
        assert (deleted, finished) == (0, True)
        left = dict(db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert left == {"pending": 1, "succeeded": 1}  # the open one (however old) and the recent one
        assert db.session.scalar(select(func.count()).select_from(OutboxEvent)) == 4
        assert db.session.scalar(select(func.count()).select_from(EventPayload)) == payloads_before - 2
        orphans = db.session.scalar(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(~DeliveryAttempt.delivery_id.in_(select(Delivery.id)))
        )
        assert orphans == 0
    status = json.loads(cli(app, "deliveries", "status", "--json"))["by_status"]
    assert status["failed"] == 0 and status["succeeded"] == 1 and status["pending"] == 1
