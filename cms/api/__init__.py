"""HTTP layer: parse with marshmallow, call a service, dump. One module per resource."""

from __future__ import annotations

from flask import Flask

PREFIX = "/api/v1"


def register_api(app: Flask) -> None:
    from cms.api import (
        api_keys,
        articles,
        deliveries,
        docs,
        events,
        health,
        index,
        observability,
        openapi,
        publishing,
        subscriptions,
        versions,
    )

    for module in (
        index,
        articles,
        versions,
        publishing,
        subscriptions,
        deliveries,
        events,
        api_keys,
        openapi,
        docs,
    ):
        app.register_blueprint(module.bp, url_prefix=PREFIX)
    app.register_blueprint(health.bp)
    observability.install(app)
    from cms.api.guards import install_read_only_requests, refuse_long_urls

    app.before_request(refuse_long_urls)
    install_read_only_requests(app)
