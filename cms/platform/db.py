"""Engine tuning per backend: the pool's limits and timeouts, prepared statements, SQLite's locking."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """Limits and timeouts of a process's connection pool (PostgreSQL).

    ``size`` connections stay open, ``overflow`` more may be opened in a burst
    (and are closed when returned); a checkout waits at most ``timeout`` seconds
    for a free one (then ``sqlalchemy.exc.TimeoutError``: a 503), a connection
    older than ``recycle`` seconds is replaced at its next checkout, and opening
    one gives up after ``connect_timeout`` seconds. psycopg prepares a statement
    on the server once a connection has run it ``prepare_threshold`` times;
    SQLAlchemy's compiled cache keeps the text of each statement stable.
    """

    size: int = 10
    overflow: int = 10
    timeout: float = 10.0
    recycle: float = 1800.0
    connect_timeout: int = 5
    prepare_threshold: int = 5

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PoolSettings:
        return cls(
            size=config["CMS_DB_POOL_SIZE"],
            overflow=config["CMS_DB_MAX_OVERFLOW"],
            timeout=config["CMS_DB_POOL_TIMEOUT"],
            recycle=config["CMS_DB_POOL_RECYCLE"],
            connect_timeout=config["CMS_DB_CONNECT_TIMEOUT"],
            prepare_threshold=config["CMS_DB_PREPARE_THRESHOLD"],
        )


def engine_options(
    url: str,
    *,
    synchronous_commit: bool = True,
    application_name: str = "cms",
    pool: PoolSettings | None = None,
) -> dict[str, Any]:
    """Engine settings; ``synchronous_commit=False`` is for the delivery workers only.

    Every worker transaction can be lost in a crash without losing anything:
    a lost relay leaves its events unrelayed (relayed again, same webhook ids),
    a lost outcome leaves its delivery leased (sent again when the lease
    expires). So workers do not wait for the WAL flush; the API, whose commits
    hold what editors wrote, always does.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    pool = pool or PoolSettings()
    connect_args: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": pool.connect_timeout,
        "prepare_threshold": pool.prepare_threshold,
    }
    if not synchronous_commit:
        connect_args["options"] = "-c synchronous_commit=off"
    return {
        "poolclass": QueuePool,
        "pool_size": pool.size,
        "max_overflow": pool.overflow,
        "pool_timeout": pool.timeout,
        "pool_recycle": pool.recycle,
        # A connection the server dropped (restart, failover, pg_terminate_backend)
        # is replaced at checkout instead of failing the request or the worker's
        # round; one that dies later fails its statement with OperationalError (503).
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }


# Whether transactions begun in this context may write. Requests that only read
# (GET, HEAD) set it False: on SQLite they then begin DEFERRED and read from a WAL
# snapshot, never queueing behind a writer; on PostgreSQL they read in autocommit.
may_write: ContextVar[bool] = ContextVar("cms_may_write", default=True)


def configure_postgresql(engine: Engine) -> None:
    """Connections handed to a context that cannot write (``may_write`` False) are in
    autocommit; every other checkout gets a transactional one, as usual.

    A read then runs on its own, as it would anyway at READ COMMITTED, where every
    statement takes a new snapshot. What that saves is BEGIN and ROLLBACK, two round
    trips, and the ROLLBACK's side effect: psycopg forgets (and deallocates) its
    prepared statements at every rollback, so reads inside transactions would never
    reuse one. Idle connections rest in autocommit, so the pre-ping and reads change
    nothing; writers switch at checkout and back at checkin. Pool events cost only at
    checkout; ``isolation_level="AUTOCOMMIT"`` on the engine would put an event
    dispatch on every statement (about a quarter of a read's cost).
    """

    @event.listens_for(engine, "connect")
    def _rest_in_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if may_write.get():
            dbapi_connection.autocommit = False

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, _record: Any) -> None:
        # After the pool's reset (a rollback): idle, unless the connection broke.
        if dbapi_connection is not None and not dbapi_connection.autocommit:
            with contextlib.suppress(Exception):
                dbapi_connection.autocommit = True


def configure_sqlite(engine: Engine, *, durable: bool = True) -> None:
    """WAL, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction that may write.

    pysqlite's own transaction handling starts transactions late and breaks
    savepoints; taking the write lock at ``BEGIN`` means a read-then-write
    transaction can never fail on a stale snapshot, and writers simply queue
    (busy timeout) instead of erroring. SQLite ignores ``FOR UPDATE``, so
    this is also what serialises two editors saving one article. Read-only
    requests (``may_write`` False) begin DEFERRED instead: WAL readers do not wait.

    ``durable``: ``synchronous=FULL``, so an acknowledged commit survives a power
    loss (in WAL mode NORMAL may lose the last ones). Workers pass False, as they
    turn off synchronous_commit on PostgreSQL: what they write can be redone.
    """
    synchronous = "FULL" if durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if may_write.get() else "BEGIN")
