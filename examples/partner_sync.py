"""An example partner: webhooks for latency, the change feed to heal gaps.

    CMS_URL=http://127.0.0.1:8000 PARTNER_KEY=cmsp_... RECEIVER_SECRET=whsec_... \\
        python examples/partner_sync.py            # webhooks on :9100/hook

It keeps a local copy of every article it may see (``STORE``, a JSON file) and one
cursor: the change-feed position of the last change it applied.

1. On start it pulls ``/content/v1/changes`` from its cursor (or, the first time,
   from the beginning: the initial sync, every live article) until nothing is left.
2. Then it serves webhooks: each is verified (``standardwebhooks``), applied, and its
   ``feed_cursor`` becomes the cursor, so the next pull starts right after it.
3. Every ``PULL_SECONDS`` it pulls again: whatever a webhook missed while this
   receiver was down or unreachable comes now. Applying a change twice is harmless
   (newer versions win), so push and pull may overlap.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

CMS_URL = os.environ.get("CMS_URL", "http://127.0.0.1:8000").rstrip("/")
PARTNER_KEY = os.environ.get("PARTNER_KEY", "")
SECRET = os.environ.get("RECEIVER_SECRET", "")
PORT = int(os.environ.get("RECEIVER_PORT", "9100"))
STORE = Path(os.environ.get("PARTNER_STORE", "partner-store.json"))
PULL_SECONDS = float(os.environ.get("PULL_SECONDS", "60"))
WITHDRAWN = {"article.unpublished", "article.killed"}


class Copy:
    """The partner's own copy of the articles, and where it is in the feed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.articles: dict[str, Any] = saved.get("articles", {})
        self.cursor: str | None = saved.get("cursor")

    def apply(self, event_type: str, data: dict[str, Any], cursor: str | None) -> None:
        """One change, in the webhooks' JSON format (``data`` is the same in both)."""
        article_id = data["article_id"]
        with self.lock:
            if event_type in WITHDRAWN:
                self.articles.pop(article_id, None)  # take it down (a kill says why: data["reason"])
            else:
                held = self.articles.get(article_id)
                if held is None or held["version"] <= data["version"]:
                    self.articles[article_id] = data["article"]
            if cursor is not None:
                self.cursor = cursor
            self.path.write_text(json.dumps({"cursor": self.cursor, "articles": self.articles}))


def pull(copy: Copy) -> int:
    """Read the change feed from the cursor until nothing is left; how many changes."""
    applied = 0
    while True:
        query = {"limit": "500", **({"after": copy.cursor} if copy.cursor else {})}
        request = urllib.request.Request(
            f"{CMS_URL}/content/v1/changes?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {PARTNER_KEY}", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            page = json.load(response)
        for change in page["changes"]:
            copy.apply(change["type"], change["data"], change["cursor"])
            applied += 1
        with copy.lock:
            copy.cursor = page["next"]  # past changes outside our filters too
        if not page["more"]:
            return applied


def serve(copy: Copy) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = Webhook(SECRET).verify(body, {k.lower(): v for k, v in self.headers.items()})
            except (WebhookVerificationError, ValueError):
                self._answer(401)
                return
            if event["type"].startswith("article."):
                copy.apply(event["type"], event["data"], event.get("feed_cursor"))
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    if not (PARTNER_KEY and SECRET):
        sys.exit("Set PARTNER_KEY (cmsp_...) and RECEIVER_SECRET (whsec_..., from your subscription).")
    copy = Copy(STORE)
    print(f"caught up: {pull(copy)} changes; {len(copy.articles)} articles", flush=True)
    serve(copy)
    print(f"receiving webhooks on :{PORT}/hook; pulling every {PULL_SECONDS:g} s", flush=True)
    while True:
        time.sleep(PULL_SECONDS)
        try:
            healed = pull(copy)
        except OSError as exc:  # the CMS is unreachable: the next pull catches up
            print(f"pull failed: {exc}", flush=True)
            continue
        if healed:
            print(f"healed {healed} changes a webhook had not brought", flush=True)


if __name__ == "__main__":
    main()
