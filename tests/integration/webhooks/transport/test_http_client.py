"""The webhook HTTP client (aiohttp) against real servers on loopback, including awkward
ones: chunked and close-delimited bodies, dropped keep-alive connections, informational
responses, huge and malformed responses, hanging servers, TLS, the SSRF guard, and a
forwarding proxy. Each ends in a response or a ``RequestError``/``TimeoutError``."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cms.webhooks.transport.client import AddressRefused, Client, RequestError
from cms.webhooks.transport.urls import parse_networks
from tests.integration.webhooks.transport.servers import Proxy, RawServer, ok

LOOPBACK = parse_networks("127.0.0.0/8,::1/128")


@pytest.fixture
def run() -> Iterator[Callable[..., object]]:
    loop = asyncio.new_event_loop()

    def go(coro):
        return loop.run_until_complete(coro)

    yield go
    loop.close()


async def post(client: Client, url: str, body: bytes = b"{}"):
    return await client.post(url, body, {"content-type": "application/json"})


def test_keep_alive_reuses_one_connection(run):
    server = RawServer(lambda req, n: ok())
    try:

        async def main():
            client = Client(allowed=LOOPBACK)
            out = [await post(client, f"http://127.0.0.1:{server.port}/hook?x=1") for _ in range(5)]
            await client.close()
            return out

        responses = run(main())
        assert [r.status for r in responses] == [200] * 5 and responses[0].excerpt == b'{"ok":true}'
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}".encode() in first and b"Content-Length: 2" in first
        assert b"accept" not in first.lower()  # no Accept-Encoding: answers come uncompressed
    finally:
        server.close()


def test_chunked_informational_and_close_delimited_bodies(run):
    big = b"x" * 10_000
    answers = {
        1: b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"after hints"),
        2: b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        3: ok(big, "500 Internal Server Error"),
    }
    server = RawServer(lambda req, n: answers[n])
    legacy = RawServer(
        lambda req, n: b"HTTP/1.0 200 OK\r\n\r\nno length, ends with the connection", close_after=True
    )
    try:

        async def main():
            client = Client(allowed=LOOPBACK)
            a = await post(client, f"http://127.0.0.1:{server.port}/")
            b = await post(client, f"http://127.0.0.1:{server.port}/")
            c = await post(client, f"http://127.0.0.1:{server.port}/")
            d = await post(client, f"http://127.0.0.1:{legacy.port}/")
            await client.close()
            return a, b, c, d

        a, b, c, d = run(main())
        assert (a.status, a.excerpt) == (200, b"after hints")
        assert (b.status, b.excerpt) == (202, b"hello world")
        assert c.status == 500 and c.excerpt == big[:4096]
        assert (d.status, d.excerpt) == (200, b"no length, ends with the connection")
        assert server.connections == 1
    finally:
        server.close()
        legacy.close()


def test_a_dropped_keep_alive_connection_is_replaced(run):
    server = RawServer(lambda req, n: ok(), close_after=True)  # closes after every answer, no notice
    try:

        async def main():
            client = Client(allowed=LOOPBACK)
            first = await post(client, f"http://127.0.0.1:{server.port}/")
            await asyncio.sleep(0.05)
            second = await post(client, f"http://127.0.0.1:{server.port}/")
            await client.close()
            return first, second

        first, second = run(main())
        assert first.status == second.status == 200
        assert server.connections == 2
    finally:
        server.close()


def test_redirects_retry_after_and_huge_bodies(run):
    huge = b"y" * (2 * 1024 * 1024)
    answers = {
        1: ok(b"", "301 Moved Permanently", "Location: https://elsewhere.example/\r\n"),
        2: ok(b"slow down", "429 Too Many Requests", "Retry-After: 120\r\n"),
        3: ok(huge),
        4: ok(),
    }
    server = RawServer(lambda req, n: answers[n])
    try:

        async def main():
            client = Client(allowed=LOOPBACK)
            out = [await post(client, f"http://127.0.0.1:{server.port}/") for _ in range(4)]
            await client.close()
            return out

        moved, limited, large, after = run(main())
        assert moved.status == 301 and moved.location == "https://elsewhere.example/"
        assert limited.status == 429 and limited.retry_after == "120"
        assert large.status == 200 and len(large.excerpt) == 4096
        assert after.status == 200
        assert server.connections == 2  # the huge body was not drained: that connection was dropped
    finally:
        server.close()


def test_failures_are_errors_not_crashes(run):
    garbage = RawServer(lambda req, n: b"SMTP ready\r\n\r\n")
    hanging = RawServer(lambda req, n: None)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    try:

        async def main():
            client = Client(allowed=LOOPBACK, total_timeout=0.5, connect_timeout=0.5)
            outcomes = []
            for url in (
                f"http://127.0.0.1:{garbage.port}/",
                f"http://127.0.0.1:{dead_port}/",
                f"http://127.0.0.1:{hanging.port}/",
                "http://no-such-host.invalid/",
            ):
                started = time.monotonic()
                try:
                    await post(client, url)
                    outcomes.append(("ok", 0.0))
                except (RequestError, TimeoutError) as exc:
                    outcomes.append((type(exc).__name__ + ": " + str(exc), time.monotonic() - started))
            await client.close()
            return outcomes

        outcomes = run(main())
        assert "invalid HTTP response" in outcomes[0][0]
        assert "connection failed" in outcomes[1][0]
        assert outcomes[2][0].startswith("TimeoutError") and 0.4 < outcomes[2][1] < 2
        assert "cannot resolve" in outcomes[3][0]
    finally:
        garbage.close()
        hanging.close()


def test_ssrf_guard_applies_to_every_connection(run):
    server = RawServer(lambda req, n: ok())
    try:

        async def main():
            strict = Client()  # nothing extra allowed
            refused = []
            for url in (
                f"http://127.0.0.1:{server.port}/",
                f"http://localhost:{server.port}/",
                f"http://[::ffff:127.0.0.1]:{server.port}/",
                "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.1/",
            ):
                with pytest.raises(AddressRefused):
                    await post(strict, url)
                refused.append(url)
            loose = Client(allowed=LOOPBACK)
            allowed = await post(loose, f"http://localhost:{server.port}/")
            await strict.close()
            await loose.close()
            return refused, allowed

        refused, allowed = run(main())
        assert len(refused) == 5 and allowed.status == 200
        assert server.connections == 1  # the refused ones never connected
    finally:
        server.close()


def test_ipv6_loopback(run):
    server = RawServer(lambda req, n: ok(), family=socket.AF_INET6)
    try:

        async def main():
            client = Client(allowed=LOOPBACK)
            response = await post(client, f"http://[::1]:{server.port}/v6")
            await client.close()
            return response

        assert run(main()).status == 200
        assert f"Host: [::1]:{server.port}".encode() in server.requests[0]
    finally:
        server.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate) -> ssl.SSLContext:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_tls_verifies_the_certificate(run, certificate, server_tls):
    cert, _key = certificate
    server = RawServer(lambda req, n: ok(b"secure"), tls=server_tls)
    try:

        async def main():
            trusting = ssl.create_default_context(cafile=str(cert))
            good = Client(allowed=LOOPBACK, ssl_context=trusting)
            response = await post(good, f"https://localhost:{server.port}/tls")
            default = Client(allowed=LOOPBACK)  # the system's CAs do not know our certificate
            with pytest.raises(RequestError, match="TLS"):
                await post(default, f"https://localhost:{server.port}/tls")
            await good.close()
            await default.close()
            return response

        response = run(main())
        assert (response.status, response.excerpt) == (200, b"secure")
    finally:
        server.close()


def test_through_a_proxy_the_target_is_still_checked(run, certificate, server_tls):
    server = RawServer(lambda req, n: ok(b"via proxy"))
    tls = RawServer(lambda req, n: ok(b"tunnelled"), tls=server_tls)
    cert, _key = certificate
    try:

        async def main():
            proxy = await Proxy().start()
            # Nothing extra allowed: loopback targets are refused, though the proxy itself
            # is on loopback (it is the operator's, so the guard does not apply to it).
            strict = Client(proxy=proxy.url)
            for url in (
                f"http://127.0.0.1:{server.port}/",
                f"http://localhost:{server.port}/",
                "http://169.254.169.254/latest/meta-data/",
            ):
                with pytest.raises(AddressRefused):
                    await post(strict, url)
            asked = list(proxy.requests)
            trusting = ssl.create_default_context(cafile=str(cert))
            proxy_url = proxy.url.replace("http://", "http://desk:secret@")
            loose = Client(allowed=LOOPBACK, proxy=proxy_url, ssl_context=trusting)
            plain = await post(loose, f"http://127.0.0.1:{server.port}/hook/новини?x=1")
            tunnelled = await post(loose, f"https://localhost:{tls.port}/tls")
            await proxy.close()
            unreachable = Client(allowed=LOOPBACK, proxy=proxy.url)  # its port is closed now
            with pytest.raises(RequestError, match="proxy connection failed"):
                await post(unreachable, f"http://127.0.0.1:{server.port}/")
            for client in (strict, loose, unreachable):
                await client.close()
            return asked, proxy, plain, tunnelled

        asked, proxy, plain, tunnelled = run(main())
        assert asked == []  # refused before the proxy was asked to connect
        path = "/hook/%D0%BD%D0%BE%D0%B2%D0%B8%D0%BD%D0%B8?x=1"
        assert proxy.requests == [
            f"POST http://127.0.0.1:{server.port}{path} HTTP/1.1",
            f"CONNECT localhost:{tls.port} HTTP/1.1",
        ]
        basic = "Basic " + base64.b64encode(b"desk:secret").decode()
        assert proxy.credentials == [basic, basic]
        assert (plain.status, plain.excerpt) == (200, b"via proxy")
        assert server.requests[0].startswith(f"POST {path} HTTP/1.1".encode())
        assert (tunnelled.status, tunnelled.excerpt) == (200, b"tunnelled")
    finally:
        server.close()
        tls.close()
