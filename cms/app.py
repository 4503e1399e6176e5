"""Application factory."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from cms.config import load_config
from cms.platform import logs, uow
from cms.platform.db import PoolSettings, configure_postgresql, configure_sqlite, engine_options
from cms.platform.extensions import db, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


class CmsFlask(Flask):
    """Flask that remembers which views and hooks are synchronous.

    Flask asks ``inspect.iscoroutinefunction`` of every hook and view on every
    request (five times for a ``GET``), and the answer never changes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_cache: dict[Any, Any] = {}

    def ensure_sync(self, func: Any) -> Any:
        try:
            return self._sync_cache[func]
        except KeyError:
            sync = self._sync_cache[func] = super().ensure_sync(func)
            return sync
        except TypeError:  # unhashable callable
            return super().ensure_sync(func)


def _after_commit_hooks(settings: Mapping[str, Any], url: str) -> dict[str, Callable[[], None]]:
    """What ``uow.after_commit`` names mean here: nudging the workers through the broker.
    The periodic relay and sweep find the work anyway if a nudge is lost."""
    if not settings["CMS_BROKER_URL"]:
        return {}
    from cms.platform.broker import RELAY_TASK, SWEEP_TASK, WEBSUB_VERIFY_TASK, Nudger

    nudger = Nudger(settings["CMS_BROKER_URL"], settings["CMS_BROKER_PREFIX"])
    hooks = {
        "sweep": functools.partial(nudger.nudge, SWEEP_TASK),
        "websub": functools.partial(nudger.nudge, WEBSUB_VERIFY_TASK),
    }
    # Workers listening on PostgreSQL hear about new events from the database itself.
    if not (settings["CMS_RELAY_LISTEN"] and url.startswith("postgresql")):
        hooks["relay"] = functools.partial(nudger.nudge, RELAY_TASK)
    return hooks


def _database_facts(session: Any) -> dict[str, Any]:
    """What /metrics reads from the database at scrape time."""
    from cms.publishing.scheduler import lag
    from cms.webhooks.monitoring import delivery_facts

    return {**delivery_facts(session), "schedule_lag": lag(session)}


def _current_hooks() -> Mapping[str, Callable[[], None]]:
    return current_app.extensions.get("cms_after_commit", {}) if current_app else {}


def create_app(config: Mapping[str, Any] | None = None, *, role: str = "api") -> Flask:
    """Build the app from ``CMS_*`` environment variables, overridden by ``config``.

    ``role`` (``api``, ``worker``, ``cli``) names this process's database connections
    (``application_name``), so an operator can tell them apart in ``pg_stat_activity``."""
    settings = load_config(config)
    logs.configure(settings["CMS_LOG_LEVEL"], settings["CMS_LOG_FORMAT"])  # once per process
    app = CmsFlask(__name__)
    app.config.update(settings)
    url = settings["CMS_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=settings["CMS_SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(
            url,
            synchronous_commit=settings["CMS_DB_SYNCHRONOUS_COMMIT"],
            application_name=f"cms-{role}",
            pool=PoolSettings.from_config(settings),
        ),
        SQLALCHEMY_ECHO=settings["CMS_SQL_ECHO"],
        # JSON escaping can grow a 2 MB body; fields are bounded precisely by the schemas.
        MAX_CONTENT_LENGTH=settings["CMS_MAX_BODY_BYTES"] * 2 + 64 * 1024,
        JSON_SORT_KEYS=False,
    )
    # Bearer keys, not cookies: skip opening a signed-cookie session per request.
    from cms.console.sessions import ConsoleSessions

    app.session_interface = ConsoleSessions()  # cookies for /console only: the API is stateless
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    from cms.registry import load_models

    load_models()
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, durable=settings["CMS_DB_SYNCHRONOUS_COMMIT"])
        elif db.engine.dialect.name == "postgresql":
            configure_postgresql(db.engine)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)

    from cms.accounts.keys import ActorCache
    from cms.accounts.keys import authenticate as authenticate_key
    from cms.accounts.partners import authenticate as authenticate_partner
    from cms.authoring.render_cache import RenderCache
    from cms.delivery.content import RenderedItems
    from cms.delivery.freshness import ProjectionCache
    from cms.platform.http.limits import RateLimiter

    auth_cache = app.extensions["cms_auth_cache"] = ActorCache(
        ttl=settings["CMS_AUTH_CACHE_SECONDS"], max_entries=settings["CMS_AUTH_CACHE_ENTRIES"]
    )
    app.extensions["cms_authenticate"] = functools.partial(authenticate_key, cache=auth_cache)
    partner_cache = app.extensions["cms_partner_auth_cache"] = ActorCache(
        ttl=settings["CMS_AUTH_CACHE_SECONDS"],
        max_entries=settings["CMS_AUTH_CACHE_ENTRIES"],
        name="partner-keys",
    )
    app.extensions["cms_authenticate_partner"] = functools.partial(authenticate_partner, cache=partner_cache)
    app.extensions["cms_feed_tokens"] = ActorCache(
        ttl=settings["CMS_AUTH_CACHE_SECONDS"],
        max_entries=settings["CMS_AUTH_CACHE_ENTRIES"],
        name="feed-tokens",
    )
    app.extensions["cms_rate_limiter"] = RateLimiter(settings["CMS_RATE_LIMIT_STORAGE"])
    app.extensions["cms_database_facts"] = _database_facts
    app.extensions["cms_render_cache"] = RenderCache(max_bytes=int(settings["CMS_RENDER_CACHE_MB"] * 2**20))
    app.extensions["cms_content_items"] = RenderedItems(
        max_bytes=int(settings["CMS_RENDER_CACHE_MB"] * 2**20)
    )
    cache = app.extensions["cms_projection_cache"] = ProjectionCache(
        url, settings["CMS_CONTENT_CACHE_ENTRIES"]
    )
    app.extensions["cms_after_commit"] = {**_after_commit_hooks(settings, url), "published": cache.invalidate}
    uow.install(db.session, _current_hooks)

    from cms.platform.http.problems import register_error_handlers
    from cms.routes import register_api

    register_api(app)
    register_error_handlers(app)

    from cms.cli import register_commands

    register_commands(app)
    return app
