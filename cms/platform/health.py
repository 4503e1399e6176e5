"""Readiness checks: database reachable, migrations at head, broker reachable.

Each check answers ``(ok, detail)`` quickly (1-2 s timeouts) and never raises,
so ``/readyz`` can report every reason at once.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path

import redis
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.orm import Session

from cms.platform.broker import celery_broker

Check = tuple[bool, str]


@cache
def migration_heads(directory: str) -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def database(session: Session) -> Check:
    try:
        session.execute(text("SELECT 1"))
        return True, "ok"
    except Exception as exc:  # any driver error means not ready
        return False, f"unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        session.rollback()


def migrations(session: Session, directory: str) -> Check:
    heads = migration_heads(directory)
    try:
        current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    except Exception:
        return False, "not migrated: run 'cms db upgrade'"
    finally:
        session.rollback()
    if current != heads:
        return False, f"at {', '.join(sorted(current)) or 'nothing'}, head is {', '.join(sorted(heads))}"
    return True, f"at head ({', '.join(sorted(heads))})"


def broker(url: str) -> Check:
    if not url:
        return True, "not configured (events are relayed periodically only)"
    broker_url, transport = celery_broker(url)
    try:
        if transport is not None:  # the embedded SQLite broker
            path = Path(broker_url.removeprefix("sqlite:///"))
            if not path.parent.is_dir():
                return False, f"directory {path.parent} does not exist"
            with sqlite3.connect(path, timeout=1) as conn:
                conn.execute("SELECT 1")
            return True, "ok (embedded)"
        if url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            try:
                client.ping()
            finally:
                client.close()
            return True, "ok"
        return True, "not checked (unknown broker type)"
    except Exception as exc:
        return False, f"unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
