"""Webhook POSTs over one pooled aiohttp session, with the SSRF guard in its resolver.

What it does: keep-alive connections, at most ``max_connections`` in all and
``connections_per_host`` to one host (a partner with 50 subscriptions gets a
few connections, not 50 at once); a connect and a total timeout; TLS with
hostname verification; no redirects, no cookies, no compression; the first
4 KB of each answer kept, the rest discarded up to 64 KB and the connection
closed beyond that. Optionally through an HTTP(S) proxy (``proxy``).

The SSRF policy (``cms.webhooks.transport.urls``) applies to every address:
the connector's resolver (``GuardedResolver``) returns only allowed ones, so
the connection goes to an address that was checked; literal IP hosts, which
aiohttp never resolves, are checked before the request. Through a proxy the
connector only ever reaches the proxy (the operator's, so not checked), and
every address of the target must be allowed before the proxy is asked.

Failures raise ``RequestError`` (its message is safe to log) or ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import ssl
import types
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from aiohttp.resolver import DefaultResolver
from yarl import URL

from cms.webhooks.transport.resolver import AddressRefused, GuardedResolver, RequestError
from cms.webhooks.transport.urls import Network

__all__ = ["AddressRefused", "Client", "RequestError", "Response"]

EXCERPT_BYTES = 4096
# What is left of a body after the excerpt is read and discarded up to this, so the
# connection can be used again; a longer body closes the connection instead.
MAX_DRAIN_BYTES = 64 * 1024
URL_CACHE = 10_000


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    excerpt: bytes
    retry_after: str | None
    location: str | None


class _Request(aiohttp.ClientRequest):
    """No ``Accept`` or ``Accept-Encoding`` (so no compressed answers to undo). Cheaper
    than ``skip_auto_headers``, which copies every request's headers to apply."""

    DEFAULT_HEADERS: ClassVar[dict[str, str]] = {}


class Client:
    """Pooled keep-alive POSTs; create, use and close it inside one event loop."""

    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 1000,
        connections_per_host: int = 16,
        proxy: str | None = None,
        idle_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.guard = GuardedResolver(allowed)
        self.proxy = URL(proxy) if proxy else None
        # Behind a proxy the connector only ever connects to the proxy.
        self._resolver = DefaultResolver() if self.proxy else self.guard
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=connections_per_host,
            resolver=self._resolver,
            ssl=ssl_context or True,
            keepalive_timeout=idle_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # The total covers waiting for one of the host's connections too, so an
            # attempt always ends in time (well before its delivery's lease).
            timeout=aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout),
            proxy=self.proxy,
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_Request,
            auto_decompress=False,
        )
        self._urls: OrderedDict[str, URL] = OrderedDict()

    def url(self, url: str) -> URL:
        """The parsed URL (IDNA host, percent-encoded path and query), cached once a
        literal IP host passed the guard (aiohttp connects to those without asking
        the resolver)."""
        found = self._urls.get(url)
        if found is None:
            try:
                found = URL(url)
            except ValueError as exc:  # UnicodeError (IDNA) included
                raise RequestError(f"invalid URL {url[:200]!r}: {exc}") from None
            if found.scheme not in ("http", "https") or not found.raw_host:
                raise RequestError(f"not an http(s) URL: {url[:200]!r}")
            self.guard.check_literal(found.raw_host)
            self._urls[url] = found
            if len(self._urls) > URL_CACHE:
                self._urls.popitem(last=False)
        return found

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST ``body``; raises ``RequestError`` (or TimeoutError) unless a response arrived."""
        target = self.url(url)
        try:
            if self.proxy is not None:
                await self._check_target(target)
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await _excerpt(response)
                return Response(
                    response.status,
                    excerpt,
                    response.headers.get("Retry-After"),
                    response.headers.get("Location"),
                )
        except aiohttp.ClientError as exc:
            raise _failure(exc, self.connect_timeout) from None

    async def _check_target(self, target: URL) -> None:
        host, port = target.raw_host, target.port
        assert host is not None and port is not None
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.guard.check(host, port)
        except TimeoutError:
            raise RequestError(f"cannot resolve {host}: timed out after {self.connect_timeout:g} s") from None

    async def close(self) -> None:
        await self._session.close()
        await self.guard.close()
        if self._resolver is not self.guard:
            await self._resolver.close()


async def _excerpt(response: aiohttp.ClientResponse) -> bytes:
    """The first EXCERPT_BYTES of the body; the rest is discarded (up to MAX_DRAIN_BYTES)."""
    if response.content_length is not None and response.content_length <= EXCERPT_BYTES:
        return await response.read()  # the common case: a short answer
    content = response.content
    excerpt = bytearray()
    while len(excerpt) < EXCERPT_BYTES:
        chunk = await content.read(EXCERPT_BYTES - len(excerpt))
        if not chunk:
            return bytes(excerpt)
        excerpt += chunk
    drained = 0
    try:
        while drained <= MAX_DRAIN_BYTES:
            chunk = await content.readany()
            if not chunk:
                return bytes(excerpt)
            drained += len(chunk)
    except aiohttp.ClientPayloadError:
        pass  # the excerpt is complete: what follows does not matter
    response.close()  # too long to read to the end: this connection is not reused
    return bytes(excerpt)


def _failure(exc: aiohttp.ClientError, connect_timeout: float) -> RequestError:
    """A message for what went wrong, in the words the delivery log has always used."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestError(f"connection failed: connect timed out after {connect_timeout:g} s")
    for kind, describe in _DESCRIBE:  # most specific first
        if isinstance(exc, kind):
            return RequestError(describe(exc)[:500])
    return RequestError(f"{type(exc).__name__}: {exc}"[:500])


def _certificate(exc: Any) -> str:
    cert = exc.certificate_error
    reason = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or cert
    return f"connection failed: {exc.host}:{exc.port}: TLS: {reason}"


def _bad_response(exc: Any) -> str:
    message = exc.message if isinstance(exc, aiohttp.ClientResponseError) else exc
    return f"invalid HTTP response: {message}"


_DESCRIBE: tuple[tuple[type[Exception] | types.UnionType, Callable[[Any], str]], ...] = (
    (aiohttp.ClientConnectorDNSError, lambda e: f"cannot resolve {e.host}: {_reason(e.os_error)}"),
    (aiohttp.ClientConnectorCertificateError, _certificate),
    (
        aiohttp.ClientConnectorSSLError,
        lambda e: f"connection failed: {e.host}:{e.port}: TLS: {_reason(e.os_error)}",
    ),
    (
        aiohttp.ClientProxyConnectionError,
        lambda e: f"proxy connection failed: {e.host}:{e.port}: {_reason(e.os_error)}",
    ),
    (aiohttp.ClientConnectorError, lambda e: f"connection failed: {e.host}:{e.port}: {_reason(e.os_error)}"),
    (aiohttp.ClientHttpProxyError, lambda e: f"the proxy refused: {e.status} {e.message}"),
    (aiohttp.ServerDisconnectedError, lambda _e: "connection closed before a complete response"),
    (aiohttp.ClientResponseError | aiohttp.ClientPayloadError, _bad_response),
)


def _reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error)
    return str(error.strerror or error)
