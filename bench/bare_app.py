"""The ceiling for ``authoring.py``: bare Flask under the same gunicorn settings.

``GET /ping`` returns a small JSON object; ``POST /echo`` parses a JSON body
(the same size as an article) and returns 201, so the difference to the CMS
is the CMS's own work (auth, validation, sanitising, SQL, serialising).
``GET /body/<name>`` returns the bytes of the file ``name`` in the directory
``BENCH_BARE_BODIES`` names, read once at start-up (``feeds.py``: a feed's bytes, static).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, abort, jsonify, request

app = Flask(__name__)
BODIES = {
    p.name: p.read_bytes() for p in Path(os.environ.get("BENCH_BARE_BODIES") or "/nonexistent").glob("*")
}


@app.get("/ping")
def ping() -> Response:
    return jsonify({"ok": True})


@app.post("/echo")
def echo() -> tuple[Response, int]:
    payload = request.get_json()
    return jsonify({"ok": True, "fields": len(payload)}), 201


@app.get("/body/<name>")
def body(name: str) -> Response:
    if name not in BODIES:
        abort(404)
    return Response(BODIES[name], content_type="application/octet-stream")
