"""Settings read from ``CMS_*`` environment variables.

Every setting has a default that makes ``make run`` work on a laptop: an
embedded SQLite file under ``./var/``. Tests pass overrides to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PREFIX = "CMS_"


def _default_database_url(var_dir: str) -> str:
    return f"sqlite:///{Path(var_dir).resolve() / 'cms.sqlite3'}"


def _default_broker_url(database_url: str) -> str:
    """Embedded (SQLite file next to the database) for SQLite, Redis otherwise."""
    if database_url.startswith("sqlite:///"):
        directory = Path(database_url.removeprefix("sqlite:///")).parent
        return f"sqla+sqlite:///{directory / 'broker.sqlite3'}"
    return "redis://127.0.0.1:6379/0"


def _int(value: str | int) -> int:
    return int(value)


def _bool(value: str | bool) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "on"}


# name -> (default, converter); the name is the Flask config key and, with the
# prefix, the environment variable.
SETTINGS: dict[str, tuple[Any, Any]] = {
    "CMS_DATABASE_URL": (None, str),
    "CMS_SECRET_KEY": (None, str),
    # The first admin API key, when a deployment provisions it (cms_..., >= 32 characters);
    # used only while no active admin key exists. Empty: a random one is printed.
    "CMS_ADMIN_KEY": ("", str),
    "CMS_PORT": (8000, _int),
    "CMS_MAX_BODY_BYTES": (2 * 1024 * 1024, _int),
    "CMS_PAGE_SIZE_DEFAULT": (20, _int),
    "CMS_PAGE_SIZE_MAX": (100, _int),
    # How long a process may keep trusting a key it has verified; revocation
    # reaches other processes within this time (0 disables the cache).
    "CMS_AUTH_CACHE_SECONDS": (5.0, float),
    "CMS_AUTH_CACHE_ENTRIES": (10_000, _int),  # verified keys a process remembers at most
    # Per-process memory for serialised article bodies (0 disables).
    "CMS_RENDER_CACHE_MB": (16.0, float),
    "CMS_WORKER_BODY_CACHE_MB": (16.0, float),  # rendered payloads a worker process keeps
    "CMS_SQL_ECHO": (False, _bool),
    # Wait for the WAL flush on commit. The workers turn it off for their own
    # transactions (see cms.platform.db.engine_options); leave it on for the API.
    "CMS_DB_SYNCHRONOUS_COMMIT": (True, _bool),
    # Each process's PostgreSQL connection pool (cms.platform.db.PoolSettings): connections
    # kept open, extra ones allowed in a burst, seconds a request waits for a free one
    # (then 503), seconds before a connection is replaced, seconds to open one.
    "CMS_DB_POOL_SIZE": (10, _int),
    "CMS_DB_MAX_OVERFLOW": (10, _int),
    "CMS_DB_POOL_TIMEOUT": (10.0, float),
    "CMS_DB_POOL_RECYCLE": (1800.0, float),
    "CMS_DB_CONNECT_TIMEOUT": (5, _int),
    # psycopg prepares a statement on the server after a connection ran it this many times.
    "CMS_DB_PREPARE_THRESHOLD": (5, _int),
    # Logs: "json" (one object per line) or "text"; level; one line per API request.
    "CMS_LOG_FORMAT": ("json", str),
    "CMS_LOG_LEVEL": ("INFO", str),
    "CMS_ACCESS_LOG": (True, _bool),
    # Bearer token /metrics requires (empty: open, e.g. behind an internal network).
    "CMS_METRICS_TOKEN": ("", str),
    # A worker serves its processes' metrics on this port (0: off). Needs PROMETHEUS_MULTIPROC_DIR.
    "CMS_WORKER_METRICS_PORT": (0, _int),
    # Where the embedded database, broker and beat schedule live.
    "CMS_VAR_DIR": ("var", str),
    # The Celery broker: Redis in production; by default an embedded SQLite
    # broker when the database is SQLite, else Redis on localhost. An explicit
    # empty value: the API sends no nudges (the periodic relay still runs).
    "CMS_BROKER_URL": (None, str),
    # Prefix for every broker key (several installations on one Redis).
    "CMS_BROKER_PREFIX": ("", str),
    # Networks webhooks may reach although not public (e.g. 127.0.0.0/8 in development).
    "CMS_WEBHOOK_ALLOWED_NETWORKS": ("", str),
    "CMS_WEBHOOK_HTTPS_ONLY": (False, _bool),
    # Seconds before attempts 1..n (attempt 1 at once); ±20% jitter is added.
    "CMS_WEBHOOK_RETRY_SCHEDULE": ("0,5,300,1800,7200,18000,36000,50400,72000,86400", str),
    "CMS_WEBHOOK_CONNECT_TIMEOUT": (5.0, float),
    "CMS_WEBHOOK_TIMEOUT": (15.0, float),
    # Connections one worker process opens to one host (host and port) at most, across
    # every subscription there; a request waiting for one counts against its timeout.
    "CMS_WEBHOOK_CONNECTIONS_PER_HOST": (16, _int),
    # Send webhooks through this HTTP(S) proxy (e.g. http://proxy:3128); empty: directly.
    # Every address of the target must still pass the SSRF guard before the proxy is asked.
    "CMS_WEBHOOK_PROXY": ("", str),
    # How long a claimed delivery may stay in flight before the sweep re-sends it.
    "CMS_WEBHOOK_LEASE_SECONDS": (60.0, float),
    "CMS_WEBHOOK_DISABLE_AFTER_DAYS": (5.0, float),
    "CMS_WEBHOOK_ROTATION_GRACE_HOURS": (24.0, float),
    # Deliveries per send task; a worker sends one batch itself and queues the rest.
    "CMS_WEBHOOK_BATCH": (200, _int),
    # On PostgreSQL, workers LISTEN for new outbox events (a trigger NOTIFYs at
    # commit) and relay at once; the API then sends no broker message for them.
    "CMS_RELAY_LISTEN": (True, _bool),
    # Periodic (Celery beat) relay of the outbox and sweep of due retries / expired leases.
    "CMS_RELAY_INTERVAL": (2.0, float),
    "CMS_SWEEP_INTERVAL": (1.0, float),
    # Beat asks for due scheduled actions this often (seconds); one that runs more
    # than the grace period after its time is counted as late (it still runs).
    "CMS_SCHEDULE_INTERVAL": (1.0, float),
    "CMS_SCHEDULE_GRACE_SECONDS": (60.0, float),
    # Attempt rows of finished deliveries older than this are pruned (hourly, by
    # beat; `cms deliveries prune` by hand). 0 keeps them for ever.
    "CMS_DELIVERY_LOG_DAYS": (90.0, float),
    # Finished deliveries not changed for this long are deleted with their attempts
    # (hourly, by beat). Bounds the deliveries table; 0 keeps them for ever.
    "CMS_DELIVERY_RETENTION_DAYS": (365.0, float),
    # Partners (cms.accounts.partners): what a new partner gets unless an admin sets it.
    "CMS_PARTNER_MAX_SUBSCRIPTIONS": (10, _int),
    "CMS_PARTNER_RATE_LIMIT": (600, _int),  # requests a minute
    # Where partner request counts live: memory:// (per process) or redis://host:6379/1.
    "CMS_RATE_LIMIT_STORAGE": ("memory://", str),
    # Content API caching (Cache-Control): seconds fresh, then seconds served stale
    # while a cache revalidates.
    "CMS_CONTENT_MAX_AGE": (30, _int),
    "CMS_CONTENT_STALE_WHILE_REVALIDATE": (60, _int),
    # Published-article rows an API process keeps between commits (PostgreSQL: dropped
    # on every article event it hears of, cms.delivery.freshness); 0 disables.
    "CMS_CONTENT_CACHE_ENTRIES": (50_000, _int),
    # Feeds (cms.feeds): public feeds at /feeds/v1/<rss|atom|json> only when on; private
    # ones (/feeds/v1/p/<token>/...) always. Entries per feed, title, Cache-Control max-age.
    "CMS_PUBLIC_FEEDS": (False, _bool),
    "CMS_FEED_LENGTH": (50, _int),
    "CMS_FEED_TITLE": ("Newsroom CMS", str),
    "CMS_FEED_MAX_AGE": (60, _int),
    # The address the API is reached at from outside (feeds' self and hub links); empty:
    # as the request came. Where an article is read on the web ({slug}, {id}); empty: none.
    "CMS_PUBLIC_URL": ("", str),
    "CMS_ARTICLE_URL": ("", str),
    # An external WebSub hub to notify; empty: the built-in hub at /websub/hub.
    "CMS_WEBSUB_HUB": ("", str),
    # Seconds between looks at whether watched feeds changed (beat; WebSub notifications).
    "CMS_WEBSUB_INTERVAL": (2.0, float),
    # The web console (/console): a session unused this long ends.
    "CMS_CONSOLE_IDLE_MINUTES": (30.0, float),
}


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults, the environment and explicit overrides (highest wins)."""
    config = _from_environment(os.environ if environ is None else environ)
    for name, value in (overrides or {}).items():
        config[name] = _override_value(name, value)
    _fill_derived(config)
    return config


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """Every setting: its variable converted when set and not empty, else the default."""
    config: dict[str, Any] = {}
    for name, (default, convert) in SETTINGS.items():
        value = env.get(name)
        config[name] = convert(value) if value not in (None, "") else default
    return config


def _override_value(name: str, value: Any) -> Any:
    """Overrides may be strings, as in the environment (tests, tools): a non-empty
    string for a known setting is converted; anything else is taken as given."""
    convert = SETTINGS.get(name, (None, None))[1]
    return convert(value) if convert is not None and isinstance(value, str) and value else value


def _fill_derived(config: dict[str, Any]) -> None:
    """Settings whose default depends on others: the database under the var
    directory, the broker next to it, a random secret key."""
    if not config["CMS_DATABASE_URL"]:
        config["CMS_DATABASE_URL"] = _default_database_url(config["CMS_VAR_DIR"])
    config["CMS_DATABASE_URL"] = normalise_database_url(config["CMS_DATABASE_URL"])
    if config["CMS_BROKER_URL"] is None:
        config["CMS_BROKER_URL"] = _default_broker_url(config["CMS_DATABASE_URL"])
    if not config["CMS_SECRET_KEY"]:
        # A per-process random key is safe: nothing we sign outlives the process yet.
        config["CMS_SECRET_KEY"] = secrets.token_urlsafe(32)


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for ``postgres://`` and ``postgresql://`` URLs."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url
