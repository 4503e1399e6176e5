"""An example partner endpoint: verifies our signatures with the ``standardwebhooks``
library and logs what arrives. Run under docker compose's ``receiver`` profile, or:

    RECEIVER_SECRET=whsec_... python examples/receiver.py      # listens on :9000/hook

It answers 204 to a verified webhook and 401 to anything else, de-duplicates on
``webhook-id`` (deliveries are at least once) and prints one JSON line per request.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

SECRET = os.environ.get("RECEIVER_SECRET", "")
PORT = int(os.environ.get("RECEIVER_PORT", "9000"))
seen: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # one JSON line per request instead
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            event = Webhook(SECRET).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self._answer(401)
            print(json.dumps({"verified": False, "error": str(exc)}), flush=True)
            return
        webhook_id = headers["webhook-id"]
        duplicate = webhook_id in seen
        seen.add(webhook_id)
        self._answer(204)
        data = event.get("data", {})
        article = data.get("article") or {}
        headline = article.get("headline") or (data.get("headlines") or [{}])[0].get("value")
        print(
            json.dumps(
                {
                    "verified": True,
                    "duplicate": duplicate,
                    "id": webhook_id,
                    "type": event["type"],
                    "sequence": data.get("sequence"),
                    "headline": headline,
                },
                ensure_ascii=False,
            ),
            flush=True,
        )

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    if not SECRET.startswith("whsec_"):
        sys.exit("Set RECEIVER_SECRET to the secret shown when you created the subscription.")
    print(f"receiving webhooks on :{PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
