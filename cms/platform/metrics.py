"""Prometheus metrics (prometheus_client).

Counters and histograms are process-local; with several processes (gunicorn
workers, Celery's prefork children) set ``PROMETHEUS_MULTIPROC_DIR`` and each
endpoint aggregates all of them (the client's multiprocess mode). Figures that
live in the database (outbox lag, pending retries, failing subscriptions) are
read when ``/metrics`` is scraped, so any API process reports the same truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


@dataclass(frozen=True)
class Metrics:
    http_requests: Counter
    http_duration: Histogram
    deliveries: Counter
    delivery_duration: Histogram
    events_relayed: Counter
    worker_thread_up: Gauge
    worker_thread_errors: Counter
    cache_bytes: Gauge
    cache_entries: Gauge
    rate_limit_errors: Counter
    rate_limited: Counter
    scheduled_actions: Counter
    schedule_lateness: Histogram
    scheduled_late: Counter


@cache
def get() -> Metrics:
    """The metric objects of this process (created once, on first use)."""
    return Metrics(
        http_requests=Counter(
            "cms_http_requests", "API requests by route and status", ["method", "route", "status"]
        ),
        http_duration=Histogram(
            "cms_http_request_duration_seconds",
            "API request latency by route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        ),
        deliveries=Counter("cms_deliveries", "Delivery attempts by outcome", ["outcome"]),
        delivery_duration=Histogram(
            "cms_delivery_duration_seconds",
            "Webhook request latency (connect to response)",
            buckets=LATENCY_BUCKETS,
        ),
        events_relayed=Counter("cms_events_relayed", "Outbox events fanned out, by type", ["type"]),
        worker_thread_up=Gauge(
            "cms_worker_thread_up",
            "1 while a worker thread runs normally, 0 while it retries after an error",
            ["thread"],
            multiprocess_mode="liveall",
        ),
        worker_thread_errors=Counter(
            "cms_worker_thread_errors", "Errors a worker thread recovered from", ["thread"]
        ),
        # Summed over the live processes: what the caches hold in all (cms.platform.caches).
        cache_bytes=Gauge("cms_cache_bytes", "Bytes held by a cache", ["cache"], multiprocess_mode="livesum"),
        cache_entries=Gauge(
            "cms_cache_entries", "Entries in a cache", ["cache"], multiprocess_mode="livesum"
        ),
        rate_limit_errors=Counter(
            "cms_rate_limit_errors", "Partner requests let through because the rate-limit storage failed"
        ),
        rate_limited=Counter("cms_rate_limited", "Partner requests refused with 429"),
        scheduled_actions=Counter(
            "cms_scheduled_actions",
            "Scheduled actions run, by action and outcome (done, skipped)",
            ["action", "outcome"],
        ),
        schedule_lateness=Histogram(
            "cms_scheduled_action_lateness_seconds",
            "How long after its time a scheduled action ran",
            ["action"],
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
        ),
        scheduled_late=Counter(
            "cms_scheduled_actions_late",
            "Scheduled actions that ran more than CMS_SCHEDULE_GRACE_SECONDS late",
            ["action"],
        ),
    )


def registry(extra: Collector | None = None) -> CollectorRegistry:
    """What ``/metrics`` exposes: every process's metrics, plus ``extra``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        target = CollectorRegistry()
        multiprocess.MultiProcessCollector(target)
    else:
        target = CollectorRegistry()
        target.register(_Forward(REGISTRY))
    if extra is not None:
        target.register(extra)
    return target


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts = self.read()
        yield GaugeMetricFamily(
            "cms_outbox_lag_seconds", "Age of the oldest event not yet relayed", value=facts["outbox_lag"]
        )
        yield GaugeMetricFamily("cms_outbox_unrelayed", "Events not yet relayed", value=facts["unrelayed"])
        yield GaugeMetricFamily(
            "cms_schedule_lag_seconds",
            "How long the oldest due scheduled action has waited (0: the scheduler keeps up)",
            value=facts.get("schedule_lag", 0.0),
        )
        yield GaugeMetricFamily(
            "cms_deliveries_pending_retries",
            "Deliveries waiting to be retried",
            value=facts["pending_retries"],
        )
        open_ = GaugeMetricFamily("cms_deliveries_open", "Open deliveries by status", labels=["status"])
        for status, n in sorted(facts["open"].items()):
            open_.add_metric([status], n)
        yield open_
        failing = GaugeMetricFamily(
            "cms_subscription_consecutive_failures",
            "Consecutive failed attempts per subscription (only those failing)",
            labels=["subscription_id"],
        )
        for subscription_id, n in facts["failing"]:
            failing.add_metric([str(subscription_id)], n)
        yield failing


def exposition(extra: Collector | None = None) -> bytes:
    return generate_latest(registry(extra))
