"""Small test helpers: the seed story, API shortcuts, and waiting by polling."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from cms.content.seed import parse_wire_story

# shared/ sits beside the repository (also in CI's fresh clone).
# The sample wire story, as packaged with the CLI (the same text as shared/fixtures/).
SEED_PATH = Path(__file__).resolve().parents[1] / "cms" / "fixtures" / "seed-article.txt"


def seed_fields() -> dict[str, Any]:
    """The seed story as article fields, completed with the fields the file lacks."""
    story = parse_wire_story(
        SEED_PATH.read_text(encoding="utf-8"),
        image_url="https://cdn.example.org/2024/11/putin-valdai.jpg",
    )
    fields = dict(story.fields)
    fields.update(
        dateline="SOCHI, Russia",
        tags=["Russia", "United States", "Vladimir Putin", "Donald Trump"],
        lead_image={
            **fields["lead_image"],
            "credit": "Reuters",
            "alt_text": "Vladimir Putin at the Valdai forum",
        },
        editor_note="Wire copy: BTA with Reuters and AFP; check quotes against Valdai transcript.",
    )
    return fields


def create(client: FlaskClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"headline": "A headline", "body": "<p>Text</p>", **fields}
    r = client.post("/api/v1/articles", json=body, headers=auth)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def patch(
    client: FlaskClient, auth: dict[str, str], article: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    r = client.patch(
        f"/api/v1/articles/{article['id']}",
        json=fields,
        headers={**auth, "If-Match": f'"v{article["version"]}"'},
    )
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def post(client: FlaskClient, auth: dict[str, str], article_id: str, action: str, **body: Any):
    return client.post(f"/api/v1/articles/{article_id}/{action}", json=body, headers=auth)


def at_once(n: int, fn: Callable[[int], Any], timeout: float = 120) -> None:
    """Run ``fn(0) … fn(n-1)`` in n threads released together; fail if any hangs."""
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a concurrent worker did not finish"


def eventually(
    predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes.

    Tests wait with this, never with a fixed sleep: fast machines pass fast, slow
    ones get the whole deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def cli(app: Any, *args: str) -> str:
    """Run a ``cms`` command in-process; it must succeed."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def free_port() -> int:
    """A port that was free a moment ago, for servers that cannot report an ephemeral
    one (Docker's published ports); anything that can bind port 0 itself does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
