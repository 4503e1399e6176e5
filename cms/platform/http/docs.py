"""Interactive API documentation (Swagger UI) at ``/api/v1/docs``, fully offline.

The assets (Swagger UI 5, which reads OpenAPI 3.1) come from the installed
``swagger-ui-py`` package and are served
by the app itself: no CDN, so the page works on an air-gapped newsroom network.
The page has no inline script, so it runs under a strict Content-Security-Policy.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_from_directory, url_for
from swagger_ui.utils import SWAGGER_UI_PY_ROOT

bp = Blueprint("docs", __name__)
STATIC = str(SWAGGER_UI_PY_ROOT / "static")

ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Newsroom CMS API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{preset}"></script>
  <script src="{init}"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/docs")
def page() -> Response:
    html = PAGE.format(
        css=url_for("docs.asset", name="swagger-ui.css"),
        icon=url_for("docs.asset", name="favicon-32x32.png"),
        bundle=url_for("docs.asset", name="swagger-ui-bundle.js"),
        preset=url_for("docs.asset", name="swagger-ui-standalone-preset.js"),
        init=url_for("docs.init"),
    )
    return _secured(Response(html, mimetype="text/html"))


@bp.get("/docs/init.js")
def init() -> Response:
    spec = '"' + url_for("openapi.openapi_json") + '"'
    return _secured(Response(INIT % spec, mimetype="text/javascript"))


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    response = send_from_directory(STATIC, name, max_age=86400)
    return _secured(response)
