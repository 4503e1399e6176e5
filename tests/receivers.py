"""Real HTTP receivers on loopback that record what they get (webhook endpoints for tests)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """An HTTP/1.1 keep-alive server on 127.0.0.1:<random port>.

    Answers 200 unless told otherwise: ``script([500, 200])`` answers the next
    requests with those statuses in order; ``hang(seconds)`` delays answers.
    ``max_open`` is the most connections it ever had open at once. Its listen
    backlog is socketserver's small default (5), as small receivers have.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.open = 0
        self.max_open = 0
        self._script: deque[int | tuple[int, dict[str, str]]] = deque()
        self._delay = 0.0
        # Optional: decide each answer from the request (path, body) -> status.
        self.rule: Callable[[str, bytes], int | tuple[int, dict[str, str]]] | None = None
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with receiver._cond:
                    receiver.open += 1
                    receiver.max_open = max(receiver.max_open, receiver.open)

            def finish(self) -> None:
                with receiver._cond:
                    receiver.open -= 1
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, extra = receiver._next_status(self.path, body)
                if receiver._delay:
                    time.sleep(receiver._delay)
                reply = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply)
                record = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, status, time.time()
                )
                with receiver._cond:
                    receiver.requests.append(record)
                    receiver._cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, statuses: list[int | tuple[int, dict[str, str]]]) -> None:
        with self._cond:
            self._script.extend(statuses)

    def hang(self, seconds: float) -> None:
        self._delay = seconds

    def _next_status(self, path: str, body: bytes) -> tuple[int, dict[str, str]]:
        with self._cond:
            if self.rule is not None:
                item = self.rule(path, body)
            else:
                item = self._script.popleft() if self._script else 200
        return (item, {}) if isinstance(item, int) else item

    def ok(self) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0, what: str = "requests"
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {len(self.requests)} requests")
                self._cond.wait(timeout=min(remaining, 0.5))
            return list(self.requests)

    def wait_ok(self, count: int, timeout: float = 30.0) -> list[Received]:
        self.wait_for(
            lambda rs: sum(200 <= r.status < 300 for r in rs) >= count, timeout, f"{count} deliveries"
        )
        return self.ok()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Subscriber:
    """Answers the hub's challenge and keeps every notification."""

    def __init__(self) -> None:
        self.challenges: list[dict[str, str]] = []
        self.notifications: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                outer.challenges.append(query)
                body = query.get("hub.challenge", "").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.notifications.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
