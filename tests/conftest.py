"""Fixtures: apps on real SQLite and real PostgreSQL, a savepoint per test.

Every database test runs on both backends (``[sqlite]`` / ``[postgresql]``).
The ``client`` fixture wraps each test in one outer transaction that is rolled
back afterwards; the application's own commits become savepoint releases.
Tests that need real commits across connections use ``committed_app``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy.orm import scoped_session, sessionmaker

from cms.platform.clock import set_clock
from cms.platform.extensions import db
from tests.dbs import DatabaseFactory, require_postgres
from tests.factories import Keys, make_app, migrate

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return request.param


def migrated_factory(backend: str, tmp: Any) -> DatabaseFactory:
    """A database factory whose copies start from a freshly migrated template."""
    factory = DatabaseFactory(backend, tmp)
    template_url = factory.fresh_url()
    template_app = make_app(template_url)
    migrate(template_app)
    with template_app.app_context():
        db.engine.dispose()
    factory.set_template(template_url)
    return factory


@pytest.fixture(scope="session")
def databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = migrated_factory(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def app(databases: DatabaseFactory) -> Iterator[Flask]:
    # No content cache: it is dropped by NOTIFY at commit, and these tests never commit.
    application = make_app(databases.copy_url(), CMS_CONTENT_CACHE_ENTRIES=0)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    """Bind the app's session to one connection whose transaction is rolled back."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = scoped_session(
            sessionmaker(
                bind=connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            ),
            scopefunc=_app_ctx_id,
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask, db_session: Any) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def keys(app: Flask, db_session: Any) -> Keys:
    return Keys(app)


@pytest.fixture
def committed_app(databases: DatabaseFactory) -> Iterator[Flask]:
    """An app on its own fresh database, with real commits (concurrency tests)."""
    application = make_app(databases.copy_url())
    yield application
    with application.app_context():
        db.engine.dispose()


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2024, 11, 7, 20, 50, tzinfo=UTC))
    set_clock(fake)
    yield fake
    set_clock(None)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests talk to loopback only.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def pg_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """PostgreSQL only: the worker tests run the production backend."""
    require_postgres()
    factory = migrated_factory("postgresql", tmp_path_factory.mktemp("db-pg-e2e"))
    yield factory
    factory.drop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def stack(pg_databases: DatabaseFactory, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """API app + helpers on a fresh committed PostgreSQL database and a private Redis key prefix.

    Start processes with ``stack.worker()`` / ``stack.beat()``; their logs are
    printed when the test fails.
    """
    from tests.stack import Stack, require_redis

    require_redis()
    s = Stack(database_url=pg_databases.copy_url(), tmp=tmp_path)
    s.make_app()
    try:
        yield s
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(s.logs())
        s.close()


@pytest.fixture(scope="module")
def live(databases: DatabaseFactory) -> Iterator[Any]:
    """The app on its own committed database behind a real HTTP server (tests.live);
    one per module and backend: tests keep apart through partners of their own."""
    from tests.live import Live

    server = Live(make_app(databases.copy_url())).start()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the console's screenshots in the log (CI keeps the log)."""
    from tests.e2e import test_console_browser

    if test_console_browser.SAVED:
        terminalreporter.write_sep("-", "console screenshots")
        for path in test_console_browser.SAVED:
            terminalreporter.write_line(str(path))
