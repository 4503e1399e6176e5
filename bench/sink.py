"""A fast loopback webhook sink for benchmarks (raw asyncio HTTP/1.1, keep-alive).

Answers every POST with 200 at once, except under ``/hang/``, where it never
answers (the sender's timeout ends the request). Keeps, per ``webhook-id``,
the arrival time of the first delivery, the last one and the count;
``GET /_stats?since=<t>`` returns them as JSON, ``GET /_wait?id=<id>&count=<n>``
answers ``[first, last, count]`` once ``n`` deliveries of ``id`` arrived (a
long poll: the benchmark does not spin while it waits), ``POST /_reset``
clears them.

Several ports (``--port 9100 9101``) share the stats: to the sender they are
different receiving hosts, each with its own connection limit.

Run: ``python bench/sink.py --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from urllib.parse import parse_qs, urlsplit

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Stats:
    def __init__(self) -> None:
        self.waiters: dict[str, list[tuple[int, asyncio.Future[list[float]]]]] = {}
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.by_id: dict[str, list[float]] = {}  # id -> [first, last, count]

    def add(self, webhook_id: str) -> None:
        now = time.time()
        self.total += 1
        entry = self.by_id.get(webhook_id)
        if entry is None:
            entry = self.by_id[webhook_id] = [now, now, 1]
        else:
            entry[1] = now
            entry[2] += 1
        waiting = self.waiters.get(webhook_id)
        if waiting:
            for count, future in list(waiting):
                if entry[2] >= count and not future.done():
                    future.set_result(list(entry))
                    waiting.remove((count, future))

    def wait(self, webhook_id: str, count: int) -> asyncio.Future[list[float]]:
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        entry = self.by_id.get(webhook_id)
        if entry is not None and entry[2] >= count:
            future.set_result(list(entry))
        else:
            self.waiters.setdefault(webhook_id, []).append((count, future))
        return future


STATS = Stats()


class Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(method, target, headers)

    def handle(self, method: str, target: str, headers: dict[str, str]) -> None:
        path = urlsplit(target).path
        if method == "GET" and path == "/_stats":
            since = float(parse_qs(urlsplit(target).query).get("since", ["0"])[0])
            body = json.dumps(
                {"total": STATS.total, "ids": {k: v for k, v in STATS.by_id.items() if v[1] >= since}}
            ).encode()
            self.reply(body)
            return
        if method == "GET" and path == "/_wait":
            query = parse_qs(urlsplit(target).query)
            future = STATS.wait(query["id"][0], int(query["count"][0]))
            future.add_done_callback(lambda f: self.reply(json.dumps(f.result()).encode()))
            return
        if path == "/_reset":
            STATS.reset()
            self.reply(b"{}")
            return
        if path.startswith("/hang/"):
            return  # never answer: the sender times out
        STATS.add(headers.get("webhook-id", ""))
        self.transport.write(OK)  # type: ignore[attr-defined]

    def reply(self, body: bytes) -> None:
        self.transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


async def main(ports: list[int]) -> None:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(Sink, "127.0.0.1", port, backlog=4096) for port in ports]
    print(f"sink listening on 127.0.0.1:{', '.join(map(str, ports))}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, nargs="+", required=True, help="one or more (one set of stats)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
