"""HTTP layer: parse with marshmallow, call a service, dump. One module per resource."""

from __future__ import annotations

from flask import Flask

PREFIX = "/api/v1"
CONTENT_PREFIX = "/content/v1"
PARTNER_PREFIX = "/partner/v1"
FEEDS_PREFIX = "/feeds/v1"


def register_api(app: Flask) -> None:
    from cms.accounts import api as api_keys
    from cms.authoring import api as articles
    from cms.authoring import versions_api as versions
    from cms.console import (  # noqa: F401 (their pages join the console blueprint)
        editor_views,
        ops_views,
        partner_views,
        schedule_views,
    )
    from cms.console import views as console
    from cms.delivery import api as content
    from cms.delivery import changes_api as changes
    from cms.feeds import api as feeds
    from cms.feeds import hub_api as websub_hub
    from cms.feeds import tokens_api as feed_tokens
    from cms.partners import admin_api as partners
    from cms.partners import deliveries_api as partner_deliveries
    from cms.partners import subscriptions_api as partner_subscriptions
    from cms.platform.http import docs, health, index, observability, openapi
    from cms.publishing import api as publishing
    from cms.publishing import embargo_api as embargo
    from cms.publishing import schedule_api as scheduling
    from cms.webhooks import deliveries_api as deliveries
    from cms.webhooks import events_api as events
    from cms.webhooks import subscriptions_api as subscriptions

    for module in (
        index,
        articles,
        versions,
        publishing,
        scheduling,
        embargo,
        subscriptions,
        deliveries,
        events,
        api_keys,
        partners,
        openapi,
        docs,
    ):
        app.register_blueprint(module.bp, url_prefix=PREFIX)
    app.register_blueprint(feed_tokens.admin, url_prefix=PREFIX)
    for module in (content, changes):
        app.register_blueprint(module.bp, url_prefix=CONTENT_PREFIX)
    for module in (partner_subscriptions, partner_deliveries):
        app.register_blueprint(module.bp, url_prefix=PARTNER_PREFIX)
    app.register_blueprint(feed_tokens.partner, url_prefix=PARTNER_PREFIX)
    app.register_blueprint(feeds.bp, url_prefix=FEEDS_PREFIX)
    app.register_blueprint(websub_hub.bp)
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # only the console's forms use tokens
    console.csrf.init_app(app)
    app.register_blueprint(console.bp, url_prefix="/console")
    app.register_blueprint(health.bp)
    observability.install(app)
    from cms.platform.http.guards import install_read_only_requests, refuse_long_urls

    app.before_request(refuse_long_urls)
    install_read_only_requests(app)
