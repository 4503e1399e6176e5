"""Loopback servers for the HTTP client tests: a raw TCP server that answers whatever
bytes it is told to, and a minimal forwarding proxy."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit


class RawServer:
    """A TCP server on loopback that answers each request with ``reply(request_bytes, n)``."""

    def __init__(
        self,
        reply: Callable[[bytes, int], bytes | None],
        *,
        close_after: bool = False,
        family: int = socket.AF_INET,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.reply = reply
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    if len(rest) < length:
                        break
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buffer = rest[length:]
                    answer = self.reply(self.requests[-1], len(self.requests))
                    if answer is None:  # hang
                        time.sleep(30)
                        return
                    conn.sendall(answer)
                    if self.close_after:
                        return

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def ok(body: bytes = b'{"ok":true}', status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


class Proxy:
    """A minimal forwarding HTTP proxy on loopback (asyncio): ``CONNECT host:port`` tunnels
    and absolute-URI requests (sent on in origin form). Each client connection goes to the
    target of its first request; ``requests`` holds those request lines."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.credentials: list[str] = []  # the Proxy-Authorization header of each
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode()
        self.requests.append(line)
        fields = dict(h.split(": ", 1) for h in head.decode().split("\r\n")[1:] if ": " in h)
        self.credentials.append(fields.get("Proxy-Authorization", ""))
        method, target, _version = line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            upstream_reader, upstream = await asyncio.open_connection(url.hostname, url.port or 80)
            origin = url.path + (f"?{url.query}" if url.query else "")
            upstream.write(head.replace(target.encode(), origin.encode(), 1))
        for source, sink in ((reader, upstream), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    async def close(self) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
