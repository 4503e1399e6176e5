"""An example partner endpoint: verifies our signatures with the ``standardwebhooks``
library and logs what arrives. Run under docker compose's ``receiver`` profile, or:

    RECEIVER_SECRET=whsec_... python examples/receiver.py      # listens on :9000/hook

It answers 204 to a verified webhook and 401 to anything else, de-duplicates on
``webhook-id`` (deliveries are at least once) and prints one JSON line per request.
Started without a secret (so that a subscription to it can be created first: its
host name must resolve), it answers 503 and the webhooks wait in our retry schedule.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

SECRET = os.environ.get("RECEIVER_SECRET", "")
PORT = int(os.environ.get("RECEIVER_PORT", "9000"))
seen: set[str] = set()
_lock = threading.Lock()  # requests are handled on threads: one whole line at a time


def log(record: dict) -> None:
    with _lock:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # one JSON line per request instead
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not SECRET:
            self._answer(503)
            log({"verified": False, "error": "RECEIVER_SECRET is not set"})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            event = Webhook(SECRET).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self._answer(401)
            log({"verified": False, "error": str(exc)})
            return
        webhook_id = headers["webhook-id"]
        with _lock:
            duplicate = webhook_id in seen
            seen.add(webhook_id)
        self._answer(204)
        data = event.get("data", {})
        article = data.get("article") or {}
        headline = article.get("headline") or (data.get("headlines") or [{}])[0].get("value")
        log(
            {
                "verified": True,
                "duplicate": duplicate,
                "id": webhook_id,
                "type": event["type"],
                "sequence": data.get("sequence"),
                "headline": headline,
            }
        )

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    if SECRET and not SECRET.startswith("whsec_"):
        sys.exit("RECEIVER_SECRET must be the whsec_... secret shown when you created the subscription.")
    # Bound before saying so (RECEIVER_PORT=0 takes any free port, and says which).
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    port = server.server_address[1]
    if SECRET:
        print(f"receiving webhooks on :{port}", flush=True)
    else:
        print(f"listening on :{port}, answering 503 until RECEIVER_SECRET is set", flush=True)
    # As a container's first process, SIGTERM would otherwise be ignored until `docker stop` kills us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()
