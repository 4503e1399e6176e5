"""Engine tuning per backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def engine_options(url: str, *, synchronous_commit: bool = True) -> dict[str, Any]:
    """Engine settings; ``synchronous_commit=False`` is for the delivery workers only.

    Every worker transaction can be lost in a crash without losing anything:
    a lost relay leaves its events unrelayed (relayed again, same webhook ids),
    a lost outcome leaves its delivery leased (sent again when the lease
    expires). So workers do not wait for the WAL flush; the API, whose commits
    hold what editors wrote, always does.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # No pre-ping: it costs a round trip per request. Stale connections are
    # recycled instead, and a dropped one surfaces as a 503 the client retries.
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}
    if not synchronous_commit:
        options["connect_args"] = {"options": "-c synchronous_commit=off"}
    return options


def read_engine(url: str, options: dict[str, Any]) -> Engine | None:
    """An autocommit pool for single-statement reads on PostgreSQL (``None`` elsewhere).

    Each read is one SELECT, so a transaction buys nothing; without one there
    is no BEGIN/ROLLBACK round trip and no reset when the connection returns.
    """
    if not url.startswith("postgresql"):
        return None
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options)


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction.

    pysqlite's own transaction handling starts transactions late and breaks
    savepoints; taking the write lock at ``BEGIN`` means a read-then-write
    transaction can never fail on a stale snapshot, and writers simply queue
    (busy timeout) instead of erroring. SQLite ignores ``FOR UPDATE``, so
    this is also what serialises two editors saving one article.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
