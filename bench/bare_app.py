"""The ceiling for ``authoring.py``: bare Flask under the same gunicorn settings.

``GET /ping`` returns a small JSON object; ``POST /echo`` parses a JSON body
(the same size as an article) and returns 201, so the difference to the CMS
is the CMS's own work (auth, validation, sanitising, SQL, serialising).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return jsonify({"ok": True})


@app.post("/echo")
def echo() -> tuple[Response, int]:
    payload = request.get_json()
    return jsonify({"ok": True, "fields": len(payload)}), 201
