"""The HTTP side of delivery: signed POSTs over pooled keep-alive connections (aiohttp).

A ``Sender`` lives in one event loop and is shared by every delivery that
process makes. It knows nothing about the database: it takes ``Job``s and
returns ``Result``s. Addresses are checked on every connection (a resolver
that drops non-public addresses) and IP-literal URLs before every send.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from cms.webhooks.signing import signature
from cms.webhooks.urls import Network, address_allowed, literal_address

USER_AGENT = "NewsroomCMS-Webhooks/1.0 (+https://www.standardwebhooks.com/)"
EXCERPT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt to deliver one event to one endpoint."""

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    body: bytes
    keys: tuple[bytes, ...]
    headers: tuple[tuple[str, str], ...]
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


class AddressRefused(OSError):
    """Every address of the host is outside what webhooks may reach."""


class GuardedResolver(AbstractResolver):
    """Resolves names like the default resolver, then drops non-public addresses."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self._inner = ThreadedResolver()
        self._allowed = tuple(allowed)

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        kept = [info for info in infos if address_allowed(info["host"], self._allowed)]
        if not kept:
            addresses = ", ".join(sorted({info["host"] for info in infos}))
            raise AddressRefused(f"{host} resolves only to non-public addresses ({addresses})")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    """Posts signed webhooks; one per event loop (create and use it inside the loop)."""

    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 1000,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.allowed = tuple(allowed)
        self.user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            resolver=GuardedResolver(self.allowed),
            ttl_dns_cache=10,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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

        host = urlsplit(job.url).hostname or ""
        literal = literal_address(host)
        if literal is not None and not address_allowed(literal, self.allowed):
            return result(error=f"address refused: {literal} is not publicly routable")
        assert self._session is not None, "Sender.open() was not awaited"
        try:
            async with self._session.post(
                job.url,
                data=job.body,
                headers=self.headers_for(job, int(time.time())),
                allow_redirects=False,
            ) as response:
                excerpt = b""
                while len(excerpt) < EXCERPT_BYTES:
                    chunk = await response.content.read(EXCERPT_BYTES - len(excerpt))
                    if not chunk:
                        break
                    excerpt += chunk
                status = response.status
                error = None
                if 300 <= status < 400:
                    location = response.headers.get("Location", "")
                    error = f"redirect to {location[:200]!r} not followed"
                return result(
                    status_code=status,
                    error=error,
                    excerpt=excerpt.decode("utf-8", "replace"),
                    retry_after=response.headers.get("Retry-After"),
                )
        except TimeoutError:
            return result(error=f"timed out after {self._timeout.total:g} s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return result(error=f"address refused: {exc.os_error}")
            return result(error=f"connection failed: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return result(error=f"{type(exc).__name__}: {exc}"[:500])
        except (OSError, ValueError) as exc:  # e.g. an unparseable URL that slipped through
            return result(error=f"{type(exc).__name__}: {exc}"[:500])

    async def send_all(self, jobs: Sequence[Job]) -> list[Result]:
        return list(await asyncio.gather(*(self.send(job) for job in jobs)))
