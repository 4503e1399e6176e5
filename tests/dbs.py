"""Throwaway test databases on the real servers (never leftovers).

A migrated *template* is built once per backend and test session; every
database a test uses is a copy of it (PostgreSQL ``CREATE DATABASE ...
TEMPLATE``, a file copy for SQLite), so migrations are exercised and tests
never depend on each other's data.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

PG_ADMIN_DSN = os.environ.get("CMS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def require_postgres() -> None:
    """Skip locally without PostgreSQL; in CI a missing server is a failure."""
    if pg_available():
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_DSN}")
    pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class DatabaseFactory:
    """Makes databases of one backend, copies of a migrated template."""

    backend: str
    tmp: Path
    template: str = ""
    made: list[str] = field(default_factory=list)

    def fresh_url(self) -> str:
        """An empty, unmigrated database."""
        name = f"cms_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / (name + '.sqlite3')}"
        _admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return _pg_url(name)

    def set_template(self, url: str) -> None:
        self.template = url

    def copy_url(self) -> str:
        """A new database holding the migrated schema and no rows."""
        name = f"cms_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            src = Path(self.template.removeprefix("sqlite:///"))
            dst = self.tmp / (name + ".sqlite3")
            shutil.copyfile(src, dst)
            return f"sqlite:///{dst}"
        template = self.template.rsplit("/", 1)[1]
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.made.append(name)
        return _pg_url(name)

    def drop_all(self) -> None:
        if self.backend != "postgresql":
            return
        for name in reversed(self.made):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()
