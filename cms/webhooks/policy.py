"""The delivery policy: retry schedule, lease length, when a failing endpoint is disabled."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cms.webhooks.transport.schedule import RetryPolicy, parse_schedule

LEASE_EXPIRED = "no outcome was recorded before the lease expired (worker lost?)"


@dataclass(frozen=True)
class DeliveryPolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_seconds: float = 60.0
    disable_after: timedelta = timedelta(days=5)
    rng: random.Random | None = None


def policy(config: Mapping[str, Any]) -> DeliveryPolicy:
    """The delivery policy from ``CMS_WEBHOOK_*`` settings."""
    return DeliveryPolicy(
        retry=RetryPolicy(schedule=parse_schedule(config["CMS_WEBHOOK_RETRY_SCHEDULE"])),
        lease_seconds=float(config["CMS_WEBHOOK_LEASE_SECONDS"]),
        disable_after=timedelta(days=float(config["CMS_WEBHOOK_DISABLE_AFTER_DAYS"])),
    )
