"""The HTTP side of delivery: signed POSTs over pooled keep-alive connections.

A ``Sender`` lives in one event loop and is shared by every delivery that
process makes. It knows nothing about the database: it takes ``Job``s and
returns ``Result``s. The HTTP client (``cms.webhooks.transport.client``, on
aiohttp) checks every address it connects to against the SSRF policy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cms.webhooks.transport.client import AddressRefused, Client, RequestError
from cms.webhooks.transport.signing import signature

USER_AGENT = "NewsroomCMS-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt to deliver one event to one endpoint."""

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    # Kept out of reprs, hence out of any log line or traceback that shows a job.
    body: bytes = field(repr=False)
    keys: tuple[bytes, ...] = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    attempt: int
    max_in_flight: int
    retry_index: int = 0  # failed attempts so far in this cycle (for the retry schedule)


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Posts signed webhooks; one per event loop (create and use it inside the loop).

    ``client_options`` go to the HTTP client (``allowed`` networks, timeouts,
    ``max_connections``, ``connections_per_host``, ``proxy``, ``ssl_context``); see
    ``cms.webhooks.transport.client.Client``.
    """

    def __init__(self, *, user_agent: str = USER_AGENT, **client_options: Any) -> None:
        self.user_agent = user_agent
        self.total_timeout = float(client_options.get("total_timeout", 15.0))
        self._options = client_options
        self._client: Client | None = None

    async def open(self) -> None:
        self._client = Client(**self._options)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def headers_for(self, job: Job, timestamp: int) -> dict[str, str]:
        headers = dict(job.headers)
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": self.user_agent,
                "webhook-id": str(job.event_id),
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature(str(job.event_id), timestamp, job.body, job.keys),
            }
        )
        return headers

    async def send(self, job: Job) -> Result:
        """One attempt; never raises for anything the network or the receiver does."""
        started = datetime.now(UTC)
        t0 = time.perf_counter()

        def result(**kwargs: Any) -> Result:
            return Result(job, started, round((time.perf_counter() - t0) * 1000, 3), **kwargs)

        assert self._client is not None, "Sender.open() was not awaited"
        try:
            response = await self._client.post(job.url, job.body, self.headers_for(job, int(time.time())))
        except TimeoutError:
            return result(error=f"timed out after {self.total_timeout:g} s")
        except AddressRefused as exc:
            return result(error=f"address refused: {exc}")
        except RequestError as exc:
            return result(error=str(exc)[:500])
        except (OSError, ValueError) as exc:
            return result(error=f"{type(exc).__name__}: {exc}"[:500])
        error = None
        if 300 <= response.status < 400:
            error = f"redirect to {(response.location or '')[:200]!r} not followed"
        return result(
            status_code=response.status,
            error=error,
            excerpt=response.excerpt.decode("utf-8", "replace"),
            retry_after=response.retry_after,
        )

    async def send_all(self, jobs: Sequence[Job]) -> list[Result]:
        return list(await asyncio.gather(*(self.send(job) for job in jobs)))


class Lanes:
    """Who may send now: at most ``max_in_flight`` requests per subscription, and
    retries together at most ``retry_limit``, so that a backlog of retries (a
    receiver back after an outage) can never take every connection from first
    attempts. Create and use inside the sending loop."""

    def __init__(self, retry_limit: int) -> None:
        self._retries = asyncio.Semaphore(retry_limit)
        # Keyed by the cap too, so a changed max_in_flight takes effect at once.
        self._per_subscription: dict[tuple[uuid.UUID, int], asyncio.Semaphore] = {}

    def slot(self, job: Job) -> _Slot:
        key = (job.subscription_id, job.max_in_flight)
        cap = self._per_subscription.get(key)
        if cap is None:
            cap = self._per_subscription[key] = asyncio.Semaphore(max(1, job.max_in_flight))
        return _Slot(cap, self._retries if job.attempt > 1 else None)


class _Slot:
    """``async with`` a job's semaphores (a plain class: a generator-based context
    manager cost 5% of a worker's sending time)."""

    __slots__ = ("cap", "retries")

    def __init__(self, cap: asyncio.Semaphore, retries: asyncio.Semaphore | None) -> None:
        self.cap = cap
        self.retries = retries

    async def __aenter__(self) -> None:
        if self.retries is not None:
            await self.retries.acquire()
        try:
            await self.cap.acquire()
        except BaseException:
            if self.retries is not None:
                self.retries.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.cap.release()
        if self.retries is not None:
            self.retries.release()
