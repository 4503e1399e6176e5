"""A small asyncio HTTP/1.1 client for webhook POSTs, with the SSRF guard built in.

Why not aiohttp or httpx: a webhook send is one POST and a status line, and on
this 2-core machine aiohttp spent ~200 µs of CPU per POST against ~40 µs for
asyncio protocols with a C parser (httptools, llhttp). Sending is most of the
work of a fan-out, so that difference is most of our throughput.

What it does: keep-alive connections pooled per (scheme, host, port);
``Content-Length``, chunked and close-delimited responses; TLS with hostname
verification; a connect timeout and a total timeout; no redirects, proxies or
cookies. Names are resolved here and every address is checked against the
SSRF policy before connecting, and the connection goes to exactly the address
that was checked (no second lookup for the socket to disagree with).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from cms.webhooks.transport.urls import Network, address_allowed, literal_address

EXCERPT_BYTES = 4096
MAX_HEADER_BYTES = 64 * 1024
# Bodies larger than this are not read to the end: the connection is closed instead.
MAX_DRAIN_BYTES = 1024 * 1024


class RequestError(Exception):
    """The request failed before a complete response (message is safe to log)."""


class AddressRefused(RequestError):
    """Every address of the host is outside what webhooks may reach."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    excerpt: bytes
    retry_after: str | None
    location: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed URL: where to connect and what to send in the request line."""

    scheme: str
    host: str  # IDNA-encoded, brackets stripped for IPv6 literals
    port: int
    target: str  # path and query
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestError(f"not an http(s) URL: {url[:200]!r}")
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise RequestError(f"invalid host name in {url[:200]!r}") from None
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        shown = f"[{host}]" if ":" in host else host
        return cls(parts.scheme, host, port, target, shown if port == default else f"{shown}:{port}")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._excerpt = bytearray()
        self._body_bytes = 0
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the end is known

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RequestError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed:
            self._complete()  # the body ended with the connection (HTTP/1.0 style)
        else:
            self._fail(RequestError("connection closed before a complete response"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail(RequestError("response headers too large"))
            return
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        self._framed = (
            b"content-length" in self._headers
            or b"chunked" in self._headers.get(b"transfer-encoding", b"").lower()
        )

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        room = EXCERPT_BYTES - len(self._excerpt)
        if room > 0:
            self._excerpt += body[:room]
        if self._body_bytes > MAX_DRAIN_BYTES:
            self._complete(keep=False)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # informational (e.g. 103): the real answer follows
            self._reset()
            return
        self._complete()

    # outcome
    def _complete(self, keep: bool = True) -> None:
        if self._waiter is None or self._waiter.done():
            return
        if not keep or not self._parser.should_keep_alive():
            self.close()
        get = self._headers.get
        response = Response(
            status=self._status,
            excerpt=bytes(self._excerpt),
            retry_after=(get(b"retry-after") or b"").decode("latin-1") or None,
            location=(get(b"location") or b"").decode("latin-1") or None,
        )
        self._waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def request(self, head: bytes, body: bytes) -> Response:
        assert self.transport is not None
        self._reset()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(head + body)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    @property
    def fresh_response(self) -> bool:
        """Nothing of a response has arrived yet (a failure now means the request was not read)."""
        return not self._headers_done and self._status == 0


class Client:
    """Pooled keep-alive POSTs; create, use and close it inside one event loop."""

    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 1000,
        max_idle_per_host: int = 1000,
        idle_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_idle_per_host = max_idle_per_host
        self.idle_seconds = idle_seconds
        self._ssl = ssl_context or ssl.create_default_context()
        self._slots = asyncio.Semaphore(max_connections)
        # Per (scheme, host, port): idle connections with the time they became idle.
        self._idle: dict[tuple[str, str, int], list[tuple[float, _Connection]]] = {}
        self._targets: OrderedDict[str, Target] = OrderedDict()

    def target(self, url: str) -> Target:
        found = self._targets.get(url)
        if found is None:
            found = Target.parse(url)
            self._targets[url] = found
            if len(self._targets) > 10_000:
                self._targets.popitem(last=False)
        return found

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body``; raises ``RequestError`` (or TimeoutError) unless a response arrived."""
        t = self.target(url)
        head = (
            f"POST {t.target} HTTP/1.1\r\nHost: {t.host_header}\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode("latin-1")
        async with self._slots, asyncio.timeout(self.total_timeout):
            key = (t.scheme, t.host, t.port)
            connection = self._take_idle(key)
            if connection is not None:
                try:
                    return await self._exchange(key, connection, head, body)
                except RequestError:
                    # The server closed a pooled connection as we reused it: when
                    # nothing of a response arrived, try once on a new connection.
                    if not connection.fresh_response:
                        raise
            connection = await self._connect(t)
            return await self._exchange(key, connection, head, body)

    async def _exchange(
        self, key: tuple[str, str, int], connection: _Connection, head: bytes, body: bytes
    ) -> Response:
        try:
            response = await connection.request(head, body)
        except BaseException:
            connection.close()  # timed out, cancelled or broken: never reuse it
            raise
        return self._finish(key, connection, response)

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        # Servers drop idle keep-alive connections after a while; do not reuse
        # one that is probably gone (the newest are at the end).
        stale = asyncio.get_running_loop().time() - self.idle_seconds
        while idle and idle[0][0] < stale:
            idle.pop(0)[1].close()
        while idle:
            _since, connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def _finish(self, key: tuple[str, str, int], connection: _Connection, response: Response) -> Response:
        if not connection.closed:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append((asyncio.get_running_loop().time(), connection))
            else:
                connection.close()
        return response

    async def _addresses(self, host: str, port: int) -> list[tuple[int, str]]:
        literal = literal_address(host)
        if literal is not None:
            infos = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
        else:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise RequestError(f"cannot resolve {host}: {exc}") from None
            infos = list(dict.fromkeys((family, str(sockaddr[0])) for family, _t, _p, _c, sockaddr in found))
        allowed = [(family, ip) for family, ip in infos if address_allowed(ip.split("%", 1)[0], self.allowed)]
        if not allowed:
            shown = ", ".join(ip for _f, ip in infos)
            raise AddressRefused(f"{host} is not publicly routable ({shown})")
        return allowed

    async def _connect(self, t: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        errors = []
        for _family, ip in await self._addresses(t.host, t.port):
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _transport, connection = await loop.create_connection(
                        _Connection,
                        host=ip,
                        port=t.port,
                        ssl=self._ssl if t.scheme == "https" else None,
                        server_hostname=t.host if t.scheme == "https" else None,
                    )
                return connection
            except TimeoutError:
                errors.append(f"{ip}: connect timed out after {self.connect_timeout:g} s")
            except ssl.SSLError as exc:
                errors.append(f"{ip}: TLS: {exc.reason or exc}")
            except OSError as exc:
                errors.append(f"{ip}: {exc.strerror or exc}")
        raise RequestError("connection failed: " + "; ".join(errors))

    async def close(self) -> None:
        for idle in self._idle.values():
            for _since, connection in idle:
                connection.close()
        self._idle.clear()
        await asyncio.sleep(0)
